#include "ops/losses.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "ops/common.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/reduce.h"
#include "ops/softmax.h"

namespace mg {
using namespace detail;

namespace {

void check_pair(const char* op, const Tensor& input, const Tensor& target) {
  check_same(op, input, target);
  check_floating(op, input);
  MG_CHECK(input.shape() == target.shape(), op, ": input ", input.desc(), " and target ", target.desc(),
           " must have the same shape (no broadcasting)");
}

Tensor reduce(const Tensor& x, Reduction r) {
  OpScope op_scope;
  switch (r) {
    case Reduction::none: return x;
    case Reduction::mean: return mean(x);
    case Reduction::sum: return sum(x);
  }
  throw Error("loss: unknown reduction");
}

void check_temperature(const char* op, double temperature) {
  MG_CHECK(temperature > 0 && std::isfinite(temperature), op, ": temperature must be positive and finite, got ",
           temperature);
}

}  // namespace

Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction r) {
  OpScope op_scope;
  check_pair("l1_loss", input, target);
  return reduce(abs(sub(input, target)), r);
}

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction r) {
  OpScope op_scope;
  check_pair("mse_loss", input, target);
  return reduce(square(sub(input, target)), r);
}

Tensor l2_normalize(const Tensor& x, int64_t dim, double eps) {
  OpScope op_scope;
  check_floating("l2_normalize", x);
  MG_CHECK(x.dim() >= 1, "l2_normalize: expected at least one dim, got ", x.desc());
  MG_CHECK(eps >= 0, "l2_normalize: eps must be >= 0, got ", eps);
  const int64_t d = normalize_dim(dim, x.dim(), "l2_normalize");
  Tensor y, denom, unclamped;
  {
    // One node for the whole op: composing sqrt would give 0 * inf = NaN gradients at x = 0.
    NoGradGuard no_grad;
    Tensor xs = x.detach();
    Tensor norm = sqrt(sum(mul(xs, xs), {d}, true));
    denom = empty_as(norm.shape(), norm);
    if (denom.numel())
      be(x).binary(BinaryOp::maximum, norm, broadcast_to_raw(full({}, eps, opts_of(x)), norm.shape()), denom);
    unclamped = eq(norm, denom);  // 1 where ||x|| >= eps: only there does the norm carry a gradient
    y = div(xs, denom);
  }
  Tensor sy = y.detach();
  // dx = (g - y * <g, y>) / max(||x||, eps), the projection term only where the norm is unclamped.
  return record("l2_normalize", y, {x}, [sy, denom, unclamped, d](const Tensor& g) -> std::vector<Tensor> {
    Tensor proj = mul(sum(mul(g, sy), {d}, true), unclamped);
    return {div(sub(g, mul(sy, proj)), denom)};
  });
}

Tensor cosine_similarity(const Tensor& a, const Tensor& b, int64_t dim, double eps) {
  OpScope op_scope;
  check_same("cosine_similarity", a, b);
  check_floating("cosine_similarity", a);
  const Shape s = broadcast_shapes(a.shape(), b.shape(), "cosine_similarity");
  MG_CHECK(!s.empty(), "cosine_similarity: expected at least one dim, got ", a.desc(), " and ", b.desc());
  const int64_t d = normalize_dim(dim, int64_t(s.size()), "cosine_similarity");
  // Normalise after broadcasting: an operand of size 1 along dim is a vector of repeated entries.
  Tensor ea = a.shape() == s ? a : a.expand(s);
  Tensor eb = b.shape() == s ? b : b.expand(s);
  return sum(mul(l2_normalize(ea, d, eps), l2_normalize(eb, d, eps)), {d});
}

Tensor info_nce_loss(const Tensor& queries, const Tensor& docs, double temperature) {
  OpScope op_scope;
  check_same("info_nce_loss", queries, docs);
  check_floating("info_nce_loss", queries);
  check_temperature("info_nce_loss", temperature);
  MG_CHECK(queries.dim() == 2 && queries.shape() == docs.shape() && queries.size(0) > 0, "info_nce_loss: expected ",
           "queries and docs of one shape [N, D] with N > 0, got ", queries.desc(), " and ", docs.desc());
  const int64_t n = queries.size(0);
  Tensor scores = mul(matmul(l2_normalize(queries), l2_normalize(docs).t()), 1.0 / temperature);
  Tensor targets = arange(0, double(n), 1, TensorOptions{DType::i32, queries.device(), false});
  return cross_entropy(scores, targets);
}

Tensor info_nce_loss_grouped(const Tensor& queries, const Tensor& candidates, double temperature) {
  OpScope op_scope;
  check_same("info_nce_loss_grouped", queries, candidates);
  check_floating("info_nce_loss_grouped", queries);
  check_temperature("info_nce_loss_grouped", temperature);
  MG_CHECK(queries.dim() == 2 && candidates.dim() == 3 && candidates.size(0) == queries.size(0) &&
               candidates.size(2) == queries.size(1) && queries.size(0) > 0 && candidates.size(1) > 0,
           "info_nce_loss_grouped: expected queries [G, D] and candidates [G, C, D] with G, C > 0, got ",
           queries.desc(), " and ", candidates.desc());
  const int64_t g = queries.size(0);
  // [G, C, D] x [G, D, 1] -> [G, C, 1]: one batched matrix-vector product per group.
  Tensor scores = matmul(l2_normalize(candidates), l2_normalize(queries).unsqueeze(-1)).squeeze(-1);
  scores = mul(scores, 1.0 / temperature);
  Tensor targets = zeros({g}, TensorOptions{DType::i32, queries.device(), false});
  return cross_entropy(scores, targets);
}

}  // namespace mg
