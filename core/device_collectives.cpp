#include "core/device_collectives.h"

#include <array>

#include "core/backend.h"

namespace mg {

namespace {
std::array<DeviceCollectives*, 2>& registry() {
  static std::array<DeviceCollectives*, 2> r{};
  return r;
}
}  // namespace

void register_device_collectives(DeviceType type, DeviceCollectives* collectives) {
  registry()[size_t(type)] = collectives;
}

DeviceCollectives* device_collectives(DeviceType type) {
  if (!backend_available(type)) return nullptr;  // first: it loads the backend, which registers these
  return registry()[size_t(type)];
}

}  // namespace mg
