// imagesU8ToFloat: uint8 (n, c, h, w) -> float (n, c, outH, outW), bilinear resize
// (align_corners=False) then (v / 255 - mean) / std.
#include "exports.h"
#include "op_call.h"

namespace crb {

namespace {

Napi::Value ImagesU8ToFloat(const Napi::CallbackInfo& info) {
  OpCall call(info, "imagesU8ToFloat");
  TensorHandle* images = call.Tensor(0, "images");
  IntPair out = call.Pair(1, "outputSize", 1);
  double mean = call.Number(2, "mean");
  double stddev = call.Number(3, "std");
  crb_dtype dtype = call.DTypeArg(4, "dtype");
  call.RequireDType(images, "images", CRB_U8, "raw pixels");
  call.RequireRank(images, "images", 4, "[n, c, h, w]");
  if (images->dim(2) == 0 || images->dim(3) == 0)
    call.RangeErr("images", "non-empty images", ShapeToString(images->shape()));
  if (stddev == 0) call.RangeErr("std", "a non-zero number", "0");
  if (!IsFloatDType(dtype)) call.TypeErr("dtype", "a float dtype", DTypeName(dtype));

  // normalizeImages calls this argument "size".
  call.CheckOutputShape({images->dim(0), images->dim(1), out[0], out[1]}, dtype, "size", ShapeToString({out[0], out[1]}));
  crb_image_desc d{};
  d.n = AsInt(images->dim(0));
  d.c = AsInt(images->dim(1));
  d.h = AsInt(images->dim(2));
  d.w = AsInt(images->dim(3));
  d.out_h = out[0];
  d.out_w = out[1];
  d.mean = mean;
  d.std = stddev;
  d.dtype = dtype;
  Shape y_shape{d.n, d.c, d.out_h, d.out_w};
  auto y = call.Alloc(y_shape, dtype);
  if (ShapeNumel(y_shape))
    call.Check(call.backend()->images_u8_to_float(&d, static_cast<const uint8_t*>(images->data()), y->data()),
               "images_u8_to_float");
  return call.Wrap(y, y_shape, dtype);
}

}  // namespace

// This file's rows of functions.def.
const js::Function js::imagesU8ToFloat = ImagesU8ToFloat;

}  // namespace crb
