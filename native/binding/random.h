// The host generator behind randn/rand. Values are drawn on the host in float64 and copied to
// the device, so a seed gives the same numbers on every device. The default seed is 0x5eed (fixed,
// so runs are reproducible unless the caller seeds from time themselves).
#pragma once

#include "napi_config.h"

#include <cstdint>
#include <random>

namespace crb {

constexpr uint64_t kDefaultSeed = 0x5eed;

class HostGenerator {
 public:
  HostGenerator() { Seed(kDefaultSeed); }
  void Seed(uint64_t seed) {
    engine_.seed(seed);
    has_spare_normal_ = false;
  }
  // Uniform in [0, 1) with 53 random bits.
  double Uniform() { return double(engine_() >> 11) * 0x1.0p-53; }
  // Standard normal by Box-Muller; the second value of each pair is kept for the next call.
  double Normal();

 private:
  std::mt19937_64 engine_;
  bool has_spare_normal_ = false;
  double spare_normal_ = 0;
};

}  // namespace crb
