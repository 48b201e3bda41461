#include "exports.h"
namespace crb {
void RegisterLoss(Napi::Env, Napi::Object) {}
}
