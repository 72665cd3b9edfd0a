#include "nn/lm_loss.h"

#include <vector>

#include "core/error.h"
#include "ops/ops.h"
#include "ops/softmax.h"

namespace mg {

namespace {
// torch's ignore_index, which data/batcher.h writes at padding (data sits beside nn, not below).
constexpr int32_t kIgnoreIndex = -100;
}  // namespace

Tensor shifted_lm_loss(const Tensor& logits, const Tensor& labels, bool sum) {
  const int64_t T = logits.size(1);
  MG_CHECK(T >= 2, "lm loss: sequences of length ", T, " have no next-token targets");
  // Position t predicts labels[t + 1]; the last position has no target and is ignored. Scoring all
  // T positions that way reads the logits in place, where a [:, :T-1] slice of them would be copied
  // for the kernel and its gradient scattered back into a zeroed [B, T, V] tensor.
  const int64_t B = labels.size(0);
  Tensor y = cat({labels.slice(1, 1, T), full({B, 1}, double(kIgnoreIndex), TensorOptions{DType::i32, labels.device()})}, 1);
  return cross_entropy(logits, y, kIgnoreIndex, sum ? Reduction::sum : Reduction::mean);
}

int64_t count_scored(const Tensor& labels) {
  std::vector<int32_t> v = labels.to_vector<int32_t>();
  const int64_t T = labels.size(1);
  int64_t n = 0;
  for (size_t i = 0; i < v.size(); ++i)
    if (int64_t(i) % T != 0 && v[i] != kIgnoreIndex) ++n;
  return n;
}

}  // namespace mg
