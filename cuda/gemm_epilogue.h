#pragma once
// The epilogue of a GEMM (GemmArgs::bias and ::D, core/backend.h) on C as cuBLAS left it, queued
// on the backend's stream. No-op when neither is set.
#include "core/backend.h"

namespace mg::cuda {

void gemm_epilogue(const GemmArgs& g);

}  // namespace mg::cuda
