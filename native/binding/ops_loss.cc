// Softmax cross-entropy (mean over the batch) and the accuracy count, over (n, classes) logits
// with int32 labels.
#include "exports.h"
#include "op_call.h"

namespace crb {

namespace {

// `mean`: the op averages over the rows, so it needs at least one.
void CheckLogitsAndLabels(OpCall& call, const TensorHandle* logits, const char* logits_name,
                          const TensorHandle* labels, bool mean = false) {
  call.RequireFloat(logits, logits_name);
  call.RequireDType(labels, "labels", CRB_I32, "class indices");
  crb_geom_error e;
  call.Geometry(crb_geom_cross_entropy(logits->shape().data(), logits->rank(), labels->shape().data(), labels->rank(),
                                       logits_name, mean, &e),
                e);
}

// crossEntropyForward(logits, labels) -> {loss: [], probs: (n, classes)}
Napi::Value Forward(const Napi::CallbackInfo& info) {
  OpCall call(info, "crossEntropy");
  TensorHandle* logits = call.Tensor(0, "logits");
  TensorHandle* labels = call.Tensor(1, "labels");
  CheckLogitsAndLabels(call, logits, "logits", labels, true);
  int n = AsInt(logits->dim(0)), classes = AsInt(logits->dim(1));
  crb_dtype dtype = logits->dtype();
  auto loss = call.Alloc({}, dtype);
  auto probs = call.Alloc(logits->shape(), dtype);
  call.Check(call.backend()->cross_entropy_forward(n, classes, dtype, logits->data(),
                                                   static_cast<const int32_t*>(labels->data()), loss->data(),
                                                   probs->data()),
             "cross_entropy_forward");
  Napi::Object result = Napi::Object::New(call.env());
  result.Set("loss", call.Wrap(loss, {}, dtype));
  result.Set("probs", call.Wrap(probs, logits->shape(), dtype));
  return result;
}

// crossEntropyBackward(probs, labels, dloss) -> dlogits
Napi::Value Backward(const Napi::CallbackInfo& info) {
  OpCall call(info, "crossEntropyBackward");
  TensorHandle* probs = call.Tensor(0, "probs");
  TensorHandle* labels = call.Tensor(1, "labels");
  TensorHandle* dloss = call.Tensor(2, "dloss");
  CheckLogitsAndLabels(call, probs, "probs", labels);
  call.RequireDType(dloss, "dloss", probs->dtype(), "the dtype of probs");
  crb_geom_error e;
  call.Geometry(crb_geom_scalar(dloss->shape().data(), dloss->rank(), "dloss", &e), e);
  int n = AsInt(probs->dim(0)), classes = AsInt(probs->dim(1));
  auto dlogits = call.Alloc(probs->shape(), probs->dtype());
  if (n)
    call.Check(call.backend()->cross_entropy_backward(n, classes, probs->dtype(), probs->data(),
                                                      static_cast<const int32_t*>(labels->data()), dloss->data(),
                                                      dlogits->data()),
               "cross_entropy_backward");
  return call.Wrap(dlogits, probs->shape(), probs->dtype());
}

// accuracyCount(logits, labels) -> int32 []
Napi::Value Accuracy(const Napi::CallbackInfo& info) {
  OpCall call(info, "accuracyCount");
  TensorHandle* logits = call.Tensor(0, "logits");
  TensorHandle* labels = call.Tensor(1, "labels");
  CheckLogitsAndLabels(call, logits, "logits", labels);
  int n = AsInt(logits->dim(0)), classes = AsInt(logits->dim(1));
  auto correct = call.Alloc({}, CRB_I32);
  if (n) {
    call.Check(call.backend()->accuracy_count(n, classes, logits->dtype(), logits->data(),
                                              static_cast<const int32_t*>(labels->data()),
                                              static_cast<int32_t*>(correct->data())),
               "accuracy_count");
  } else {
    call.Check(call.backend()->fill(correct->data(), 1, CRB_I32, 0.0), "fill");
  }
  return call.Wrap(correct, {}, CRB_I32);
}

}  // namespace

// This file's rows of functions.def.
const js::Function js::crossEntropyForward = Forward;
const js::Function js::crossEntropyBackward = Backward;
const js::Function js::accuracyCount = Accuracy;

}  // namespace crb
