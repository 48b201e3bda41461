#include "dtype.h"

namespace crb {

const char* DeviceName(Device device) { return device == Device::kCuda ? "cuda" : "cpu"; }

bool ParseDevice(const std::string& name, Device* out) {
  if (name == "cpu") {
    *out = Device::kCpu;
    return true;
  }
  if (name == "cuda") {
    *out = Device::kCuda;
    return true;
  }
  return false;
}

namespace {
struct DTypeEntry {
  crb_dtype dtype;
  const char* name;
  size_t size;
};
constexpr DTypeEntry kDTypes[] = {
    {CRB_F32, "float32", 4}, {CRB_F64, "float64", 8}, {CRB_F16, "float16", 2}, {CRB_BF16, "bfloat16", 2},
    {CRB_I32, "int32", 4},   {CRB_I64, "int64", 8},   {CRB_U8, "uint8", 1},
};
}  // namespace

const char* DTypeName(crb_dtype dtype) {
  for (const auto& e : kDTypes)
    if (e.dtype == dtype) return e.name;
  return "unknown";
}

bool ParseDType(const std::string& name, crb_dtype* out) {
  for (const auto& e : kDTypes) {
    if (name == e.name) {
      *out = e.dtype;
      return true;
    }
  }
  return false;
}

size_t DTypeSize(crb_dtype dtype) {
  for (const auto& e : kDTypes)
    if (e.dtype == dtype) return e.size;
  return 0;
}

bool IsFloatDType(crb_dtype dtype) {
  return dtype == CRB_F32 || dtype == CRB_F64 || dtype == CRB_F16 || dtype == CRB_BF16;
}

int64_t ShapeNumel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeToString(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

}  // namespace crb
