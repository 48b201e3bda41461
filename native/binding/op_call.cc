#include "op_call.h"

#include <cmath>
#include <cstdio>

#include "../backend/sizes.h"
#include "backends.h"

namespace crb {

namespace {
// Largest dimension the backend descriptors (int fields) can carry: Note [tensor size limits].
constexpr int64_t kMaxDim = CRB_MAX_DIM;

// "4.61e+18" for the element count of a shape too large to compute exactly.
std::string ApproxNumel(const Shape& shape) {
  double n = 1;
  for (int64_t d : shape) n *= double(d);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", n);
  return buf;
}
// "[1, 0]" for an array of numbers.
std::string DescribeNumbers(const Napi::Array& array) {
  std::string s = "[";
  for (uint32_t i = 0; i < array.Length(); ++i) {
    if (i) s += ", ";
    std::string e = DescribeValue(array.Get(i));
    s += e.rfind("number ", 0) == 0 ? e.substr(7) : e;
  }
  return s + "]";
}

}  // namespace

void OpCall::TypeErr(const std::string& arg, const std::string& expected, const std::string& received) {
  ThrowTypeError(env_, ArgMessage(fn_, arg, expected, received));
}

void OpCall::RangeErr(const std::string& arg, const std::string& expected, const std::string& received) {
  ThrowRangeError(env_, ArgMessage(fn_, arg, expected, received));
}

void OpCall::SetDevice(Device device, const std::string& name) {
  if (has_device_) return;  // callers have checked that it matches
  has_device_ = true;
  device_ = device;
  device_source_ = name;
}

TensorHandle* OpCall::TensorValue(const Napi::Value& value, const std::string& name, bool optional) {
  if (optional && (value.IsNull() || value.IsUndefined())) return nullptr;
  TensorHandle* t = TensorHandle::FromValue(value);
  if (!t) TypeErr(name, optional ? "a tensor handle or null" : "a tensor handle", DescribeValue(value));
  if (t->disposed()) ThrowError(env_, std::string(fn_) + ": argument \"" + name + "\": Tensor is disposed");
  if (has_device_ && t->device() != device_) {
    RangeErr(name, std::string("a tensor on ") + DeviceName(device_) + " (the device of \"" + device_source_ + "\")",
             DescribeValue(value));
  }
  SetDevice(t->device(), name);
  inputs_.emplace_back(name, t);
  return t;
}

TensorHandle* OpCall::Tensor(size_t index, const char* name) { return TensorValue(Arg(index), name, false); }

TensorHandle* OpCall::OptionalTensor(size_t index, const char* name) { return TensorValue(Arg(index), name, true); }

crb_dtype OpCall::DTypeArg(size_t index, const char* name) {
  Napi::Value v = Arg(index);
  const char* expected = "one of float32, float64, float16, bfloat16, int32, int64, uint8";
  if (!v.IsString()) TypeErr(name, expected, DescribeValue(v));
  crb_dtype dtype;
  if (!ParseDType(v.As<Napi::String>().Utf8Value(), &dtype)) RangeErr(name, expected, DescribeValue(v));
  return dtype;
}

Device OpCall::DeviceArg(size_t index, const char* name) {
  Napi::Value v = Arg(index);
  if (!v.IsString()) TypeErr(name, "\"cpu\" or \"cuda\"", DescribeValue(v));
  Device device;
  if (!ParseDevice(v.As<Napi::String>().Utf8Value(), &device)) RangeErr(name, "\"cpu\" or \"cuda\"", DescribeValue(v));
  if (has_device_ && device != device_) RangeErr(name, DeviceName(device_), DescribeValue(v));
  SetDevice(device, name);
  return device;
}

Shape OpCall::ShapeValue(const Napi::Value& v, const std::string& name) {
  const char* expected = "an array of non-negative integers";
  if (!v.IsArray()) TypeErr(name, expected, DescribeValue(v));
  Napi::Array array = v.As<Napi::Array>();
  uint32_t rank = array.Length();
  if (rank > 16) RangeErr(name, "at most 16 dimensions", std::to_string(rank) + " dimensions");
  Shape shape(rank);
  for (uint32_t i = 0; i < rank; ++i) {
    Napi::Value e = array.Get(i);
    if (!e.IsNumber()) TypeErr(name, expected, DescribeValue(v) + " with element " + std::to_string(i) + " " + DescribeValue(e));
    double d = e.As<Napi::Number>().DoubleValue();
    if (!(d >= 0) || d != std::floor(d) || d > double(kMaxDim))
      RangeErr(name, "an array of integers in [0, 2147483647]",
               "element " + std::to_string(i) + " = " + DescribeValue(e));
    shape[i] = int64_t(d);
  }
  if (crb_check_shape(shape.data(), shape.size(), CRB_U8, nullptr, nullptr, nullptr) != CRB_SIZE_OK)
    RangeErr(name, "at most 2^53 elements", ShapeToString(shape) + " (" + ApproxNumel(shape) + " elements)");
  return shape;
}

Shape OpCall::ShapeArg(size_t index, const char* name) { return ShapeValue(Arg(index), name); }

double OpCall::NumberValue(const Napi::Value& v, const std::string& name) {
  if (!v.IsNumber()) TypeErr(name, "a number", DescribeValue(v));
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) RangeErr(name, "a finite number", DescribeValue(v));
  return d;
}

double OpCall::Number(size_t index, const char* name) { return NumberValue(Arg(index), name); }

bool OpCall::BoolValue(const Napi::Value& v, const std::string& name) {
  if (!v.IsBoolean()) TypeErr(name, "a boolean", DescribeValue(v));
  return v.As<Napi::Boolean>().Value();
}

bool OpCall::Bool(size_t index, const char* name) { return BoolValue(Arg(index), name); }

int64_t OpCall::Integer(size_t index, const char* name, int64_t min, int64_t max) {
  Napi::Value v = Arg(index);
  if (!v.IsNumber()) TypeErr(name, "an integer", DescribeValue(v));
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= double(min) && d <= double(max)) || d != std::floor(d))
    RangeErr(name, "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]", DescribeValue(v));
  return int64_t(d);
}

double OpCall::FillValue(size_t index, const char* name, crb_dtype dtype) {
  Napi::Value v = Arg(index);
  if (!v.IsNumber()) TypeErr(name, "a number", DescribeValue(v));
  double value = v.As<Napi::Number>().DoubleValue();
  if (!IsFloatDType(dtype)) {
    double lo = dtype == CRB_U8 ? 0 : dtype == CRB_I32 ? -2147483648.0 : -9223372036854775808.0;
    double end = dtype == CRB_U8 ? 256 : dtype == CRB_I32 ? 2147483648.0 : 9223372036854775808.0;  // exclusive
    if (!(value >= lo && value < end) || value != std::floor(value))
      RangeErr(name, std::string("an integer that fits ") + crb_dtype_name(dtype), DescribeValue(v));
  }
  return value;
}

IntPair OpCall::Pair(size_t index, const char* name, int min) {
  Napi::Value v = Arg(index);
  std::string expected = std::string("an array of 2 ") + (min > 0 ? "positive" : "non-negative") + " integers";
  if (!v.IsArray()) TypeErr(name, expected, DescribeValue(v));
  Napi::Array array = v.As<Napi::Array>();
  if (array.Length() != 2) RangeErr(name, expected, DescribeValue(v));
  IntPair pair{};
  for (uint32_t i = 0; i < 2; ++i) {
    Napi::Value e = array.Get(i);
    if (!e.IsNumber()) TypeErr(name, expected, "element " + std::to_string(i) + " = " + DescribeValue(e));
    double d = e.As<Napi::Number>().DoubleValue();
    if (!(d >= min && d <= double(kMaxDim)) || d != std::floor(d))
      RangeErr(name, expected, DescribeNumbers(array) + " (element " + std::to_string(i) + ")");
    pair[i] = int(d);
  }
  return pair;
}

void OpCall::RequireFloat(const TensorHandle* t, const std::string& name) {
  if (!IsFloatDType(t->dtype()))
    TypeErr(name, "a float tensor (float32, float64, float16 or bfloat16)", std::string(crb_dtype_name(t->dtype())) + " tensor");
}

void OpCall::RequireDType(const TensorHandle* t, const std::string& name, crb_dtype dtype, const std::string& why) {
  if (t->dtype() != dtype)
    TypeErr(name, std::string("dtype ") + crb_dtype_name(dtype) + (why.empty() ? "" : " (" + why + ")"),
            crb_dtype_name(t->dtype()));
}

void OpCall::RequireShape(const TensorHandle* t, const std::string& name, const Shape& expected,
                          const std::string& why) {
  if (t->shape() != expected)
    RangeErr(name, "shape " + ShapeToString(expected) + (why.empty() ? "" : " (" + why + ")"),
             ShapeToString(t->shape()));
}

void OpCall::RequireSameLayout(const TensorHandle* t, const std::string& name, const TensorHandle* like,
                               const std::string& like_name) {
  if (t->channels_last() != like->channels_last())
    RangeErr(name, std::string(like->channels_last() ? "channelsLast" : "contiguous") + " memory like \"" +
                       like_name + "\"",
             t->channels_last() ? "channelsLast" : "contiguous");
}

const crb_backend* OpCall::backend() {
  if (!backend_) backend_ = BackendFor(env_, device_, fn_);
  return backend_;
}

std::shared_ptr<Storage> OpCall::Alloc(const Shape& shape, crb_dtype dtype) {
  const crb_backend* be = backend();
  std::shared_ptr<Storage> storage;
  uint64_t bytes = 0;
  // Every op checks the shapes it computes (geometry.h) before it gets here; this is the
  // backstop that keeps a wrapped size from ever reaching an allocator or a kernel.
  if (crb_check_numel(shape.data(), shape.size(), dtype, nullptr, &bytes, nullptr) != CRB_SIZE_OK)
    RangeErr("output", "a shape of at most 2^53 elements",
             ShapeToString(shape) + " (" + ApproxNumel(shape) + " elements)");
  size_t nbytes = size_t(bytes);
  crb_status status = AllocateStorage(env_, be, device_, nbytes, &storage);
  if (status != CRB_OK) {
    CheckStatus(env_, be, status, fn_, "alloc", device_, [&] {
      return "output " + ShapeToString(shape) + " " + crb_dtype_name(dtype) + ", " + std::to_string(nbytes) + " bytes";
    });
  }
  return storage;
}

std::string OpCall::InputShapes() const {
  std::string s;
  for (const auto& input : inputs_) {
    if (!s.empty()) s += ", ";
    s += input.first + ": " + crb_dtype_name(input.second->dtype()) + " " + ShapeToString(input.second->shape());
    if (input.second->channels_last()) s += " channelsLast";
  }
  return s;
}

}  // namespace crb
