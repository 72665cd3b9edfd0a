#pragma once
// Tensor factories. None records autograd history; pass requires_grad in the options to make
// a leaf that does.
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace mg {

Tensor zeros(const Shape& shape, TensorOptions opts = {});
Tensor ones(const Shape& shape, TensorOptions opts = {});
Tensor full(const Shape& shape, double value, TensorOptions opts = {});
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor scalar_tensor(double value, TensorOptions opts = {});  // 0-dim
// [start, end) in steps of `step`; dtype from opts (i32 or floating).
Tensor arange(double start, double end, double step = 1, TensorOptions opts = {});
inline Tensor arange(double end, TensorOptions opts = {}) { return arange(0, end, 1, opts); }

// Copies host values into a new tensor of the given shape (numel must match). The dtype is
// T's unless opts names another, in which case values are converted.
template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape,
                   TensorOptions opts = TensorOptions{dtype_of<T>::value});
template <class T>
Tensor from_vector(const std::vector<T>& values, TensorOptions opts = TensorOptions{dtype_of<T>::value}) {
  return from_vector(values, Shape{int64_t(values.size())}, opts);
}

// Counter-based random streams. A Generator hands out non-overlapping offsets, so successive
// draws differ while the whole sequence is fixed by the seed; the same seed draws the same
// numbers on CPU and CUDA.
class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t next_offset() { return offset_++; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) { seed_ = seed; offset_ = offset; }

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

Tensor rand(const Shape& shape, Generator& gen, TensorOptions opts = {});                  // U[0,1)
Tensor uniform(const Shape& shape, double lo, double hi, Generator& gen, TensorOptions opts = {});
Tensor randn(const Shape& shape, Generator& gen, TensorOptions opts = {});                 // N(0,1)
Tensor normal(const Shape& shape, double mean, double std, Generator& gen, TensorOptions opts = {});
Tensor randint(int32_t lo, int32_t hi, const Shape& shape, Generator& gen, TensorOptions opts = {});  // i32
// One-shot forms with an explicit seed (offset 0).
Tensor rand(const Shape& shape, uint64_t seed, TensorOptions opts = {});
Tensor randn(const Shape& shape, uint64_t seed, TensorOptions opts = {});
Tensor randint(int32_t lo, int32_t hi, const Shape& shape, uint64_t seed, TensorOptions opts = {});

}  // namespace mg
