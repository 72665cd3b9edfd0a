#include "core/backend.h"

#include <array>
#include <string>

namespace mg {
namespace {
struct Registry {
  std::array<Backend*, 2> backends{};
  std::array<std::string, 2> unavailable;
};
Registry& registry() {
  static Registry r;
  return r;
}
}  // namespace

void register_backend(DeviceType type, Backend* backend) { registry().backends[size_t(type)] = backend; }

void set_backend_unavailable(DeviceType type, const char* why) {
  registry().unavailable[size_t(type)] = why;
}

bool backend_available(DeviceType type) {
  auto& r = registry();
  return r.backends[size_t(type)] != nullptr && r.unavailable[size_t(type)].empty();
}

Backend& backend_for(Device device) {
  auto& r = registry();
  Backend* b = r.backends[size_t(device.type)];
  MG_CHECK(b != nullptr, "no backend for device ", device.str(),
           device.is_cuda() ? " (this build has no CUDA backend: configure with -DMG_CUDA=ON)" : "");
  MG_CHECK(r.unavailable[size_t(device.type)].empty(), "device ", device.str(),
           " is not usable: ", r.unavailable[size_t(device.type)]);
  return *b;
}

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  data_ = nbytes ? backend_for(device).allocate(nbytes) : nullptr;
}

Storage::~Storage() {
  if (data_) backend_for(device_).deallocate(data_, nbytes_);
}

}  // namespace mg
