#include "exports.h"
namespace crb {
void RegisterConv(Napi::Env, Napi::Object) {}
}
