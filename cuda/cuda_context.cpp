#include "cuda/cuda_context.h"

#include "cuda/cuda_errors.h"

namespace mg::cuda {
namespace {

struct Context {
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  int sm_count = 0;
};

// Function-local statics: thread-safe lazy creation; never destroyed, because destroying CUDA
// objects during static destruction races the runtime's own teardown.
Context& context() {
  static Context* ctx = [] {
    auto* c = new Context;
    CUDA_CHECK(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking), "init");
    int dev = 0;
    CUDA_CHECK(cudaGetDevice(&dev), "init");
    CUDA_CHECK(cudaDeviceGetAttribute(&c->sm_count, cudaDevAttrMultiProcessorCount, dev), "init");
    return c;
  }();
  return *ctx;
}

}  // namespace

cudaStream_t stream() { return context().stream; }

cublasHandle_t cublas_handle() {
  static cublasHandle_t handle = [] {
    cublasHandle_t h = nullptr;
    CUBLAS_CHECK(cublasCreate(&h), "init cuBLAS");
    CUBLAS_CHECK(cublasSetStream(h, stream()), "init cuBLAS");
    // Default math: f32 GEMMs stay true f32 (no TF32) so results match the CPU; cuda_gemm.cpp
    // asks for TF32 per call when set_allow_tf32(true).
    CUBLAS_CHECK(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH), "init cuBLAS");
    return h;
  }();
  return handle;
}

int multiprocessor_count() { return context().sm_count; }

void sync_stream(const char* op) { CUDA_CHECK(cudaStreamSynchronize(stream()), op); }

}  // namespace mg::cuda
