// One native call from JS: reads and checks its arguments, remembers the tensors it was given
// (for the device check and for error messages), resolves the backend and allocates outputs.
// Every function of lib/native.ts that touches tensors starts with an OpCall.
#pragma once

#include "napi_config.h"

#include <array>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../backend/backend_api.h"
#include "../backend/geometry.h"
#include "../core/dtype.h"
#include "errors.h"
#include "storage.h"
#include "tensor_handle.h"

namespace crb {

using IntPair = std::array<int, 2>;

class OpCall {
 public:
  // `fn` starts every message. A forward function that lib/ops calls for a public op passes the
  // public name ("conv2d", not "conv2dForward"), so its errors name what the user called.
  OpCall(const Napi::CallbackInfo& info, const char* fn) : info_(info), env_(info.Env()), fn_(fn) {}

  Napi::Env env() const { return env_; }
  const char* fn() const { return fn_; }
  Napi::Value Arg(size_t index) const { return index < info_.Length() ? info_[index] : env_.Undefined(); }

  // --- arguments. Each throws TypeError (wrong type) or RangeError (wrong value) naming `name`.
  // A live tensor handle on the call's device; the first tensor (or DeviceArg) fixes the device.
  TensorHandle* Tensor(size_t index, const char* name);
  // Same, but null/undefined gives nullptr.
  TensorHandle* OptionalTensor(size_t index, const char* name);
  // Checks an already unwrapped value as a tensor argument (for elements of arrays).
  TensorHandle* TensorValue(const Napi::Value& value, const std::string& name, bool optional);
  crb_dtype DTypeArg(size_t index, const char* name);
  Device DeviceArg(size_t index, const char* name);
  Shape ShapeArg(size_t index, const char* name);
  Shape ShapeValue(const Napi::Value& value, const std::string& name);
  double Number(size_t index, const char* name);  // finite
  double NumberValue(const Napi::Value& value, const std::string& name);
  bool Bool(size_t index, const char* name);
  bool BoolValue(const Napi::Value& value, const std::string& name);
  int64_t Integer(size_t index, const char* name, int64_t min, int64_t max);
  // A value to store in every element of `dtype`: any number for float dtypes (NaN and
  // infinities included), an integer that fits for integer dtypes.
  double FillValue(size_t index, const char* name, crb_dtype dtype);
  // [a, b], both integers >= min.
  IntPair Pair(size_t index, const char* name, int min);

  // --- checks on tensors already read
  void RequireFloat(const TensorHandle* t, const std::string& name);
  void RequireDType(const TensorHandle* t, const std::string& name, crb_dtype dtype, const std::string& why);
  void RequireShape(const TensorHandle* t, const std::string& name, const Shape& expected, const std::string& why);
  void RequireSameLayout(const TensorHandle* t, const std::string& name, const TensorHandle* like,
                         const std::string& like_name);

  [[noreturn]] void TypeErr(const std::string& arg, const std::string& expected, const std::string& received);
  [[noreturn]] void RangeErr(const std::string& arg, const std::string& expected, const std::string& received);

  // --- device, backend, outputs
  Device device() const { return device_; }
  const crb_backend* backend();
  // Throws the typed backend error for a failed backend call.
  void Check(crb_status status, const char* abi_op) {
    CheckStatus(env_, backend_, status, fn_, abi_op, device_, [this] { return InputShapes(); });
  }
  // A rule of native/backend/geometry.h (Note [one place per rule]): `ok`, or the RangeError
  // naming the argument it blames.
  void Geometry(bool ok, const crb_geom_error& e) {
    if (!ok) RangeErr(e.arg, e.expected, e.received);
  }
  // Allocates an output; a shape beyond the limits is a RangeError, a failed allocation the
  // backend's OutOfMemoryError.
  std::shared_ptr<Storage> Alloc(const Shape& shape, crb_dtype dtype);
  Napi::Object Wrap(std::shared_ptr<Storage> storage, Shape shape, crb_dtype dtype, bool channels_last = false) {
    return TensorHandle::New(env_, std::move(storage), std::move(shape), dtype, channels_last);
  }
  // An output that may not have been computed: null then.
  Napi::Value WrapOptional(std::shared_ptr<Storage> storage, Shape shape, crb_dtype dtype, bool channels_last = false) {
    if (!storage) return env_.Null();
    return Wrap(std::move(storage), std::move(shape), dtype, channels_last);
  }

 private:
  void SetDevice(Device device, const std::string& name);
  std::string InputShapes() const;

  const Napi::CallbackInfo& info_;
  Napi::Env env_;
  const char* fn_;
  bool has_device_ = false;
  Device device_ = Device::kCpu;
  std::string device_source_;  // the argument that fixed the device
  const crb_backend* backend_ = nullptr;
  std::vector<std::pair<std::string, const TensorHandle*>> inputs_;
};

// Descriptor helpers shared by the op files.
inline int AsInt(int64_t v) { return static_cast<int>(v); }

}  // namespace crb
