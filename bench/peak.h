#pragma once
// Peak arithmetic rates of this CPU, measured (used by mixgrad-bench peak and train).
//   fma_peak_gflops: register-only f32 FMA throughput (12 independent accumulator chains per
//     thread, no memory traffic): the hardware's limit that no f32 GEMM can exceed.
//   bf16_dot_peak_gflops: the same for AVX512_BF16 vdpbf16ps (2 FLOP per bf16 product-add);
//     0 when the CPU lacks it.
//   sgemm_peak_gflops / bf16gemm_peak_gflops: mixgrad's GEMM at 2048^3 (fastest of 7 calls);
//     bf16gemm 0 without the native kernel. sgemm is ops/peak.h's gemm_peak_gflops (the one
//     `mixgrad profile` reports against).
// Each runs on `threads` OpenMP threads.
namespace mg::bench {

double fma_peak_gflops(int threads);
double bf16_dot_peak_gflops(int threads);
double sgemm_peak_gflops();
double bf16gemm_peak_gflops();

}  // namespace mg::bench
