#pragma once
// Deterministic mode: a process-wide switch under which every backend must give bitwise-identical
// results run to run for the same inputs on the same hardware. Off by default, so a backend may
// use faster reductions whose order depends on timing (atomics); on, it must not.
//   CPU: always deterministic (fixed-order reductions; the GEMM's results do not depend on the
//        thread count), so the switch changes nothing there.
//   CUDA: cuBLAS is told CUBLAS_ATOMICS_NOT_ALLOWED, and kernels that accumulate with float
//        atomics when the switch is off take their fixed-order path instead (see
//        docs/design.md, "CUDA: precision, determinism, RNG", for the list).
// Results still differ between GPU models and library versions, and between CPU and GPU.
namespace mg {

void set_deterministic(bool on);
bool deterministic();

}  // namespace mg
