#pragma once
// The Backend interface: the fixed list of kernels that ops/ calls. cpu/ and cuda/ implement it
// and register themselves; core/ never names a concrete backend. Kernels receive tensors whose
// arguments ops/ has already checked (shapes, dtypes, devices agree); each kernel states the
// layout it demands. A backend throws mg::Error for a kernel/dtype it does not implement.
#include <cstddef>
#include <cstdint>

#include "core/tensor.h"

namespace mg {

enum class UnaryOp : uint8_t {
  neg, exp, log, sqrt, rsqrt, abs, tanh, sign,
  pow_scalar,   // x^alpha
  add_scalar,   // x + alpha
  mul_scalar,   // x * alpha
  rsub_scalar,  // alpha - x
};
enum class BinaryOp : uint8_t { add, sub, mul, div, eq, maximum };
enum class ReduceOp : uint8_t { sum, max };
enum class RandomKind : uint8_t { uniform, normal, randint };

struct Backend {
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // memory
  virtual void* allocate(size_t nbytes) = 0;
  virtual void deallocate(void* ptr, size_t nbytes) = 0;
  virtual void copy_from_host(void* dst, const void* src, size_t nbytes) = 0;
  virtual void copy_to_host(void* dst, const void* src, size_t nbytes) = 0;
  virtual void synchronize() {}

  // out (any layout) = value
  virtual void fill(const Tensor& out, double value) = 0;
  // dst = src elementwise, same shape, any layouts, dtype conversion allowed (bf16 rounds to
  // nearest even). src and dst must not overlap.
  virtual void copy(const Tensor& src, const Tensor& dst) = 0;
  // out (contiguous): kind uniform -> U[a, b), normal -> N(a, b^2), randint -> [a, b).
  // Element i depends only on (seed, offset, i): see core/philox.h.
  virtual void random(const Tensor& out, RandomKind kind, uint64_t seed, uint64_t offset, double a,
                      double b) = 0;
  // out (contiguous, shape of x) = op(x); x any layout.
  virtual void unary(UnaryOp op, const Tensor& x, const Tensor& out, double alpha) = 0;
  // out (contiguous) = op(a, b); a and b are already broadcast views with out's shape.
  virtual void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) = 0;
  // x contiguous [rows, n] -> out contiguous [rows]
  virtual void reduce_rows(ReduceOp op, const Tensor& x, const Tensor& out) = 0;
  // Batched row-major GEMM on raw device pointers: C_i = alpha op(A_i) op(B_i) + beta C_i,
  // stride 0 broadcasts an operand. dtype f32 or f64.
  virtual void gemm(DType dtype, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                    double alpha, const void* A, int64_t lda, int64_t stride_a, const void* B,
                    int64_t ldb, int64_t stride_b, double beta, void* C, int64_t ldc,
                    int64_t stride_c, int64_t batch) = 0;
  // x contiguous viewed [outer, n, inner], idx i32 contiguous [k] -> out contiguous [outer, k, inner].
  // Indices are checked to lie in [0, n).
  virtual void index_select(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& out) = 0;
  // out contiguous [outer, n, inner] += src contiguous [outer, k, inner] scattered by idx;
  // repeated indices accumulate.
  virtual void index_add(const Tensor& out, int64_t dim, const Tensor& idx, const Tensor& src) = 0;
};

void register_backend(DeviceType type, Backend* backend);
// The backend for a device; throws naming the device when none is registered (e.g. a build
// without CUDA) or when it reports no usable hardware.
Backend& backend_for(Device device);
bool backend_available(DeviceType type);

// Set by a backend that registers but finds no hardware (CUDA build on a machine without GPU).
void set_backend_unavailable(DeviceType type, const char* why);

}  // namespace mg
