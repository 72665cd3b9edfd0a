#pragma once
// A block of memory on one device, owned by the backend that allocated it. Tensors share
// storages through shared_ptr; the memory goes back to its backend when the last view dies.
#include <cstddef>
#include <memory>

#include "core/device.h"

namespace mg {

class Storage {
 public:
  Storage(size_t nbytes, Device device);  // allocates through the device's backend
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
};

}  // namespace mg
