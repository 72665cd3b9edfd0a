#include "core/backend.h"

#include <dlfcn.h>

#include <array>
#include <mutex>
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

// Loads the library of a backend built as a plugin (CUDA: libmg_cuda.so beside libmg_core.so),
// once; a failure is recorded as the device's unavailable reason. Called only while no backend
// of that type is registered (a program that links the backend directly never gets here).
void load_backend_plugin(DeviceType type) {
#ifdef MG_CUDA_PLUGIN
  // The CUDA backend is a library loaded on first use, not at program start: cuBLAS, cuBLASLt and
  // NCCL take ~0.3 s to map, which every CPU-only run (and each of the test suite's hundreds of
  // short runs) would otherwise pay. It lives beside this library, found through dladdr.
  if (type != DeviceType::CUDA) return;
  static std::once_flag once;
  std::call_once(once, [] {
    Dl_info info{};
    std::string path = MG_CUDA_PLUGIN;
    if (dladdr(reinterpret_cast<void*>(&register_backend), &info) != 0 && info.dli_fname != nullptr) {
      const std::string self = info.dli_fname;
      const size_t slash = self.rfind('/');
      if (slash != std::string::npos) path = self.substr(0, slash + 1) + MG_CUDA_PLUGIN;
    }
    if (dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL) == nullptr) {
      const char* err = dlerror();
      registry().unavailable[size_t(DeviceType::CUDA)] =
          std::string("the CUDA backend could not be loaded: ") + (err ? err : path.c_str());
    }
  });
#else
  (void)type;
#endif
}
}  // namespace

void register_backend(DeviceType type, Backend* backend) { registry().backends[size_t(type)] = backend; }

void set_backend_unavailable(DeviceType type, const char* why) {
  registry().unavailable[size_t(type)] = why;
}

bool backend_available(DeviceType type) {
  auto& r = registry();
  if (r.backends[size_t(type)] == nullptr) load_backend_plugin(type);
  return r.backends[size_t(type)] != nullptr && r.unavailable[size_t(type)].empty();
}

Backend& backend_for(Device device) {
  auto& r = registry();
  Backend* b = r.backends[size_t(device.type)];
  if (b == nullptr) {
    load_backend_plugin(device.type);
    b = r.backends[size_t(device.type)];
  }
  MG_CHECK(r.unavailable[size_t(device.type)].empty(), "device ", device.str(),
           " is not usable: ", r.unavailable[size_t(device.type)]);
  MG_CHECK(b != nullptr, "no backend for device ", device.str(),
           device.is_cuda() ? " (this build has no CUDA backend: configure with -DMG_CUDA=ON)" : "");
  return *b;
}

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  data_ = nbytes ? backend_for(device).allocate(nbytes) : nullptr;
}

Storage::~Storage() {
  if (data_) backend_for(device_).deallocate(data_, nbytes_);
}

}  // namespace mg
