#include "exports.h"
namespace crb {
void RegisterPooling(Napi::Env, Napi::Object) {}
}
