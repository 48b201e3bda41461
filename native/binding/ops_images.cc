#include "exports.h"
namespace crb {
void RegisterImages(Napi::Env, Napi::Object) {}
}
