// The GEMM epilogue of core/backend.h's GemmArgs (bias, bf16 D) after cuBLAS has written C: one
// pass over C, the same arithmetic as the CPU's tile epilogue (f32 add, then round to nearest
// even), so both backends give the same bits for the same C.
#include "cuda/cuda_context.h"
#include "cuda/gemm_epilogue.h"
#include "cuda/kernel_utils.cuh"

namespace mg::cuda {
namespace {

template <class T>
__global__ void gemm_epilogue_kernel(T* C, int64_t ldc, int64_t stride_c, const T* bias, bf16_t* D, int64_t ldd,
                                     int64_t stride_d, int64_t M, int64_t N, int64_t total) {
  MG_GRID_STRIDE(i, total) {
    const int64_t j = i % N, r = (i / N) % M, b = i / (N * M);
    T* c = C + b * stride_c + r * ldc + j;
    T v = *c;
    if (bias) {
      v += bias[j];
      *c = v;
    }
    if constexpr (std::is_same_v<T, float>) {
      if (D) D[b * stride_d + r * ldd + j] = float_to_bf16(v);
    }
  }
}

// C = beta * C, the CPU's scale_c: beta 0 writes zeros (NaN or garbage in C does not survive).
template <class T>
__global__ void gemm_scale_c_kernel(T* C, int64_t ldc, int64_t stride_c, T beta, int64_t M, int64_t N,
                                    int64_t total) {
  MG_GRID_STRIDE(i, total) {
    const int64_t j = i % N, r = (i / N) % M, b = i / (N * M);
    T* c = C + b * stride_c + r * ldc + j;
    *c = beta == T(0) ? T(0) : *c * beta;
  }
}

}  // namespace

void gemm_scale_c(DType dtype, void* C, int64_t ldc, int64_t stride_c, double beta, int64_t M, int64_t N,
                  int64_t batch) {
  const int64_t total = batch * M * N;
  if (total == 0 || beta == 1.0) return;
  if (dtype == DType::f64) {
    gemm_scale_c_kernel<double><<<grid_for(total), kThreads, 0, stream()>>>(static_cast<double*>(C), ldc, stride_c,
                                                                            beta, M, N, total);
  } else {
    gemm_scale_c_kernel<float><<<grid_for(total), kThreads, 0, stream()>>>(static_cast<float*>(C), ldc, stride_c,
                                                                           float(beta), M, N, total);
  }
  CUDA_CHECK_LAUNCH("gemm");
}

void gemm_epilogue(const GemmArgs& g) {
  if (!g.bias && !g.D) return;
  const int64_t total = g.batch * g.M * g.N;
  if (total == 0) return;
  if (g.dtype == DType::f64) {
    gemm_epilogue_kernel<double><<<grid_for(total), kThreads, 0, stream()>>>(
        static_cast<double*>(g.C), g.ldc, g.stride_c, static_cast<const double*>(g.bias), nullptr, 0, 0, g.M, g.N, total);
  } else {
    gemm_epilogue_kernel<float><<<grid_for(total), kThreads, 0, stream()>>>(
        static_cast<float*>(g.C), g.ldc, g.stride_c, static_cast<const float*>(g.bias), static_cast<bf16_t*>(g.D), g.ldd,
        g.stride_d, g.M, g.N, total);
  }
  CUDA_CHECK_LAUNCH("gemm epilogue");
}

}  // namespace mg::cuda
