#pragma once
// Turns failed CUDA runtime and cuBLAS calls into mg::Error naming the op being run, the call
// that failed, where it is, and CUDA's own explanation. Kernels are launched asynchronously, so a
// fault inside a kernel can surface at a later check and is then reported under that later op.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

#include "core/error.h"

namespace mg::cuda {

[[noreturn]] inline void throw_cuda_error(cudaError_t err, const char* call, const char* op, const char* file,
                                          int line) {
  throw Error(std::string("cuda ") + op + ": " + call + " failed: " + cudaGetErrorName(err) + " (" +
              cudaGetErrorString(err) + ") at " + file + ":" + std::to_string(line));
}

[[noreturn]] inline void throw_cublas_error(cublasStatus_t st, const char* call, const char* op, const char* file,
                                            int line) {
  throw Error(std::string("cuda ") + op + ": " + call + " failed: " + cublasGetStatusName(st) + " (" +
              cublasGetStatusString(st) + ") at " + file + ":" + std::to_string(line));
}

}  // namespace mg::cuda

// Runs `call` and hands a status other than `ok` to `thrower` with the call's text and place.
#define MG_CUDA_STATUS_CHECK(call, op, ok, thrower)                        \
  do {                                                                     \
    const auto mg_status_ = (call);                                        \
    if (mg_status_ != (ok)) thrower(mg_status_, #call, op, __FILE__, __LINE__); \
  } while (0)

// CUDA_CHECK(cudaMemcpyAsync(...), "copy_to_host"): throws mg::Error unless the call succeeds.
#define CUDA_CHECK(call, op) MG_CUDA_STATUS_CHECK(call, op, cudaSuccess, ::mg::cuda::throw_cuda_error)
#define CUBLAS_CHECK(call, op) MG_CUDA_STATUS_CHECK(call, op, CUBLAS_STATUS_SUCCESS, ::mg::cuda::throw_cublas_error)

// After a <<<...>>> launch: reports a bad launch configuration (or an earlier asynchronous fault).
#define CUDA_CHECK_LAUNCH(op) CUDA_CHECK(cudaGetLastError(), op)
