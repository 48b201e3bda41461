// Note [one place per rule]
// Every shape and geometry rule of the ops, written once: what makes a convolution, a pooling,
// a batch norm, a linear layer, a cross-entropy or an image resize valid, and the output sizes
// they produce. The binding fills each backend descriptor with the crb_geom_* function of its op
// and turns a failure into the RangeError it throws (argument, expected, received); the backends
// re-run the crb_*_check functions below on the descriptor they are handed, a cheap assertion
// that returns CRB_ERR_INVALID with the op name instead of re-deriving the rules (as tfjs's
// computeConv2DInfo, computed once above the seam). Tensor sizes themselves are the business of
// Note [tensor size limits] (sizes.h), which the output-shape checks here use.
//
// Shapes are given as (dims, rank) of int64 dimensions, each already within CRB_MAX_DIM (the
// binding checks every shape it is handed). C++ (inline functions): the addon and the CUDA
// library both compile it, with their own toolchains.
#ifndef CRB_BACKEND_GEOMETRY_H
#define CRB_BACKEND_GEOMETRY_H

#include <stdint.h>
#include <stdio.h>

#include <string>
#include <utility>

#include "backend_api.h"
#include "sizes.h"

// A broken rule: `arg` (the argument to name) expected `expected`, received `received`.
struct crb_geom_error {
  const char* arg = "";
  std::string expected, received;
};

// A shape (or any list of numbers) as "[1, 2, 3]".
inline std::string crb_geom_dims(const int64_t* dims, size_t rank) {
  std::string s = "[";
  for (size_t i = 0; i < rank; ++i) {
    if (i) s += ", ";
    s += std::to_string(dims[i]);
  }
  return s + "]";
}
inline std::string crb_geom_pair(int64_t a, int64_t b) {
  const int64_t d[2] = {a, b};
  return crb_geom_dims(d, 2);
}

inline bool crb_geom_fail(crb_geom_error* e, const char* arg, std::string expected, std::string received) {
  e->arg = arg;
  e->expected = std::move(expected);
  e->received = std::move(received);
  return false;
}

// `rank` dimensions; `form` names them, e.g. "[n, c, h, w]".
inline bool crb_geom_rank(const int64_t* dims, size_t rank, size_t want, const char* arg, const char* form,
                          crb_geom_error* e) {
  if (rank == want) return true;
  return crb_geom_fail(e, arg, std::to_string(want) + "-D shape " + form, crb_geom_dims(dims, rank));
}

// An output shape an op computes: within Note [tensor size limits], else the argument that made
// it too large (`arg`, whose value `received` describes) is to blame.
inline bool crb_geom_output(const int64_t* dims, size_t rank, crb_dtype dtype, const char* arg,
                            const std::string& received, crb_geom_error* e) {
  if (crb_check_shape(dims, rank, dtype, nullptr, nullptr, nullptr) == CRB_SIZE_OK) return true;
  double n = 1;
  for (size_t i = 0; i < rank; ++i) n *= double(dims[i]);
  char approx[32];
  snprintf(approx, sizeof approx, "%.3g", n);
  return crb_geom_fail(e, arg, "a value whose output has every dimension at most 2147483647 and at most 2^53 elements",
                       received + " (output " + crb_geom_dims(dims, rank) + ", " + approx + " elements)");
}

// A 4-D tensor whose h * w plane a kernel indexes with int32 (conv taps, max-pool indices).
inline bool crb_geom_plane(const int64_t* dims, const char* arg, crb_geom_error* e) {
  if (dims[2] * dims[3] <= CRB_MAX_PLANE) return true;
  return crb_geom_fail(e, arg, "a plane (h * w) of at most 2147483647 elements (the kernels index it with int32)",
                       crb_geom_dims(dims, 4));
}

// --- convolution, PyTorch semantics
// out = floor((in + 2p - d(k-1) - 1) / s) + 1, in int64 so nothing overflows; 0 when the
// dilated kernel does not fit the padded input.
inline int64_t crb_conv_out_size(int64_t in, int64_t pad, int64_t dil, int64_t kernel, int64_t stride) {
  const int64_t span = in + 2 * pad - dil * (kernel - 1) - 1;
  return span < 0 ? 0 : span / stride + 1;
}

// x (n, c, h, w), w (k, c / groups, r, s); stride and dilation >= 1, padding >= 0, groups >= 1
// (the binding reads them so). Fills every field of *d.
inline bool crb_geom_conv2d(const int64_t* x, size_t x_rank, const int64_t* w, size_t w_rank, const int stride[2],
                            const int pad[2], const int dil[2], int64_t groups, crb_dtype dtype, crb_layout layout,
                            crb_conv2d_desc* d, crb_geom_error* e) {
  if (!crb_geom_rank(x, x_rank, 4, "x", "[n, c, h, w]", e)) return false;
  if (!crb_geom_rank(w, w_rank, 4, "weight", "[k, c / groups, r, s]", e)) return false;
  const int64_t c = x[1], k = w[0];
  if (c % groups != 0)
    return crb_geom_fail(e, "groups", "a divisor of the " + std::to_string(c) + " channels of x", std::to_string(groups));
  if (k % groups != 0 || k == 0)
    return crb_geom_fail(e, "weight",
                         "a positive multiple of groups (" + std::to_string(groups) + ") as its first dimension",
                         crb_geom_dims(w, 4));
  if (w[1] * groups != c)
    return crb_geom_fail(e, "weight",
                         "shape [k, " + std::to_string(c / groups) + ", r, s] (x has " + std::to_string(c) +
                             " channels" + (groups > 1 ? ", groups " + std::to_string(groups) : std::string()) + ")",
                         crb_geom_dims(w, 4));
  const int64_t out_h = crb_conv_out_size(x[2], pad[0], dil[0], w[2], stride[0]);
  const int64_t out_w = crb_conv_out_size(x[3], pad[1], dil[1], w[3], stride[1]);
  if (out_h <= 0 || out_w <= 0)
    return crb_geom_fail(e, "x",
                         "an input large enough for the kernel (output size would be " + std::to_string(out_h) + "x" +
                             std::to_string(out_w) + ")",
                         crb_geom_dims(x, 4) + " with kernel " + crb_geom_pair(w[2], w[3]));
  // Only padding makes the output larger than the input plane; otherwise it is the filters.
  const int64_t y[4] = {x[0], k, out_h, out_w};
  if (pad[0] || pad[1]) {
    if (!crb_geom_output(y, 4, dtype, "padding", crb_geom_pair(pad[0], pad[1]), e)) return false;
  } else if (!crb_geom_output(y, 4, dtype, "weight", crb_geom_dims(w, 4), e)) {
    return false;
  }
  if (!crb_geom_plane(x, "x", e)) return false;
  *d = crb_conv2d_desc{};
  d->n = int(x[0]);
  d->c = int(c);
  d->h = int(x[2]);
  d->w = int(x[3]);
  d->k = int(k);
  d->r = int(w[2]);
  d->s = int(w[3]);
  d->stride_h = stride[0];
  d->stride_w = stride[1];
  d->pad_h = pad[0];
  d->pad_w = pad[1];
  d->dil_h = dil[0];
  d->dil_w = dil[1];
  d->groups = int(groups);
  d->out_h = int(out_h);
  d->out_w = int(out_w);
  d->dtype = dtype;
  d->layout = layout;
  return true;
}

// --- pooling (ceil_mode false, dilation 1)
inline int64_t crb_pool_out_size(int64_t in, int64_t pad, int64_t kernel, int64_t stride) {
  return crb_conv_out_size(in, pad, 1, kernel, stride);
}

// x (n, c, h, w); kernel and stride >= 1, padding >= 0 (the binding reads them so).
inline bool crb_geom_maxpool2d(const int64_t* x, size_t x_rank, const int kernel[2], const int stride[2],
                               const int pad[2], crb_dtype dtype, crb_layout layout, crb_pool_desc* d,
                               crb_geom_error* e) {
  if (!crb_geom_rank(x, x_rank, 4, "x", "[n, c, h, w]", e)) return false;
  for (int i = 0; i < 2; ++i) {
    if (pad[i] * 2 > kernel[i])
      return crb_geom_fail(e, "padding", "at most half the kernel size (kernel " + crb_geom_pair(kernel[0], kernel[1]) + ")",
                           crb_geom_pair(pad[0], pad[1]));
  }
  const int64_t out_h = crb_pool_out_size(x[2], pad[0], kernel[0], stride[0]);
  const int64_t out_w = crb_pool_out_size(x[3], pad[1], kernel[1], stride[1]);
  if (out_h <= 0 || out_w <= 0)
    return crb_geom_fail(e, "x",
                         "an input at least as large as the kernel " + crb_geom_pair(kernel[0], kernel[1]) +
                             " (with padding)",
                         crb_geom_dims(x, 4));
  const int64_t y[4] = {x[0], x[1], out_h, out_w};
  if (!crb_geom_output(y, 4, dtype, "padding", crb_geom_pair(pad[0], pad[1]), e)) return false;
  if (!crb_geom_plane(x, "x", e)) return false;  // the indices are flat offsets within a plane of x
  *d = crb_pool_desc{};
  d->n = int(x[0]);
  d->c = int(x[1]);
  d->h = int(x[2]);
  d->w = int(x[3]);
  d->kernel_h = kernel[0];
  d->kernel_w = kernel[1];
  d->stride_h = stride[0];
  d->stride_w = stride[1];
  d->pad_h = pad[0];
  d->pad_w = pad[1];
  d->out_h = int(out_h);
  d->out_w = int(out_w);
  d->dtype = dtype;
  d->layout = layout;
  return true;
}

// Adaptive average pooling of x (n, c, h, w) to (n, c, out[0], out[1]), out >= 1 (the binding
// reads it so). `x_arg` names x ("x" forward, "inputShape" backward).
inline bool crb_geom_adaptive_avgpool2d(const int64_t* x, size_t x_rank, const int out[2], const char* x_arg,
                                        crb_dtype dtype, crb_layout layout, crb_pool_desc* d, crb_geom_error* e) {
  if (!crb_geom_rank(x, x_rank, 4, x_arg, "[n, c, h, w]", e)) return false;
  if (x[2] == 0 || x[3] == 0) return crb_geom_fail(e, x_arg, "non-empty spatial dimensions", crb_geom_dims(x, 4));
  const int64_t y[4] = {x[0], x[1], out[0], out[1]};
  if (!crb_geom_output(y, 4, dtype, "outputSize", crb_geom_pair(out[0], out[1]), e)) return false;
  *d = crb_pool_desc{};
  d->n = int(x[0]);
  d->c = int(x[1]);
  d->h = int(x[2]);
  d->w = int(x[3]);
  d->out_h = out[0];
  d->out_w = out[1];
  d->dtype = dtype;
  d->layout = layout;
  return true;
}

// Backward: the gradient dy (n, c, outH, outW) of an input of shape `input`.
inline bool crb_geom_adaptive_avgpool2d_backward(const int64_t* dy, size_t dy_rank, const int64_t* input,
                                                 size_t input_rank, crb_dtype dtype, crb_layout layout,
                                                 crb_pool_desc* d, crb_geom_error* e) {
  if (!crb_geom_rank(dy, dy_rank, 4, "dy", "[n, c, outH, outW]", e)) return false;
  if (input_rank != 4)
    return crb_geom_fail(e, "inputShape", "4 dimensions [n, c, h, w]", crb_geom_dims(input, input_rank));
  if (input[0] != dy[0] || input[1] != dy[1])
    return crb_geom_fail(e, "inputShape",
                         "[" + std::to_string(dy[0]) + ", " + std::to_string(dy[1]) + ", h, w] (n and c of dy)",
                         crb_geom_dims(input, 4));
  if (input[2] == 0 || input[3] == 0)
    return crb_geom_fail(e, "inputShape", "non-empty spatial dimensions", crb_geom_dims(input, 4));
  if (dy[2] == 0 || dy[3] == 0) return crb_geom_fail(e, "dy", "a non-empty output size", crb_geom_dims(dy, 4));
  const int out[2] = {int(dy[2]), int(dy[3])};
  return crb_geom_adaptive_avgpool2d(input, 4, out, "inputShape", dtype, layout, d, e);
}

// --- batch norm over (n, h, w) per channel of x (n, c, h, w) or (n, c)
// eps >= 0 and finite (PyTorch accepts eps = 0; so does cuDNN, CUDNN_BN_MIN_EPSILON is 0);
// momentum finite. `train_forward`: statistics are taken from the batch, which needs more than
// one value per channel (PyTorch: "Expected more than 1 value per channel when training").
inline bool crb_bn_values_per_channel_ok(int64_t count) { return count > 1; }

inline bool crb_geom_batchnorm(const int64_t* x, size_t x_rank, double eps, double momentum, bool train_forward,
                               crb_dtype dtype, crb_layout layout, crb_bn_desc* d, crb_geom_error* e) {
  if (x_rank != 4 && x_rank != 2)
    return crb_geom_fail(e, "x", "4-D shape [n, c, h, w] or 2-D shape [n, c]", crb_geom_dims(x, x_rank));
  if (!(eps >= 0) || eps - eps != 0) return crb_geom_fail(e, "eps", "a number >= 0", std::to_string(eps));
  if (momentum - momentum != 0) return crb_geom_fail(e, "momentum", "a finite number", std::to_string(momentum));
  const int64_t h = x_rank == 4 ? x[2] : 1, w = x_rank == 4 ? x[3] : 1;
  if (train_forward && !crb_bn_values_per_channel_ok(x[0] * h * w))
    return crb_geom_fail(e, "x", "more than 1 value per channel when training", crb_geom_dims(x, x_rank));
  *d = crb_bn_desc{};
  d->n = int(x[0]);
  d->c = int(x[1]);
  d->h = int(h);
  d->w = int(w);
  d->eps = eps;
  d->momentum = momentum;
  d->dtype = dtype;
  d->layout = layout;
  return true;
}

// A per-channel tensor (gamma, beta, running or saved statistics): shape [c].
inline bool crb_geom_channel_vector(const int64_t* t, size_t rank, int64_t c, const char* arg, crb_geom_error* e) {
  if (rank == 1 && t[0] == c) return true;
  return crb_geom_fail(e, arg, "shape [" + std::to_string(c) + "] (x has " + std::to_string(c) + " channels)",
                       crb_geom_dims(t, rank));
}

// --- linear, y = x W^T + b: x (m, k), W (n, k), k >= 1
inline bool crb_geom_linear(const int64_t* x, size_t x_rank, const int64_t* w, size_t w_rank, crb_dtype dtype,
                            crb_linear_desc* d, crb_geom_error* e) {
  if (!crb_geom_rank(x, x_rank, 2, "x", "[m, k]", e)) return false;
  if (!crb_geom_rank(w, w_rank, 2, "weight", "[n, k]", e)) return false;
  if (w[1] != x[1])
    return crb_geom_fail(e, "weight",
                         "shape [n, " + std::to_string(x[1]) + "] (x has " + std::to_string(x[1]) + " features)",
                         crb_geom_dims(w, 2));
  if (x[1] == 0) return crb_geom_fail(e, "x", "at least one feature (k > 0)", crb_geom_dims(x, 2));
  const int64_t y[2] = {x[0], w[0]};
  if (!crb_geom_output(y, 2, dtype, "weight", crb_geom_dims(w, 2), e)) return false;
  *d = crb_linear_desc{};
  d->m = int(x[0]);
  d->k = int(x[1]);
  d->n = int(w[0]);
  d->dtype = dtype;
  return true;
}

// A bias of shape [count] (conv: one per filter, linear: one per output).
inline bool crb_geom_bias(const int64_t* b, size_t rank, int64_t count, const char* per, crb_geom_error* e) {
  if (rank == 1 && b[0] == count) return true;
  return crb_geom_fail(e, "bias", "shape [" + std::to_string(count) + "] (weight has " + std::to_string(count) + " " + per + ")",
                       crb_geom_dims(b, rank));
}

// --- softmax cross-entropy: logits (n, classes), classes >= 1, labels (n). `logits_arg` names
// the logits ("logits", or "probs" backward). `mean`: the loss is a mean over rows, so n >= 1.
inline bool crb_geom_cross_entropy(const int64_t* logits, size_t rank, const int64_t* labels, size_t labels_rank,
                                   const char* logits_arg, bool mean, crb_geom_error* e) {
  if (!crb_geom_rank(logits, rank, 2, logits_arg, "[n, classes]", e)) return false;
  if (logits[1] == 0) return crb_geom_fail(e, logits_arg, "at least one class", crb_geom_dims(logits, 2));
  if (labels_rank != 1 || labels[0] != logits[0])
    return crb_geom_fail(e, "labels", "shape " + crb_geom_dims(logits, 1) + " (one label per row of " + logits_arg + ")",
                         crb_geom_dims(labels, labels_rank));
  if (mean && logits[0] == 0)
    return crb_geom_fail(e, logits_arg, "at least one row (the mean of nothing is undefined)", "[0, classes]");
  return true;
}

// The gradient of a scalar loss: one element.
inline bool crb_geom_scalar(const int64_t* dims, size_t rank, const char* arg, crb_geom_error* e) {
  int64_t numel = 1;
  for (size_t i = 0; i < rank; ++i) numel *= dims[i];
  if (numel == 1) return true;
  return crb_geom_fail(e, arg, "a single element (shape [])", crb_geom_dims(dims, rank));
}

// --- uint8 images (n, c, h, w) -> float (n, c, out[0], out[1]); out >= 1 (the binding reads it
// so), std != 0. `size_arg` names the output size (normalizeImages calls it "size").
inline bool crb_geom_images(const int64_t* images, size_t rank, const int out[2], double mean, double stddev,
                            crb_dtype dtype, const char* size_arg, crb_image_desc* d, crb_geom_error* e) {
  if (!crb_geom_rank(images, rank, 4, "images", "[n, c, h, w]", e)) return false;
  if (images[2] == 0 || images[3] == 0) return crb_geom_fail(e, "images", "non-empty images", crb_geom_dims(images, 4));
  if (stddev == 0) return crb_geom_fail(e, "std", "a non-zero number", "0");
  const int64_t y[4] = {images[0], images[1], out[0], out[1]};
  if (!crb_geom_output(y, 4, dtype, size_arg, crb_geom_pair(out[0], out[1]), e)) return false;
  *d = crb_image_desc{};
  d->n = int(images[0]);
  d->c = int(images[1]);
  d->h = int(images[2]);
  d->w = int(images[3]);
  d->out_h = out[0];
  d->out_w = out[1];
  d->mean = mean;
  d->std = stddev;
  d->dtype = dtype;
  return true;
}

// --- the backends' assertions: the descriptor they are handed is one the rules above produce,
// and it is not empty (the binding never calls a backend for an empty tensor). Each returns
// false and fills *e (arg names the descriptor field) when it is not.
inline bool crb_geom_positive(const char* what, const int64_t* dims, size_t rank, crb_geom_error* e) {
  for (size_t i = 0; i < rank; ++i)
    if (dims[i] <= 0) return crb_geom_fail(e, what, "positive sizes", crb_geom_dims(dims, rank));
  return true;
}

inline bool crb_conv2d_check(const crb_conv2d_desc* d, crb_geom_error* e) {
  if (!d) return crb_geom_fail(e, "desc", "a descriptor", "null");
  const int64_t x[4] = {d->n, d->c, d->h, d->w};
  const int64_t w[4] = {d->k, d->groups > 0 ? d->c / d->groups : 0, d->r, d->s};
  if (!crb_geom_positive("x", x, 4, e) || !crb_geom_positive("weight", w, 4, e)) return false;
  const int stride[2] = {d->stride_h, d->stride_w}, pad[2] = {d->pad_h, d->pad_w}, dil[2] = {d->dil_h, d->dil_w};
  if (stride[0] < 1 || stride[1] < 1 || dil[0] < 1 || dil[1] < 1 || pad[0] < 0 || pad[1] < 0 || d->groups < 1)
    return crb_geom_fail(e, "desc", "stride, dilation and groups >= 1 and padding >= 0",
                         "stride " + crb_geom_pair(stride[0], stride[1]) + ", padding " + crb_geom_pair(pad[0], pad[1]) +
                             ", dilation " + crb_geom_pair(dil[0], dil[1]) + ", groups " + std::to_string(d->groups));
  crb_conv2d_desc want;
  if (!crb_geom_conv2d(x, 4, w, 4, stride, pad, dil, d->groups, d->dtype, d->layout, &want, e)) return false;
  if (want.out_h != d->out_h || want.out_w != d->out_w)
    return crb_geom_fail(e, "desc", "output size " + crb_geom_pair(want.out_h, want.out_w),
                         crb_geom_pair(d->out_h, d->out_w));
  return true;
}

inline bool crb_pool_check(const crb_pool_desc* d, bool max_pool, crb_geom_error* e) {
  if (!d) return crb_geom_fail(e, "desc", "a descriptor", "null");
  const int64_t x[4] = {d->n, d->c, d->h, d->w};
  const int64_t y[2] = {d->out_h, d->out_w};
  if (!crb_geom_positive("x", x, 4, e) || !crb_geom_positive("output size", y, 2, e)) return false;
  if (!max_pool) {
    const int out[2] = {d->out_h, d->out_w};
    crb_pool_desc want;
    return crb_geom_adaptive_avgpool2d(x, 4, out, "x", d->dtype, d->layout, &want, e);
  }
  const int kernel[2] = {d->kernel_h, d->kernel_w}, stride[2] = {d->stride_h, d->stride_w};
  const int pad[2] = {d->pad_h, d->pad_w};
  if (kernel[0] < 1 || kernel[1] < 1 || stride[0] < 1 || stride[1] < 1 || pad[0] < 0 || pad[1] < 0)
    return crb_geom_fail(e, "desc", "kernel and stride >= 1 and padding >= 0",
                         "kernel " + crb_geom_pair(kernel[0], kernel[1]) + ", stride " +
                             crb_geom_pair(stride[0], stride[1]) + ", padding " + crb_geom_pair(pad[0], pad[1]));
  crb_pool_desc want;
  if (!crb_geom_maxpool2d(x, 4, kernel, stride, pad, d->dtype, d->layout, &want, e)) return false;
  if (want.out_h != d->out_h || want.out_w != d->out_w)
    return crb_geom_fail(e, "desc", "output size " + crb_geom_pair(want.out_h, want.out_w),
                         crb_geom_pair(d->out_h, d->out_w));
  return true;
}

inline bool crb_bn_check(const crb_bn_desc* d, bool train_forward, crb_geom_error* e) {
  if (!d) return crb_geom_fail(e, "desc", "a descriptor", "null");
  const int64_t x[4] = {d->n, d->c, d->h, d->w};
  if (!crb_geom_positive("x", x, 4, e)) return false;
  crb_bn_desc want;
  return crb_geom_batchnorm(x, 4, d->eps, d->momentum, train_forward, d->dtype, d->layout, &want, e);
}

inline bool crb_linear_check(const crb_linear_desc* d, crb_geom_error* e) {
  if (!d) return crb_geom_fail(e, "desc", "a descriptor", "null");
  const int64_t mkn[3] = {d->m, d->k, d->n};
  return crb_geom_positive("(m, k, n)", mkn, 3, e);
}

inline bool crb_cross_entropy_check(int n, int classes, crb_geom_error* e) {
  const int64_t logits[2] = {n, classes};
  return crb_geom_positive("logits", logits, 2, e);
}

inline bool crb_images_check(const crb_image_desc* d, crb_geom_error* e) {
  if (!d) return crb_geom_fail(e, "desc", "a descriptor", "null");
  const int64_t in[4] = {d->n, d->c, d->h, d->w};
  const int64_t out[2] = {d->out_h, d->out_w};
  if (!crb_geom_positive("images", in, 4, e) || !crb_geom_positive("output size", out, 2, e)) return false;
  if (d->std == 0 || d->std - d->std != 0 || d->mean - d->mean != 0)
    return crb_geom_fail(e, "mean, std", "finite numbers, std non-zero",
                         std::to_string(d->mean) + ", " + std::to_string(d->std));
  return true;
}

// Layout conversion of an (n, c, h, w) tensor: sizes >= 0, both layouts known.
inline bool crb_layout_check(crb_layout dst, crb_layout src, int n, int c, int h, int w, crb_geom_error* e) {
  const int64_t dims[4] = {n, c, h, w};
  for (int i = 0; i < 4; ++i)
    if (dims[i] < 0) return crb_geom_fail(e, "shape", "sizes >= 0", crb_geom_dims(dims, 4));
  for (crb_layout l : {dst, src})
    if (l != CRB_NCHW && l != CRB_NHWC) return crb_geom_fail(e, "layout", "NCHW or NHWC", std::to_string(int(l)));
  return true;
}

#endif  // CRB_BACKEND_GEOMETRY_H
