#pragma once
// The epilogue of a GEMM (GemmArgs::bias and ::D, core/backend.h) on C as cuBLAS left it, queued
// on the backend's stream. No-op when neither is set.
#include "core/backend.h"

namespace mg::cuda {

void gemm_epilogue(const GemmArgs& g);

// C = beta * C on `batch` [M, N] matrices of C's dtype (f64 for dtype f64, else f32), queued on the
// backend's stream: beta 0 writes zeros without reading C, beta 1 leaves C alone. What a GEMM with
// no products (K == 0 or alpha == 0) computes, done here as the CPU's scale_c does it rather than
// left to cuBLAS, whose k == 0 handling is not something to rely on.
void gemm_scale_c(DType dtype, void* C, int64_t ldc, int64_t stride_c, double beta, int64_t M, int64_t N,
                  int64_t batch);

}  // namespace mg::cuda
