// node-addon-api as the addon uses it; every binding file includes this instead of <napi.h>.
//
// Note [experimental Node-API]
// binding.gyp defines NAPI_EXPERIMENTAL for one behaviour: Node then runs basic finalizers (ones
// that take node_api_basic_env and never call into JS) during garbage collection instead of on
// a later turn of the event loop, so a synchronous loop gets dropped handles' memory back
// (Note [handles are freed in GC] in tensor_handle.h). Checked on Node 20.20, 22.22 and 24.22
// (test/34 and test/36 pass on each); a Node that predates this behaviour still accepts the
// module (version NAPI_VERSION_EXPERIMENTAL is always accepted) and defers as before. In GC the
// finalizer calls only napi_adjust_external_memory, a basic function. The binary calls no
// experimental function: node-addon-api would send every Napi::Reference destructor through
// node_api_post_finalizer (Node >= 20.10), which matters only for a reference destroyed inside
// a GC finalizer. Ours never are (the one GC finalizer deletes a TensorHandle, which holds no
// reference), so that routing is turned off here and the addon imports only Node-API 8
// functions (`nm -D --undefined-only` lists no node_api_*).
#pragma once

// With that routing off, node-addon-api declares finalizer environments as plain napi_env; the
// opt-out makes the C headers agree (a type-level change only: nothing checks at compile time
// that a basic finalizer calls only basic functions, so TensorHandle::Finalize says so itself).
#define NODE_API_EXPERIMENTAL_NOGC_ENV_OPT_OUT
#define NODE_API_EXPERIMENTAL_BASIC_ENV_OPT_OUT
#include <node_api.h>

#undef NODE_API_EXPERIMENTAL_HAS_POST_FINALIZER
#include <napi.h>
