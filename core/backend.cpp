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

#define MG_NOT_IMPLEMENTED(kernel) throw Error(std::string(name()) + ": kernel " #kernel " is not implemented on this backend")

void Backend::layernorm_forward(const Tensor&, const Tensor&, const Tensor&, double, const Tensor&, const Tensor&,
                                const Tensor&) { MG_NOT_IMPLEMENTED(layernorm_forward); }
void Backend::layernorm_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                 const Tensor&, const Tensor&, const Tensor&) { MG_NOT_IMPLEMENTED(layernorm_backward); }
void Backend::rmsnorm_forward(const Tensor&, const Tensor&, double, const Tensor&, const Tensor&) {
  MG_NOT_IMPLEMENTED(rmsnorm_forward);
}
void Backend::rmsnorm_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                               const Tensor&) { MG_NOT_IMPLEMENTED(rmsnorm_backward); }
void Backend::activation_forward(Activation, const Tensor&, const Tensor&) { MG_NOT_IMPLEMENTED(activation_forward); }
void Backend::activation_backward(Activation, const Tensor&, const Tensor&, const Tensor&) {
  MG_NOT_IMPLEMENTED(activation_backward);
}
void Backend::swiglu_forward(const Tensor&, const Tensor&, const Tensor&) { MG_NOT_IMPLEMENTED(swiglu_forward); }
void Backend::swiglu_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&) {
  MG_NOT_IMPLEMENTED(swiglu_backward);
}
void Backend::softmax_forward(const Tensor&, const Tensor&, bool) { MG_NOT_IMPLEMENTED(softmax_forward); }
void Backend::softmax_backward(const Tensor&, const Tensor&, const Tensor&, bool) { MG_NOT_IMPLEMENTED(softmax_backward); }
void Backend::cross_entropy_forward(const Tensor&, const Tensor&, int64_t, const Tensor&, const Tensor&) {
  MG_NOT_IMPLEMENTED(cross_entropy_forward);
}
void Backend::cross_entropy_backward(const Tensor&, const Tensor&, const Tensor&, int64_t, const Tensor&, double,
                                     const Tensor&) { MG_NOT_IMPLEMENTED(cross_entropy_backward); }
void Backend::tril(const Tensor&, int64_t, const Tensor&) { MG_NOT_IMPLEMENTED(tril); }
void Backend::attention_forward(const Tensor&, const Tensor&, const Tensor&, double, bool, const Tensor&,
                                const Tensor&) { MG_NOT_IMPLEMENTED(attention_forward); }
void Backend::attention_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                 const Tensor&, double, bool, const Tensor&, const Tensor&, const Tensor&) {
  MG_NOT_IMPLEMENTED(attention_backward);
}
void Backend::rope(const Tensor&, double, int64_t, bool, const Tensor&) { MG_NOT_IMPLEMENTED(rope); }
void Backend::adamw_step(const Tensor&, const Tensor&, const Tensor&, const Tensor&, double, double, double, double,
                         double, int64_t) { MG_NOT_IMPLEMENTED(adamw_step); }
void Backend::sgd_step(const Tensor&, const Tensor&, const Tensor&, double, double, double, double, bool) {
  MG_NOT_IMPLEMENTED(sgd_step);
}

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  data_ = nbytes ? backend_for(device).allocate(nbytes) : nullptr;
}

Storage::~Storage() {
  if (data_) backend_for(device_).deallocate(data_, nbytes_);
}

}  // namespace mg
