#pragma once
// The CPU backend's class. Kernels are defined in one file per family: cpu_backend.cpp (memory,
// elementwise, reductions, GEMM, indexing), norm_kernels.cpp, activation_kernels.cpp,
// softmax_kernels.cpp, mixing_kernels.cpp (tril), attention_kernels.cpp, rope_kernels.cpp,
// dropout_kernels.cpp, optimizer_kernels.cpp.
#include "core/backend.h"

namespace mg::cpu {

class CpuBackend final : public Backend {
 public:
  // Every kernel of core/backend_kernels.def.
#define MG_BACKEND_KERNEL(ret, name, params) ret name params override;
#include "core/backend_kernels.def"
#undef MG_BACKEND_KERNEL
};

}  // namespace mg::cpu
