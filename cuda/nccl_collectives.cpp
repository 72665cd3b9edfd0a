// NCCL for data-parallel training on GPUs (docs/distributed.md, "GPUs: NCCL"), registered as the
// CUDA device's collectives (core/device_collectives.h). Compiled only when CMake finds NCCL.
//
// Sums run on a stream of their own, so that a bucket's all-reduce overlaps the backward kernels
// still queued on the compute stream (cuda/cuda_context.h): an event orders each sum after the
// kernels that wrote its gradients, and wait_all() orders the compute stream after the sums.
#include <nccl.h>

#include <cstring>
#include <string>

#include "core/device_collectives.h"
#include "core/error.h"
#include "cuda/cuda_context.h"
#include "cuda/cuda_errors.h"

namespace mg::cuda {
namespace {

void nccl_check(ncclResult_t r, const char* call, const char* op) {
  if (r == ncclSuccess) return;
  throw Error(std::string("nccl ") + op + ": " + call + " failed: " + ncclGetErrorString(r) +
              (r == ncclUnhandledCudaError || r == ncclSystemError || r == ncclInternalError
                   ? " (set NCCL_DEBUG=WARN for NCCL's own account)"
                   : ""));
}
#define NCCL_CHECK(call, op) nccl_check((call), #call, op)

class NcclComm final : public DeviceComm {
 public:
  explicit NcclComm(ncclComm_t comm) : comm_(comm) {
    CUDA_CHECK(cudaStreamCreateWithFlags(&comm_stream_, cudaStreamNonBlocking), "nccl init");
    CUDA_CHECK(cudaEventCreateWithFlags(&grads_ready_, cudaEventDisableTiming), "nccl init");
    CUDA_CHECK(cudaEventCreateWithFlags(&sums_done_, cudaEventDisableTiming), "nccl init");
  }
  ~NcclComm() override {
    // Teardown errors are not actionable here; the process is ending its run.
    (void)ncclCommDestroy(comm_);
    (void)cudaEventDestroy(grads_ready_);
    (void)cudaEventDestroy(sums_done_);
    (void)cudaStreamDestroy(comm_stream_);
  }

  void start_allreduce_sum(const std::vector<Tensor>& tensors) override {
    for (const Tensor& t : tensors)
      MG_CHECK(t.device().is_cuda() && t.dtype() == DType::f32 && t.is_contiguous(),
               "nccl all-reduce: expects contiguous f32 CUDA tensors, got ", t.desc());
    CUDA_CHECK(cudaEventRecord(grads_ready_, stream()), "nccl all-reduce");
    CUDA_CHECK(cudaStreamWaitEvent(comm_stream_, grads_ready_, 0), "nccl all-reduce");
    // One group: NCCL fuses the tensors of a bucket into few kernels.
    NCCL_CHECK(ncclGroupStart(), "all-reduce");
    for (const Tensor& t : tensors) {
      float* p = t.data_ptr<float>();
      NCCL_CHECK(ncclAllReduce(p, p, size_t(t.numel()), ncclFloat32, ncclSum, comm_, comm_stream_), "all-reduce");
    }
    NCCL_CHECK(ncclGroupEnd(), "all-reduce");
    started_ = true;
  }

  void wait_all() override {
    if (!started_) return;
    CUDA_CHECK(cudaEventRecord(sums_done_, comm_stream_), "nccl wait");
    CUDA_CHECK(cudaStreamWaitEvent(stream(), sums_done_, 0), "nccl wait");
    started_ = false;
  }

 private:
  ncclComm_t comm_;
  cudaStream_t comm_stream_ = nullptr;
  cudaEvent_t grads_ready_ = nullptr, sums_done_ = nullptr;
  bool started_ = false;
};

class Nccl final : public DeviceCollectives {
 public:
  std::string describe() const override {
    int v = 0;
    if (ncclGetVersion(&v) != ncclSuccess) return "NCCL";
    // NCCL >= 2.9 encodes major * 10000 + minor * 100 + patch.
    return "NCCL " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
  }
  std::vector<uint8_t> unique_id() override {
    ncclUniqueId id;
    NCCL_CHECK(ncclGetUniqueId(&id), "unique id");
    std::vector<uint8_t> bytes(sizeof id.internal);
    std::memcpy(bytes.data(), id.internal, bytes.size());
    return bytes;
  }
  std::unique_ptr<DeviceComm> connect(const std::vector<uint8_t>& bytes, int rank, int size) override {
    ncclUniqueId id;
    MG_CHECK(bytes.size() == sizeof id.internal, "nccl connect: an id of ", bytes.size(), " bytes, expected ",
             sizeof id.internal);
    std::memcpy(id.internal, bytes.data(), bytes.size());
    (void)stream();  // the CUDA context and compute stream exist before NCCL binds to the device
    ncclComm_t comm = nullptr;
    NCCL_CHECK(ncclCommInitRank(&comm, size, id, rank), "connect");
    return std::make_unique<NcclComm>(comm);
  }
};

struct Registrar {
  Registrar() {
    static Nccl nccl;
    register_device_collectives(DeviceType::CUDA, &nccl);
  }
} registrar;

}  // namespace
}  // namespace mg::cuda
