#include "exports.h"
namespace crb {
void RegisterOptim(Napi::Env, Napi::Object) {}
}
