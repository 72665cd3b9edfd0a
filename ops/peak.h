#pragma once
// The measured GEMM peak of a device: the rate of mixgrad's own matmul at 2048^3, the fastest
// of 7 calls after an untimed one (a peak: on a shared machine the fastest call is the one
// least disturbed). What the profiler and mixgrad-bench report fractions of. Runs under
// NoGradGuard; on CUDA each call is synchronized. dtype f32 or bf16 (bf16 operands, f32 GEMM
// accumulation as the bf16 matmul path does). Takes about 8 GEMMs of 17 GFLOP each.
#include "core/device.h"
#include "core/dtype.h"

namespace mg {

double gemm_peak_gflops(Device device, DType dtype = DType::f32);

}  // namespace mg
