// Softmax cross-entropy over (n, classes) logits with int32 labels, mean over the batch, and
// the argmax accuracy count. The log-softmax subtracts the row max first, so large logits
// cannot overflow; row sums are accumulated in double.
//   logits, probs, dlogits: (n, classes)   labels: (n)   loss_out, dloss: (1)   correct: (1) int32
#include <cmath>
#include <new>
#include <vector>

#include "dtype.h"
#include "ops.h"
#include "threadpool.h"

namespace crb_cpu {

namespace {

crb_status check_args(const char* op, int n, int classes, const int32_t* labels) {
  crb_geom_error e;
  if (crb_status st = check(crb_cross_entropy_check(n, classes, &e), e, op)) return st;
  if (labels) {
    for (int i = 0; i < n; ++i)
      if (labels[i] < 0 || labels[i] >= classes)
        return fail(CRB_ERR_INVALID, op, "labels[%d] = %d is out of range [0, %d)", i, labels[i], classes);
  }
  return CRB_OK;
}

template <class T>
void forward(int n, int classes, const T* logits, const int32_t* labels, T* loss_out, T* probs) {
  std::vector<double> row_loss(n);
  parallel_for(n, 16, [&](int64_t r0, int64_t r1, int) {
    for (int64_t i = r0; i < r1; ++i) {
      const T* z = logits + i * classes;
      T mx = z[0];
      for (int j = 1; j < classes; ++j) mx = z[j] > mx ? z[j] : mx;
      double total = 0;
      for (int j = 0; j < classes; ++j) total += std::exp(double(z[j]) - double(mx));
      const double log_total = std::log(total);
      if (probs) {
        T* p = probs + i * classes;
        for (int j = 0; j < classes; ++j) p[j] = T(std::exp(double(z[j]) - double(mx) - log_total));
      }
      row_loss[i] = log_total + double(mx) - double(z[labels[i]]);
    }
  });
  double total = 0;
  for (int i = 0; i < n; ++i) total += row_loss[i];
  loss_out[0] = T(total / n);
}

template <class T>
void backward(int n, int classes, const T* probs, const int32_t* labels, const T* dloss, T* dlogits) {
  const T scale = T(double(dloss[0]) / n);
  parallel_for(n, 16, [&](int64_t r0, int64_t r1, int) {
    for (int64_t i = r0; i < r1; ++i) {
      const T* p = probs + i * classes;
      T* g = dlogits + i * classes;
      for (int j = 0; j < classes; ++j) g[j] = scale * p[j];
      g[labels[i]] = scale * (p[labels[i]] - T(1));
    }
  });
}

// torch.argmax: the first maximum; a NaN counts as the maximum.
template <class T>
int32_t count_correct(int n, int classes, const T* logits, const int32_t* labels) {
  int32_t correct = 0;
  for (int i = 0; i < n; ++i) {
    const T* z = logits + int64_t(i) * classes;
    int best = 0;
    for (int j = 1; j < classes; ++j) {
      if (std::isnan(z[best])) break;
      if (z[j] > z[best] || std::isnan(z[j])) best = j;
    }
    correct += best == labels[i];
  }
  return correct;
}

}  // namespace

crb_status cross_entropy_forward(int n, int classes, crb_dtype dtype, const void* logits, const int32_t* labels,
                                 void* loss_out, void* probs) {
  if (crb_status st = check_args("cross_entropy_forward", n, classes, labels)) return st;
  if (!logits || !labels || !loss_out)
    return fail(CRB_ERR_INVALID, "cross_entropy_forward", "logits, labels and loss_out must not be null");
  return dispatch_float(dtype, "cross_entropy_forward", [&](auto zero) {
    using T = decltype(zero);
    try {
      forward<T>(n, classes, (const T*)logits, labels, (T*)loss_out, (T*)probs);
    } catch (const std::bad_alloc&) {
      return fail(CRB_ERR_OOM, "cross_entropy_forward", "could not allocate %d row losses", n);
    }
    return CRB_OK;
  });
}

crb_status cross_entropy_backward(int n, int classes, crb_dtype dtype, const void* probs, const int32_t* labels,
                                  const void* dloss, void* dlogits) {
  if (crb_status st = check_args("cross_entropy_backward", n, classes, labels)) return st;
  if (!probs || !labels || !dloss || !dlogits)
    return fail(CRB_ERR_INVALID, "cross_entropy_backward", "probs, labels, dloss and dlogits must not be null");
  return dispatch_float(dtype, "cross_entropy_backward", [&](auto zero) {
    using T = decltype(zero);
    backward<T>(n, classes, (const T*)probs, labels, (const T*)dloss, (T*)dlogits);
    return CRB_OK;
  });
}

crb_status accuracy_count(int n, int classes, crb_dtype dtype, const void* logits, const int32_t* labels,
                          int32_t* correct) {
  if (crb_status st = check_args("accuracy_count", n, classes, nullptr)) return st;
  if (!logits || !labels || !correct)
    return fail(CRB_ERR_INVALID, "accuracy_count", "logits, labels and correct must not be null");
  return dispatch_float(dtype, "accuracy_count", [&](auto zero) {
    using T = decltype(zero);
    *correct = count_correct<T>(n, classes, (const T*)logits, labels);
    return CRB_OK;
  });
}

}  // namespace crb_cpu
