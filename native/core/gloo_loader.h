// Finds and loads libcrb_gloo.so, the data-parallel library (native/gloo/), at run time. The
// addon never links gloo, so `require()` works where gloo is absent; the result says why not.
#pragma once

#include <string>

#include "../gloo/crb_gloo.h"

namespace crb {

struct GlooLoadResult {
  const crb_gloo_api_table* api = nullptr;  // null when unusable
  std::string reason;                       // one line: why not, and what to do
  std::string library_path;                 // loaded, or tried
};

// Loads once (thread-safe) and caches the result: $CRB_GLOO_LIBRARY (a file path) when set,
// else <addon_dir>/libcrb_gloo.so.
const GlooLoadResult& load_gloo_library(const std::string& addon_dir);

}  // namespace crb
