#include "dist_common.h"

namespace crb {

int64_t IntField(OpCall& call, const Napi::Object& o, const char* key, const std::string& name, int64_t min,
                 int64_t max) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) call.TypeErr(name, "an integer", DescribeValue(v));
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= double(min) && d <= double(max)) || d != double(int64_t(d)))
    call.RangeErr(name, "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]", DescribeValue(v));
  return int64_t(d);
}

crb_gloo_reduce ReduceArg(OpCall& call, size_t index, crb_dtype dtype, const char* tensor_name, size_t tensor_index) {
  const std::string name = call.Arg(index).IsString() ? call.Arg(index).As<Napi::String>().Utf8Value() : "";
  crb_gloo_reduce op = CRB_GLOO_SUM;
  if (name == "sum") op = CRB_GLOO_SUM;
  else if (name == "avg") op = CRB_GLOO_AVG;
  else if (name == "max") op = CRB_GLOO_MAX;
  else if (name == "min") op = CRB_GLOO_MIN;
  else if (name == "product") op = CRB_GLOO_PRODUCT;
  else call.RangeErr("op", "\"sum\", \"avg\", \"max\", \"min\" or \"product\"", DescribeValue(call.Arg(index)));
  if (op == CRB_GLOO_AVG && !IsFloatDType(dtype))
    call.TypeErr(tensor_name, "a float32 or float64 tensor for \"avg\" (or float16, bfloat16 on CUDA; use \"sum\" for integers)",
                 DescribeValue(call.Arg(tensor_index)));
  return op;
}

TensorHandle* DistTensor(OpCall& call, const Napi::Value& value, const std::string& name, Device device) {
  TensorHandle* t = call.TensorValue(value, name, false);
  if (t->device() != device)
    call.TypeErr(name,
                 device == Device::kCpu ? "a CPU tensor (gloo works on host memory; NCCL is for CUDA tensors)"
                                        : "a CUDA tensor (NCCL works on device memory; gloo is for CPU tensors)",
                 DescribeValue(value));
  if (device == Device::kCpu && (t->dtype() == CRB_F16 || t->dtype() == CRB_BF16))
    call.TypeErr(name, "a float32, float64, int32, int64 or uint8 tensor", DescribeValue(value));
  return t;
}

std::vector<TensorHandle*> DistTensorList(OpCall& call, size_t index, Device device) {
  if (!call.Arg(index).IsArray() || call.Arg(index).As<Napi::Array>().Length() == 0)
    call.TypeErr("tensors", std::string("a non-empty array of ") + DeviceName(device) + " tensors",
                 DescribeValue(call.Arg(index)));
  Napi::Array list = call.Arg(index).As<Napi::Array>();
  std::vector<TensorHandle*> tensors;
  for (uint32_t i = 0; i < list.Length(); i++) {
    const std::string name = "tensors[" + std::to_string(i) + "]";
    TensorHandle* t = DistTensor(call, list.Get(i), name, device);
    if (!tensors.empty()) call.RequireDType(t, name, tensors[0]->dtype(), "the dtype of tensors[0]");
    tensors.push_back(t);
  }
  return tensors;
}

void CheckGatherArgs(OpCall& call, TensorHandle* out, TensorHandle* input, int world_size) {
  call.RequireDType(out, "out", input->dtype(), "the dtype of \"input\"");
  Shape expected = input->shape();
  if (expected.empty()) expected = {int64_t(world_size)};
  else expected[0] *= world_size;
  call.RequireShape(out, "out", expected, "\"input\"'s shape with dim 0 times the world size");
  call.RequireSameLayout(out, "out", input, "input");
}

}  // namespace crb
