#pragma once
// The CUDA backend's per-process state, created on first use (never at load time, so a program
// that only uses the CPU creates no CUDA context): one non-blocking stream on which every kernel,
// copy and cuBLAS call runs, the cuBLAS handle bound to it, and device properties.
#include <cublas_v2.h>
#include <cuda_runtime.h>

namespace mg::cuda {

cudaStream_t stream();
// The cuBLAS handle, bound to stream(); f32 GEMMs use TF32 tensor cores only when allowed.
cublasHandle_t cublas_handle();
int multiprocessor_count();

// Waits for all work queued on stream(); `op` names the caller in an error.
void sync_stream(const char* op);

}  // namespace mg::cuda
