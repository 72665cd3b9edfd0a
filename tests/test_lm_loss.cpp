// nn/lm_loss: the shifted causal-LM loss scores position t against labels[t + 1] (the last position
// and padding ignored), exactly the cross-entropy of logits[:, :-1] against labels[:, 1:]: values,
// gradients (the last position's exactly 0), both reductions, count_scored, bf16 logits.
#include <cmath>
#include <vector>

#include "nn/lm_loss.h"
#include "ops/ops.h"
#include "ops/softmax.h"
#include "tests/test_helpers.h"

using namespace mg;
using namespace mg::test;

namespace {
Tensor labels_with_padding(int64_t B, int64_t T, int64_t V) {
  std::vector<int32_t> v(size_t(B * T));
  for (size_t i = 0; i < v.size(); ++i) v[i] = int32_t((i * 7 + 3) % size_t(V));
  v[size_t(T - 1)] = -100;       // padding at the end of row 0
  v[size_t(T + 2)] = -100;       // and inside row 1
  return from_vector(v, Shape{B, T});
}
}  // namespace

TEST_CASE("shifted_lm_loss is the cross-entropy of logits[:, :-1] against labels[:, 1:]") {
  const int64_t B = 3, T = 6, V = 11;
  const Tensor labels = labels_with_padding(B, T, V);
  const Tensor targets = labels.slice(1, 1, T).contiguous();
  for (bool use_sum : {false, true}) {
    CAPTURE(use_sum);
    Tensor a = leaf64({B, T, V}, 1), b = leaf64({B, T, V}, 1);
    Tensor got = shifted_lm_loss(a, labels, use_sum);
    Tensor want = cross_entropy(b.slice(1, 0, T - 1), targets, -100, use_sum ? Reduction::sum : Reduction::mean);
    CHECK(std::abs(got.item() - want.item()) <= 1e-12 * std::abs(want.item()));
    got.backward();
    want.backward();
    const std::vector<double> ga = vals(a.grad()), gb = vals(b.grad());
    REQUIRE(ga.size() == gb.size());
    for (size_t i = 0; i < ga.size(); ++i) {
      CHECK(std::abs(ga[i] - gb[i]) <= 1e-14);
      if (int64_t(i / size_t(V)) % T == T - 1) CHECK(ga[i] == 0.0);  // the last position has no target
    }
  }
  // Scored positions: B * (T - 1) minus the two ignored targets (the one at t = 0 is never a target).
  CHECK(count_scored(labels) == B * (T - 1) - 2);
  check_grad([&](const std::vector<Tensor>& in) { return shifted_lm_loss(in[0], labels); }, {leaf64({B, T, V}, 2)});
}

TEST_CASE("shifted_lm_loss on bf16 logits matches the f32 loss of the same values") {
  const int64_t B = 2, T = 9, V = 37;
  const Tensor labels = labels_with_padding(B, T, V);
  Tensor l16 = randn({B, T, V}, 3).to(DType::bf16);
  const double got = shifted_lm_loss(l16, labels).item();
  const double want = shifted_lm_loss(l16.to(DType::f32), labels).item();
  CHECK(std::abs(got - want) <= 1e-6 * std::abs(want));
  CHECK_THROWS_WITH_AS(shifted_lm_loss(randn({2, 1, 5}, 4), from_vector(std::vector<int32_t>{1, 2}, Shape{2, 1})),
                       doctest::Contains("no next-token targets"), Error);
}
