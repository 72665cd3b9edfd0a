#pragma once
// Automatic mixed precision, as torch.autocast(dtype=torch.bfloat16): while an AutocastGuard is
// alive on a thread, the ops layer runs the matmul-class ops (matmul, masked_token_mix,
// masked_token_mix_heads, and so every Linear and attention projection) on bf16 copies of their
// f32 inputs with f32 accumulation and returns bf16 results; every other op that receives a bf16
// tensor widens it to f32 first and computes in f32 (norms, softmax, cross-entropy, losses,
// activations, attention, RoPE, elementwise). The casts are recorded ops, so gradients flow back
// through them: a parameter stays f32 (the master copy) and its .grad is f32. f64 tensors are
// never cast. Outside a guard nothing is converted: an op given mismatched dtypes throws.
// Run backward() after the guard has ended (as with torch.autocast): the backward functions use
// the dtypes their forward saw, and a guard still alive would also recast f32 matmuls that some
// backward functions run.
// Parameters (f32 leaves that require grad) are converted once per outermost enabled guard scope
// and the copy reused (core/autocast_cache.h).
#include "core/dtype.h"

namespace mg {

struct AutocastState {
  bool enabled = false;
  DType dtype = DType::bf16;  // the lower precision; bf16 is the only one supported
};

// This thread's state.
AutocastState autocast_state();
inline bool autocast_enabled() { return autocast_state().enabled; }

// Sets this thread's state for its lifetime and restores the previous one after. Nests.
// Throws for a dtype other than bf16.
class AutocastGuard {
 public:
  explicit AutocastGuard(bool enabled = true, DType dtype = DType::bf16);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  AutocastState prev_;
};

}  // namespace mg
