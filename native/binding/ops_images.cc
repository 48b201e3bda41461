// imagesU8ToFloat: uint8 (n, c, h, w) -> float (n, c, outH, outW), bilinear resize
// (align_corners=False) then (v / 255 - mean) / std.
#include "exports.h"
#include "op_call.h"

namespace crb {

namespace {

Napi::Value ImagesU8ToFloat(const Napi::CallbackInfo& info) {
  OpCall call(info, "normalizeImages");
  TensorHandle* images = call.Tensor(0, "images");
  IntPair out = call.Pair(1, "size", 1);
  double mean = call.Number(2, "mean");
  double stddev = call.Number(3, "std");
  crb_dtype dtype = call.DTypeArg(4, "dtype");
  call.RequireDType(images, "images", CRB_U8, "raw pixels");
  crb_image_desc d;
  crb_geom_error e;
  // normalizeImages calls the output size "size".
  call.Geometry(crb_geom_images(images->shape().data(), images->rank(), out.data(), mean, stddev, dtype, "size", &d, &e),
                e);
  if (!IsFloatDType(dtype)) call.TypeErr("dtype", "a float dtype", crb_dtype_name(dtype));
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
