// Each feature file adds its functions to the addon's exports; addon.cc calls them all.
#pragma once

#include "napi_config.h"

namespace crb {

void RegisterInfo(Napi::Env env, Napi::Object exports);          // info.cc
void RegisterRandom(Napi::Env env, Napi::Object exports);        // random.cc
void RegisterCreation(Napi::Env env, Napi::Object exports);      // creation.cc
void RegisterRead(Napi::Env env, Napi::Object exports);          // read.cc
void RegisterTransfer(Napi::Env env, Napi::Object exports);      // transfer.cc
void RegisterElementwise(Napi::Env env, Napi::Object exports);   // ops_elementwise.cc
void RegisterConv(Napi::Env env, Napi::Object exports);          // ops_conv.cc
void RegisterBatchNorm(Napi::Env env, Napi::Object exports);     // ops_batchnorm.cc
void RegisterPooling(Napi::Env env, Napi::Object exports);       // ops_pooling.cc
void RegisterLinear(Napi::Env env, Napi::Object exports);        // ops_linear.cc
void RegisterLoss(Napi::Env env, Napi::Object exports);          // ops_loss.cc
void RegisterOptim(Napi::Env env, Napi::Object exports);         // ops_sgd.cc
void RegisterImages(Napi::Env env, Napi::Object exports);        // ops_images.cc

}  // namespace crb
