#pragma once
// The Backend interface: the fixed list of kernels that ops/ calls (core/backend_kernels.def).
// cpu/ and cuda/ implement every kernel and register themselves; core/ never names a concrete
// backend.
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
enum class Activation : uint8_t { gelu, gelu_tanh, silu, relu };  // gelu = exact erf form

// Triangular structure of one GEMM that the caller guarantees, in op(A)'s and C's coordinates
// (per batch entry). A hint: a backend may skip the work it makes unnecessary (the CPU does) or
// run the dense GEMM (CUDA), and with finite operands the result is the same either way (the
// dense GEMM turns a skipped 0 * inf or 0 * NaN into NaN).
//   a_lower: op(A)[i, k] == 0 wherever k > i.   a_upper: op(A)[i, k] == 0 wherever k < i.
//   c_lower: only C[i, j] (and D[i, j]) with j <= i are wanted; the others are unspecified after
//            the call (they may hold anything, or be left as they were).
enum class GemmTri : uint8_t { none, a_lower, a_upper, c_lower };

// One batched row-major GEMM on raw device pointers, for i in [0, batch):
//   C_i = alpha * op(A_i) * op(B_i) + beta * C_i,   op(X) = X^T when trans_x,
// op(A_i) [M, K] (A_i stored [K, M] when trans_a), op(B_i) [K, N] (B_i stored [N, K] when
// trans_b), C_i [M, N]. ld* are row strides and stride_* the distance between consecutive batch
// entries, both in elements; a stride of 0 broadcasts one matrix over the batch (stride_c == 0:
// the entries run one after another on the same C, and the last one's result remains).
// beta == 0 overwrites C without reading it. dtype f32 or f64; bf16 means A and B bf16 and C f32
// (f32 accumulation: the autocast matmuls). Callers name the fields they set:
//   be.gemm({.dtype = dt, .M = m, .N = n, .K = k, .A = a, .lda = k, .B = b, .ldb = n, .C = c, .ldc = n});
struct GemmArgs {
  DType dtype = DType::f32;
  bool trans_a = false, trans_b = false;
  int64_t M = 0, N = 0, K = 0;
  double alpha = 1.0;
  const void* A = nullptr;
  int64_t lda = 0, stride_a = 0;
  const void* B = nullptr;
  int64_t ldb = 0, stride_b = 0;
  double beta = 0.0;
  void* C = nullptr;
  int64_t ldc = 0, stride_c = 0;
  int64_t batch = 1;
  // Epilogue, applied to the finished C (C's dtype: f32 for bf16 operands): C[i, j] += bias[j]
  // when bias ([N], the same for every batch entry) is set; then, for bf16 operands only, D (bf16,
  // row stride ldd, batch stride stride_d) = C rounded to nearest even when D is set. Either
  // needs one C per batch entry (stride_c != 0 or batch 1). With D set and beta 0, C may be null:
  // the caller wants D only, and the backend keeps whatever f32 result it needs itself (the CPU
  // none at all when the GEMM is one K block).
  const void* bias = nullptr;
  void* D = nullptr;
  int64_t ldd = 0, stride_d = 0;
  GemmTri tri = GemmTri::none;  // see GemmTri
};

// A backend allocator's accounting, in bytes as handed to tensors (rounded block sizes).
struct MemoryStats {
  size_t bytes_in_use = 0;       // held by live tensors now
  size_t peak_bytes_in_use = 0;  // maximum of bytes_in_use since start or reset_peak_memory()
  size_t bytes_cached = 0;       // freed blocks the allocator keeps for reuse
};

// The kernels themselves are listed, with their contracts, in core/backend_kernels.def.
struct Backend {
  virtual ~Backend() = default;
#define MG_BACKEND_KERNEL(ret, name, params) virtual ret name params = 0;
#include "core/backend_kernels.def"
#undef MG_BACKEND_KERNEL
};

void register_backend(DeviceType type, Backend* backend);
// The backend for a device; throws naming the device when none is registered (e.g. a build
// without CUDA) or when it reports no usable hardware. The CUDA backend is a library loaded here
// (and by backend_available) the first time a CUDA device is asked for.
Backend& backend_for(Device device);
bool backend_available(DeviceType type);

// Set by a backend that registers but finds no hardware (CUDA build on a machine without GPU).
void set_backend_unavailable(DeviceType type, const char* why);

}  // namespace mg
