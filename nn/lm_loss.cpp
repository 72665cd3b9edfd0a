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
  Tensor l = logits.slice(1, 0, T - 1);
  Tensor y = labels.slice(1, 1, T).contiguous();
  return cross_entropy(l, y, kIgnoreIndex, sum ? Reduction::sum : Reduction::mean);
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
