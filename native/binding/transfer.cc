// to, view, copyInto, axpby, accumulate, exclusive, fill: moving, converting and overwriting tensors.
#include <vector>

#include "../core/host_convert.h"
#include "backends.h"
#include "exports.h"
#include "op_call.h"
#include "read.h"

namespace crb {

namespace {

// Note [channelsLast]
// A backend whose capabilities.layouts lack NHWC only computes in NCHW, so there
// `to(..., channelsLast=true)` keeps NCHW storage and reports channelsLast=false. Elsewhere (CPU,
// CUDA) a layout change is one convert_layout call on the destination device, after any move and
// cast (which are layout-agnostic).

Napi::Object MoveAndCast(const Napi::CallbackInfo& info, OpCall& call, TensorHandle* h, Device dst_device,
                         crb_dtype dst_dtype);

// to(h, device, dtype, channelsLast)
Napi::Value To(const Napi::CallbackInfo& info) {
  OpCall call(info, "to");
  TensorHandle* h = call.Tensor(0, "h");
  Napi::Value device_value = call.Arg(1);
  if (!device_value.IsString()) call.TypeErr("device", "\"cpu\" or \"cuda\"", DescribeValue(device_value));
  Device dst_device;
  if (!ParseDevice(device_value.As<Napi::String>().Utf8Value(), &dst_device))
    call.RangeErr("device", "\"cpu\" or \"cuda\"", DescribeValue(device_value));
  crb_dtype dst_dtype = call.DTypeArg(2, "dtype");
  bool want_channels_last = call.Bool(3, "channelsLast");
  if (want_channels_last && h->rank() != 4)
    call.RangeErr("channelsLast", "false for a tensor that is not 4-D", "true for shape " + ShapeToString(h->shape()));

  bool dst_channels_last =
      want_channels_last &&
      (BackendFor(call.env(), dst_device, "to")->capabilities.layouts & CRB_LAYOUT_BIT(CRB_NHWC)) != 0;
  if (dst_channels_last == h->channels_last()) return MoveAndCast(info, call, h, dst_device, dst_dtype);
  // Change the memory order on the destination device: straight from h when only the order
  // changes, else from a copy moved and cast first.
  const bool staged = dst_device != h->device() || dst_dtype != h->dtype();
  Napi::Object moved;
  if (staged) moved = MoveAndCast(info, call, h, dst_device, dst_dtype);
  TensorHandle* stage = staged ? TensorHandle::FromValue(moved) : h;
  OpCall dst_call(info, "to");
  dst_call.DeviceArg(1, "device");
  const crb_backend* backend = dst_call.backend();
  if (!backend->convert_layout)
    ThrowError(call.env(), std::string("to: the ") + DeviceName(dst_device) + " backend cannot change the memory format");
  const Shape& shape = h->shape();
  auto out = dst_call.Alloc(shape, dst_dtype);
  dst_call.Check(backend->convert_layout(out->data(), dst_channels_last ? CRB_NHWC : CRB_NCHW, stage->data(),
                                         h->channels_last() ? CRB_NHWC : CRB_NCHW, AsInt(shape[0]), AsInt(shape[1]),
                                         AsInt(shape[2]), AsInt(shape[3]), dst_dtype),
                 "convert_layout");
  if (staged) moved.Get("dispose").As<Napi::Function>().Call(moved, {});
  return dst_call.Wrap(out, shape, dst_dtype, dst_channels_last);
}

// The tensor on `dst_device` as `dst_dtype`, in h's memory order.
Napi::Object MoveAndCast(const Napi::CallbackInfo& info, OpCall& call, TensorHandle* h, Device dst_device,
                         crb_dtype dst_dtype) {
  Device src_device = h->device();
  const bool dst_channels_last = h->channels_last();
  const crb_backend* src_backend = call.backend();
  int64_t numel = h->numel();
  const Shape& shape = h->shape();

  if (dst_device == src_device) {
    auto out = call.Alloc(shape, dst_dtype);
    if (numel) {
      if (dst_dtype == h->dtype()) {
        call.Check(src_backend->copy_device(out->data(), h->data(), h->nbytes()), "copy_device");
      } else {
        crb_status status = src_backend->cast(out->data(), dst_dtype, h->data(), h->dtype(), numel);
        if (status == CRB_ERR_UNSUPPORTED && src_backend->capabilities.host_visible_memory) {
          // Host memory (the CPU's): convert here when the backend has no kernel for the pair.
          ConvertHost(out->data(), dst_dtype, h->data(), h->dtype(), numel);
        } else {
          call.Check(status, "cast");
        }
      }
    }
    return call.Wrap(out, shape, dst_dtype, dst_channels_last);
  }

  // Across devices, through host memory; conversion happens on the host. The destination
  // backend is resolved first so an unavailable device fails before any copying.
  OpCall dst_call(info, "to");
  dst_call.DeviceArg(1, "device");
  const crb_backend* dst_backend = dst_call.backend();
  std::vector<uint8_t> host(h->nbytes());
  const char* abi_op = "read_begin";
  call.Check(ReadToHost(src_backend, h->data(), h->nbytes(), host.data(), &abi_op), abi_op);
  if (dst_dtype != h->dtype()) {
    std::vector<uint8_t> converted(size_t(numel) * crb_dtype_size(dst_dtype));
    ConvertHost(converted.data(), dst_dtype, host.data(), h->dtype(), numel);
    host.swap(converted);
  }
  auto out = dst_call.Alloc(shape, dst_dtype);
  if (!host.empty()) dst_call.Check(dst_backend->copy_from_host(out->data(), host.data(), host.size()), "copy_from_host");
  return dst_call.Wrap(out, shape, dst_dtype, dst_channels_last);
}

// view(h, shape): same storage, new shape of the same numel.
Napi::Value View(const Napi::CallbackInfo& info) {
  OpCall call(info, "view");
  TensorHandle* h = call.Tensor(0, "h");
  Shape shape = call.ShapeArg(1, "shape");
  if (ShapeNumel(shape) != h->numel())
    call.RangeErr("shape", "a shape of " + std::to_string(h->numel()) + " elements (h has shape " +
                               ShapeToString(h->shape()) + ")",
                  ShapeToString(shape));
  // The same shape keeps the memory order (what autograd nodes save of their inputs).
  if (shape == h->shape()) return call.Wrap(h->storage(), shape, h->dtype(), h->channels_last());
  // NHWC and NCHW orders coincide when there is one channel or one pixel, e.g. (N, C, 1, 1)
  // after global pooling, which Flatten then views as (N, C).
  if (h->channels_last() && h->dim(1) != 1 && h->dim(2) * h->dim(3) != 1)
    call.RangeErr("h", "a contiguous tensor (a channelsLast tensor cannot be viewed)", "a channelsLast tensor");
  return call.Wrap(h->storage(), shape, h->dtype(), false);
}

// copyInto(dst, src): dst = src
Napi::Value CopyInto(const Napi::CallbackInfo& info) {
  OpCall call(info, "copyInto");
  TensorHandle* dst = call.Tensor(0, "dst");
  TensorHandle* src = call.Tensor(1, "src");
  call.RequireShape(src, "src", dst->shape(), "the shape of dst");
  call.RequireDType(src, "src", dst->dtype(), "the dtype of dst");
  call.RequireSameLayout(src, "src", dst, "dst");
  if (dst->numel() && dst->data() != src->data())
    call.Check(call.backend()->copy_device(dst->data(), src->data(), dst->nbytes()), "copy_device");
  return call.env().Undefined();
}

// axpby(y, x, alpha, beta): y = alpha * x + beta * y
Napi::Value Axpby(const Napi::CallbackInfo& info) {
  OpCall call(info, "axpby");
  TensorHandle* y = call.Tensor(0, "y");
  TensorHandle* x = call.Tensor(1, "x");
  double alpha = call.Number(2, "alpha");
  double beta = call.Number(3, "beta");
  call.RequireShape(x, "x", y->shape(), "the shape of y");
  call.RequireDType(x, "x", y->dtype(), "the dtype of y");
  call.RequireSameLayout(x, "x", y, "y");
  if (y->numel())
    call.Check(call.backend()->axpby(y->data(), x->data(), alpha, beta, y->numel(), y->dtype()), "axpby");
  return call.env().Undefined();
}

// No other handle, saved tensor or pending read holds h's storage.
bool IsExclusive(const TensorHandle* h) { return h->storage().use_count() == 1; }

// exclusive(h): see IsExclusive. Autograd steals such a gradient for a leaf's .grad and copies
// any other (the caller's own backward(gradient), or a view of it), as PyTorch's AccumulateGrad.
Napi::Value Exclusive(const Napi::CallbackInfo& info) {
  OpCall call(info, "exclusive");
  return Napi::Boolean::New(call.env(), IsExclusive(call.Tensor(0, "h")));
}

// accumulate(dst, src): dst += src in place when no other handle shares dst's storage (no view,
// no saved copy, no pending read), so no one else can see the change; returns whether it did.
// Autograd sums a node's incoming gradients with it instead of allocating each sum.
Napi::Value Accumulate(const Napi::CallbackInfo& info) {
  OpCall call(info, "accumulate");
  TensorHandle* dst = call.Tensor(0, "dst");
  TensorHandle* src = call.Tensor(1, "src");
  call.RequireShape(src, "src", dst->shape(), "the shape of dst");
  call.RequireDType(src, "src", dst->dtype(), "the dtype of dst");
  const bool exclusive = IsExclusive(dst) && dst->data() != src->data();
  if (!exclusive || dst->channels_last() != src->channels_last()) return Napi::Boolean::New(call.env(), false);
  if (dst->numel())
    call.Check(call.backend()->axpby(dst->data(), src->data(), 1.0, 1.0, dst->numel(), dst->dtype()), "axpby");
  return Napi::Boolean::New(call.env(), true);
}

// fill(h, value)
Napi::Value Fill(const Napi::CallbackInfo& info) {
  OpCall call(info, "fill");
  TensorHandle* h = call.Tensor(0, "h");
  double value = call.FillValue(1, "value", h->dtype());
  if (h->numel()) call.Check(call.backend()->fill(h->data(), h->numel(), h->dtype(), value), "fill");
  return call.env().Undefined();
}

}  // namespace

// This file's rows of functions.def.
const js::Function js::to = To;
const js::Function js::view = View;
const js::Function js::copyInto = CopyInto;
const js::Function js::axpby = Axpby;
const js::Function js::accumulate = Accumulate;
const js::Function js::exclusive = Exclusive;
const js::Function js::fill = Fill;

}  // namespace crb
