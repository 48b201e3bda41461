// empty, full, fromArray, randn, rand: new handles on the named device.
#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/host_convert.h"
#include "addon_data.h"
#include "exports.h"
#include "op_call.h"

namespace crb {

namespace {

// Copies host data of `dtype` into the storage (the storage's dtype), through the backend.
void Upload(OpCall& call, const std::shared_ptr<Storage>& storage, const void* host, size_t nbytes) {
  if (nbytes == 0) return;
  call.Check(call.backend()->copy_from_host(storage->data(), host, nbytes), "copy_from_host");
}

// Draws numel values (float64) from `draw`, converts them to dtype and uploads them, a chunk at
// a time so a large tensor needs no full-size host copy. The draw order is the element order,
// so values do not depend on the chunk size or the device.
template <typename Draw>
Napi::Value UploadGenerated(OpCall& call, const Shape& shape, crb_dtype dtype, Draw&& draw) {
  constexpr int64_t kChunk = 1 << 16;
  auto storage = call.Alloc(shape, dtype);
  const int64_t numel = ShapeNumel(shape);
  const size_t elem = crb_dtype_size(dtype);
  std::vector<double> values(size_t(std::min(numel, kChunk)));
  std::vector<uint8_t> converted(dtype == CRB_F64 ? 0 : values.size() * elem);
  for (int64_t begin = 0; begin < numel; begin += kChunk) {
    int64_t count = std::min(kChunk, numel - begin);
    for (int64_t i = 0; i < count; ++i) values[size_t(i)] = draw();
    const void* host = values.data();
    if (dtype != CRB_F64) {
      ConvertHost(converted.data(), dtype, values.data(), CRB_F64, count);
      host = converted.data();
    }
    void* dst = static_cast<uint8_t*>(storage->data()) + size_t(begin) * elem;
    call.Check(call.backend()->copy_from_host(dst, host, size_t(count) * elem), "copy_from_host");
  }
  return call.Wrap(storage, shape, dtype);
}

}  // namespace

// empty(shape, dtype, device, channelsLast = false): channelsLast asks for NHWC storage, which
// (as in `to`) a backend without the layout answers with NCHW.
Napi::Value Empty(const Napi::CallbackInfo& info) {
  OpCall call(info, "empty");
  Shape shape = call.ShapeArg(0, "shape");
  crb_dtype dtype = call.DTypeArg(1, "dtype");
  call.DeviceArg(2, "device");
  const bool want_channels_last = info.Length() > 3 && !info[3].IsUndefined() && call.Bool(3, "channelsLast");
  if (want_channels_last && shape.size() != 4)
    call.RangeErr("channelsLast", "false for a tensor that is not 4-D", "true for shape " + ShapeToString(shape));
  const bool channels_last =
      want_channels_last && (call.backend()->capabilities.layouts & CRB_LAYOUT_BIT(CRB_NHWC)) != 0;
  return call.Wrap(call.Alloc(shape, dtype), shape, dtype, channels_last);
}

// full(shape, dtype, device, value)
Napi::Value Full(const Napi::CallbackInfo& info) {
  OpCall call(info, "full");
  Shape shape = call.ShapeArg(0, "shape");
  crb_dtype dtype = call.DTypeArg(1, "dtype");
  call.DeviceArg(2, "device");
  double value = call.FillValue(3, "value", dtype);
  auto storage = call.Alloc(shape, dtype);
  int64_t numel = ShapeNumel(shape);
  if (numel) call.Check(call.backend()->fill(storage->data(), numel, dtype, value), "fill");
  return call.Wrap(storage, shape, dtype);
}

// fromArray(data, shape, dtype, device): data is the dtype's own typed array (Uint16Array holds
// raw float16/bfloat16 bits), or Float32Array/Float64Array for any float dtype.
Napi::Value FromArray(const Napi::CallbackInfo& info) {
  OpCall call(info, "fromArray");
  Napi::Value data = call.Arg(0);
  Shape shape = call.ShapeArg(1, "shape");
  crb_dtype dtype = call.DTypeArg(2, "dtype");
  call.DeviceArg(3, "device");

  const char* natural = nullptr;
  switch (dtype) {
    case CRB_F32: natural = "Float32Array"; break;
    case CRB_F64: natural = "Float64Array"; break;
    case CRB_F16:
    case CRB_BF16: natural = "Float32Array, Float64Array or Uint16Array (raw bits)"; break;
    case CRB_I32: natural = "Int32Array"; break;
    case CRB_I64: natural = "BigInt64Array"; break;
    case CRB_U8: natural = "Uint8Array"; break;
  }
  std::string expected = std::string("a ") + natural + " for dtype " + crb_dtype_name(dtype);
  if (IsFloatDType(dtype) && dtype != CRB_F16 && dtype != CRB_BF16) expected += " (or another float typed array)";
  if (!data.IsTypedArray()) call.TypeErr("data", expected, DescribeValue(data));

  Napi::TypedArray array = data.As<Napi::TypedArray>();
  crb_dtype src_dtype;
  switch (array.TypedArrayType()) {
    case napi_float32_array: src_dtype = CRB_F32; break;
    case napi_float64_array: src_dtype = CRB_F64; break;
    case napi_int32_array: src_dtype = CRB_I32; break;
    case napi_bigint64_array: src_dtype = CRB_I64; break;
    case napi_uint8_array: src_dtype = CRB_U8; break;
    case napi_uint16_array: src_dtype = (dtype == CRB_BF16) ? CRB_BF16 : CRB_F16; break;
    default: call.TypeErr("data", expected, DescribeValue(data));
  }
  bool accepted = src_dtype == dtype || (IsFloatDType(dtype) && (src_dtype == CRB_F32 || src_dtype == CRB_F64));
  if (!accepted) call.TypeErr("data", expected, DescribeValue(data));

  int64_t numel = ShapeNumel(shape);
  if (int64_t(array.ElementLength()) != numel)
    call.RangeErr("data", std::to_string(numel) + " elements (the product of shape " + ShapeToString(shape) + ")",
                  DescribeValue(data));

  Napi::ArrayBuffer buffer = array.ArrayBuffer();
  const uint8_t* host = static_cast<const uint8_t*>(buffer.Data()) + array.ByteOffset();
  auto storage = call.Alloc(shape, dtype);
  if (src_dtype == dtype) {
    Upload(call, storage, host, storage->nbytes());
  } else {
    std::vector<uint8_t> converted(storage->nbytes());
    ConvertHost(converted.data(), dtype, host, src_dtype, numel);
    Upload(call, storage, converted.data(), converted.size());
  }
  return call.Wrap(storage, shape, dtype);
}

// randn(shape, dtype, device, mean, std)
Napi::Value Randn(const Napi::CallbackInfo& info) {
  OpCall call(info, "randn");
  Shape shape = call.ShapeArg(0, "shape");
  crb_dtype dtype = call.DTypeArg(1, "dtype");
  call.DeviceArg(2, "device");
  double mean = call.Number(3, "mean");
  double stddev = call.Number(4, "std");
  if (!IsFloatDType(dtype)) call.TypeErr("dtype", "a float dtype (normal samples are not integers)", crb_dtype_name(dtype));
  if (stddev < 0) call.RangeErr("std", "a number >= 0", DescribeValue(call.Arg(4)));
  call.backend();  // fail on an unavailable device before drawing
  HostGenerator& generator = GetAddonData(call.env()).generator;
  return UploadGenerated(call, shape, dtype, [&] { return mean + stddev * generator.Normal(); });
}

// rand(shape, dtype, device, low, high): uniform in [low, high)
Napi::Value Rand(const Napi::CallbackInfo& info) {
  OpCall call(info, "rand");
  Shape shape = call.ShapeArg(0, "shape");
  crb_dtype dtype = call.DTypeArg(1, "dtype");
  call.DeviceArg(2, "device");
  double low = call.Number(3, "low");
  double high = call.Number(4, "high");
  if (!IsFloatDType(dtype)) call.TypeErr("dtype", "a float dtype", crb_dtype_name(dtype));
  if (high < low) call.RangeErr("high", "a number >= low (" + std::to_string(low) + ")", DescribeValue(call.Arg(4)));
  call.backend();
  HostGenerator& generator = GetAddonData(call.env()).generator;
  return UploadGenerated(call, shape, dtype, [&] { return low + (high - low) * generator.Uniform(); });
}

// This file's rows of functions.def.
const js::Function js::empty = Empty;
const js::Function js::full = Full;
const js::Function js::fromArray = FromArray;
const js::Function js::randn = Randn;
const js::Function js::rand = Rand;

}  // namespace crb
