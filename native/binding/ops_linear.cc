#include "exports.h"
namespace crb {
void RegisterLinear(Napi::Env, Napi::Object) {}
}
