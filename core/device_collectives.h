#pragma once
// Collectives on device memory, for data-parallel training on accelerators (NCCL on CUDA GPUs).
// A backend whose device has such a library registers it here, as it registers its Backend
// (core/backend.h), so that train/ can reduce device gradients in place without naming the
// library or including its headers. Joining a communicator needs a channel that already connects
// the ranks (MPI in train/communicator.h): one rank makes an id, the others receive it, all connect.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace mg {

// One joined communicator. Calls are collective: every rank makes the same calls, with tensors
// of the same shapes, in the same order.
struct DeviceComm {
  virtual ~DeviceComm() = default;
  // Starts an in-place elementwise sum over the ranks of each tensor (f32, contiguous, on this
  // communicator's device), ordered after all device work queued so far, and returns without
  // waiting for it; the tensors must stay alive and unwritten until wait_all().
  virtual void start_allreduce_sum(const std::vector<Tensor>& tensors) = 0;
  // Orders every later device operation after all the sums started so far; the host does not
  // wait (a later copy to the host does).
  virtual void wait_all() = 0;
};

struct DeviceCollectives {
  virtual ~DeviceCollectives() = default;
  // "NCCL 2.27.7": the library and its version.
  virtual std::string describe() const = 0;
  // A fresh communicator id (opaque bytes); made on one rank, which sends it to the others.
  virtual std::vector<uint8_t> unique_id() = 0;
  // Joins the communicator `id` as rank `rank` of `size`, on this process's current device;
  // blocks until every rank has joined. Throws mg::Error naming the library's reason on failure.
  virtual std::unique_ptr<DeviceComm> connect(const std::vector<uint8_t>& id, int rank, int size) = 0;
};

void register_device_collectives(DeviceType type, DeviceCollectives* collectives);
// The collectives registered for a device type whose backend is usable; null when none (a build
// without NCCL, a CPU device, or a machine without GPUs).
DeviceCollectives* device_collectives(DeviceType type);

}  // namespace mg
