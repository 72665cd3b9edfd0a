#pragma once
// The CUDA backend's class. It registers itself for DeviceType::CUDA at load time; when the
// machine has no usable GPU it registers as unavailable (with CUDA's reason), so only touching a
// CUDA tensor fails. Kernels live in one file per family: cuda_backend.cu (memory, fill, copy,
// random, elementwise, reductions, indexing), cuda_gemm.cpp (cuBLAS), norm_kernels.cu,
// activation_kernels.cu, softmax_kernels.cu (softmax, cross-entropy), mixing_kernels.cu (tril),
// rope_kernels.cu, dropout_kernels.cu, optimizer_kernels.cu, attention_kernels.cu.
// All tensors live on the current CUDA device (device 0 unless the program selects another).
// This header includes no CUDA header.
#include "core/backend.h"

namespace mg::cuda {

class CudaBackend final : public Backend {
 public:
  // Every kernel of core/backend_kernels.def.
#define MG_BACKEND_KERNEL(ret, name, params) ret name params override;
#include "core/backend_kernels.def"
#undef MG_BACKEND_KERNEL
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
