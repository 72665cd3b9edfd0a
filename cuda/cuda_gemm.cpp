// Batched row-major GEMM through cuBLAS. cuBLAS is column-major, and a row-major [R, C] matrix
// with row stride ld is the column-major [C, R] matrix with the same ld, so the row-major
// C = op(A) op(B) is computed as the column-major C^T = op(B)^T op(A)^T: operands swapped, the
// same transpose flags, M and N exchanged.
// dtype bf16 means bf16 A and B with an f32 C and f32 accumulation (CUBLAS_COMPUTE_32F on the
// tensor cores), the CPU backend's contract too; the epilogue (gemm_epilogue.cu) adds the bias
// and rounds C into a bf16 D when asked.
// Deterministic mode (core/determinism.h) forbids cuBLAS's atomics-based reductions.
#include <algorithm>
#include <atomic>
#include <climits>
#include <string>

#include "core/determinism.h"
#include "cuda/cuda_allocator.h"
#include "cuda/cuda_backend.h"
#include "cuda/cuda_context.h"
#include "cuda/cuda_errors.h"
#include "cuda/gemm_epilogue.h"

namespace mg::cuda {
namespace {

std::atomic<bool> g_allow_tf32{false};

int to_int(int64_t v, const char* what) {
  MG_CHECK(v >= 0 && v <= INT_MAX, "cuda gemm: ", what, " = ", v, " exceeds cuBLAS's int range");
  return int(v);
}

}  // namespace

void set_allow_tf32(bool allow) { g_allow_tf32 = allow; }
bool allow_tf32() { return g_allow_tf32; }

void CudaBackend::gemm(const GemmArgs& g) {
  if (!g.C) {
    // The caller wants D only: cuBLAS still writes an f32 C, here a scratch block. Freeing it
    // right after queuing is safe: everything runs on the backend's one stream, so a later
    // user of the block runs after this GEMM and its epilogue (cuda_allocator.h).
    MG_CHECK(g.D && g.beta == 0.0 && g.dtype == DType::bf16,
             "cuda gemm: C may be null only with a bf16 output D and beta 0");
    if (g.M == 0 || g.N == 0 || g.batch == 0) return;
    const size_t bytes = sizeof(float) * size_t(g.batch) * size_t(g.M) * size_t(g.N);
    GemmArgs with_c = g;
    with_c.C = device_allocate(bytes);
    with_c.ldc = g.N;
    with_c.stride_c = g.M * g.N;
    try {
      gemm(with_c);
    } catch (...) {
      device_free(with_c.C);
      throw;
    }
    device_free(with_c.C);
    return;
  }
  const DType dtype = g.dtype;
  const bool ta = g.trans_a, tb = g.trans_b;
  const int64_t M = g.M, N = g.N, K = g.K, sa = g.stride_a, sb = g.stride_b, sc = g.stride_c, batch = g.batch;
  const double alpha = g.alpha, beta = g.beta;
  MG_CHECK(dtype == DType::f32 || dtype == DType::f64 || dtype == DType::bf16, "cuda gemm: dtype ",
           dtype_name(dtype), " not supported (f32, f64 or bf16 expected)");
  MG_CHECK(!g.D || dtype == DType::bf16, "cuda gemm: a bf16 output D needs bf16 operands, got ", dtype_name(dtype));
  MG_CHECK(!(g.bias || g.D) || sc != 0 || batch <= 1,
           "cuda gemm: an epilogue (bias or D) needs one C per batch entry (stride_c != 0)");
  if (M == 0 || N == 0 || batch == 0) return;
  const int m = to_int(N, "N"), n = to_int(M, "M"), k = to_int(K, "K");
  // cuBLAS insists on ld >= max(1, rows) even for operands it will not read (K == 0).
  const int ld_b = to_int(std::max<int64_t>({g.ldb, 1, tb ? K : N}), "ldb");
  const int ld_a = to_int(std::max<int64_t>({g.lda, 1, ta ? M : K}), "lda");
  const int ld_c = to_int(std::max<int64_t>(g.ldc, 1), "ldc");
  const cublasOperation_t op_b = tb ? CUBLAS_OP_T : CUBLAS_OP_N, op_a = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasHandle_t h = cublas_handle();
  CUBLAS_CHECK(cublasSetAtomicsMode(h, deterministic() ? CUBLAS_ATOMICS_NOT_ALLOWED : CUBLAS_ATOMICS_ALLOWED), "gemm");
  const size_t esize = dtype_size(dtype), esize_c = dtype == DType::bf16 ? sizeof(float) : esize;
  // No products (K == 0, or alpha 0 in the dtype C is computed in): C = beta * C without reading
  // A or B, as the CPU driver does (cpu/gemm.cpp, scale_c), instead of trusting cuBLAS with k == 0
  // (BLAS libraries have not all followed the reference BLAS's quick return there); a K == 0,
  // beta 0 GEMM must still write zeros.
  const bool no_products = K == 0 || (dtype == DType::f64 ? alpha == 0.0 : float(alpha) == 0.0f);

  // cuBLAS runs batch entries concurrently; a shared output (stride 0) gets them one at a time
  // instead, so the last entry's result is what remains, as on the CPU.
  const int64_t per_call = sc == 0 && batch > 1 ? 1 : batch;
  for (int64_t b0 = 0; b0 < batch; b0 += per_call) {
    const int count = to_int(std::min(per_call, batch - b0), "batch");
    const char* a_ptr = static_cast<const char*>(g.A) + b0 * sa * int64_t(esize);
    const char* b_ptr = static_cast<const char*>(g.B) + b0 * sb * int64_t(esize);
    char* c_ptr = static_cast<char*>(g.C) + b0 * sc * int64_t(esize_c);
    if (no_products) {
      gemm_scale_c(dtype, c_ptr, g.ldc, sc, beta, M, N, count);
    } else if (dtype == DType::f64) {
      CUBLAS_CHECK(cublasDgemmStridedBatched(h, op_b, op_a, m, n, k, &alpha, reinterpret_cast<const double*>(b_ptr),
                                             ld_b, sb, reinterpret_cast<const double*>(a_ptr), ld_a, sa, &beta,
                                             reinterpret_cast<double*>(c_ptr), ld_c, sc, count),
                   "gemm");
    } else if (dtype == DType::bf16) {
      const float alpha_f = float(alpha), beta_f = float(beta);
      CUBLAS_CHECK(cublasGemmStridedBatchedEx(h, op_b, op_a, m, n, k, &alpha_f, b_ptr, CUDA_R_16BF, ld_b, sb, a_ptr,
                                              CUDA_R_16BF, ld_a, sa, &beta_f, c_ptr, CUDA_R_32F, ld_c, sc, count,
                                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                   "gemm");
    } else if (g_allow_tf32) {
      const float alpha_f = float(alpha), beta_f = float(beta);
      CUBLAS_CHECK(cublasGemmStridedBatchedEx(h, op_b, op_a, m, n, k, &alpha_f, b_ptr, CUDA_R_32F, ld_b, sb, a_ptr,
                                              CUDA_R_32F, ld_a, sa, &beta_f, c_ptr, CUDA_R_32F, ld_c, sc, count,
                                              CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT),
                   "gemm");
    } else {
      const float alpha_f = float(alpha), beta_f = float(beta);
      CUBLAS_CHECK(cublasSgemmStridedBatched(h, op_b, op_a, m, n, k, &alpha_f, reinterpret_cast<const float*>(b_ptr),
                                             ld_b, sb, reinterpret_cast<const float*>(a_ptr), ld_a, sa, &beta_f,
                                             reinterpret_cast<float*>(c_ptr), ld_c, sc, count),
                   "gemm");
    }
  }
  gemm_epilogue(g);
}

}  // namespace mg::cuda
