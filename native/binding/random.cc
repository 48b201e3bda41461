#include "random.h"

#include <cmath>

#include "addon_data.h"
#include "errors.h"
#include "exports.h"

namespace crb {

double HostGenerator::Normal() {
  if (has_spare_normal_) {
    has_spare_normal_ = false;
    return spare_normal_;
  }
  // u1 in (0, 1] keeps log() finite.
  double u1 = 1.0 - Uniform();
  double u2 = Uniform();
  double radius = std::sqrt(-2.0 * std::log(u1));
  double angle = 2.0 * M_PI * u2;
  spare_normal_ = radius * std::sin(angle);
  has_spare_normal_ = true;
  return radius * std::cos(angle);
}

namespace {

// manualSeed(seed): an integer in [0, 2^53]
Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Value v = info.Length() ? info[0] : env.Undefined();
  if (!v.IsNumber()) ThrowTypeError(env, ArgMessage("manualSeed", "seed", "an integer", DescribeValue(v)));
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 9007199254740992.0) || d != std::floor(d))
    ThrowRangeError(env, ArgMessage("manualSeed", "seed", "an integer in [0, 2^53]", DescribeValue(v)));
  GetAddonData(env).generator.Seed(uint64_t(d));
  return env.Undefined();
}

}  // namespace

// This file's rows of functions.def.
const js::Function js::manualSeed = ManualSeed;

}  // namespace crb
