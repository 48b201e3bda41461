#include "dtype.h"

#include "../backend/names.h"

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
constexpr crb_dtype kDTypes[] = {CRB_F32, CRB_F64, CRB_F16, CRB_BF16, CRB_I32, CRB_I64, CRB_U8};
}  // namespace

bool ParseDType(const std::string& name, crb_dtype* out) {
  for (crb_dtype dtype : kDTypes) {
    if (name == crb_dtype_name(dtype)) {
      *out = dtype;
      return true;
    }
  }
  return false;
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
