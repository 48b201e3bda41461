// Element types and devices as the addon names them in JS, and their sizes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../backend/backend_api.h"
#include "../backend/names.h"  // crb_dtype_name, crb_dtype_size

namespace crb {

enum class Device { kCpu = 0, kCuda = 1 };

const char* DeviceName(Device device);
// Returns false when `name` is not a device name.
bool ParseDevice(const std::string& name, Device* out);

bool ParseDType(const std::string& name, crb_dtype* out);
bool IsFloatDType(crb_dtype dtype);

using Shape = std::vector<int64_t>;

int64_t ShapeNumel(const Shape& shape);
std::string ShapeToString(const Shape& shape);  // "[2, 3, 4]"

}  // namespace crb
