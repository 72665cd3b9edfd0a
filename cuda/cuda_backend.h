#pragma once
// The CUDA backend's class. It registers itself for DeviceType::CUDA at load time; when the
// machine has no usable GPU it registers as unavailable (with CUDA's reason), so only touching a
// CUDA tensor fails. Kernels live in one file per family: cuda_backend.cu (memory, fill, copy,
// random, elementwise, reductions, indexing), cuda_gemm.cpp (cuBLAS), norm_kernels.cu,
// activation_kernels.cu, softmax_kernels.cu (softmax, cross-entropy), mixing_kernels.cu (tril),
// rope_kernels.cu, optimizer_kernels.cu, attention_kernels.cu.
// All tensors live on the current CUDA device (device 0 unless the program selects another).
// This header includes no CUDA header.
#include "core/backend.h"

namespace mg::cuda {

class CudaBackend final : public Backend {
 public:
  const char* name() const override;
  void* allocate(size_t nbytes) override;
  void deallocate(void* ptr, size_t nbytes) override;
  void copy_from_host(void* dst, const void* src, size_t nbytes) override;
  void copy_to_host(void* dst, const void* src, size_t nbytes) override;
  void synchronize() override;
  void fill(const Tensor& out, double value) override;
  void copy(const Tensor& src, const Tensor& dst) override;
  void random(const Tensor& out, RandomKind kind, uint64_t seed, uint64_t offset, double a, double b) override;
  void unary(UnaryOp op, const Tensor& x, const Tensor& out, double alpha) override;
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) override;
  void reduce_rows(ReduceOp op, const Tensor& x, const Tensor& out) override;
  void gemm(DType dtype, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const void* A,
            int64_t lda, int64_t stride_a, const void* B, int64_t ldb, int64_t stride_b, double beta, void* C,
            int64_t ldc, int64_t stride_c, int64_t batch) override;
  void index_select(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& out) override;
  void index_add(const Tensor& out, int64_t dim, const Tensor& idx, const Tensor& src) override;

  void layernorm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, const Tensor& y,
                         const Tensor& mean, const Tensor& rstd) override;
  void layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, const Tensor& mean,
                          const Tensor& rstd, const Tensor& dx, const Tensor& dweight, const Tensor& dbias) override;
  void rmsnorm_forward(const Tensor& x, const Tensor& weight, double eps, const Tensor& y, const Tensor& rstd) override;
  void rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, const Tensor& rstd, const Tensor& dx,
                        const Tensor& dweight) override;
  void activation_forward(Activation act, const Tensor& x, const Tensor& y) override;
  void activation_backward(Activation act, const Tensor& dy, const Tensor& x, const Tensor& dx) override;
  void swiglu_forward(const Tensor& gate, const Tensor& up, const Tensor& y) override;
  void swiglu_backward(const Tensor& dy, const Tensor& gate, const Tensor& up, const Tensor& dgate,
                       const Tensor& dup) override;
  void softmax_forward(const Tensor& x, const Tensor& y, bool log) override;
  void softmax_backward(const Tensor& dy, const Tensor& y, const Tensor& dx, bool log) override;
  void cross_entropy_forward(const Tensor& logits, const Tensor& targets, int64_t ignore_index,
                             const Tensor& loss_rows, const Tensor& lse) override;
  void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse, int64_t ignore_index,
                              const Tensor& dloss_rows, double scale, const Tensor& dlogits) override;
  void tril(const Tensor& x, int64_t diagonal, const Tensor& out) override;
  void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool causal,
                         const Tensor& out, const Tensor& lse) override;
  void attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                          const Tensor& lse, double scale, bool causal, const Tensor& dq, const Tensor& dk,
                          const Tensor& dv) override;
  void rope(const Tensor& x, double theta, int64_t pos_offset, bool inverse, const Tensor& out) override;
  void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq, double lr,
                  double beta1, double beta2, double eps, double weight_decay, int64_t step) override;
  void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& momentum_buf, double lr, double momentum,
                double dampening, double weight_decay, bool nesterov) override;
};

// Which attention kernels run (cuda/attention_kernels.cu): automatic picks the tiled
// (FlashAttention-2 style) kernels for f32 with head dim <= 128 and the row-wise ones otherwise;
// tiled throws for a call it cannot take; rowwise always uses the row-wise kernels. Both give
// results within f32 rounding of each other; neither uses atomics.
enum class AttentionKernel { automatic, tiled, rowwise };
void set_attention_kernel(AttentionKernel k);
AttentionKernel attention_kernel();

// f32 GEMMs may use TF32 tensor cores (faster, ~1e-3 relative error). Off by default, so CUDA
// results match the CPU's within f32 rounding.
void set_allow_tf32(bool allow);
bool allow_tf32();

}  // namespace mg::cuda
