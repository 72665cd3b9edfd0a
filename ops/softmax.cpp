#include "ops/softmax.h"

#include <algorithm>
#include <string>

#include "ops/autocast_policy.h"
#include "ops/common.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"

namespace mg {
using namespace detail;

namespace {

Tensor softmax_impl(const char* name, const Tensor& x, int64_t dim, bool log) {
  OpScope op_scope;
  if (autocast_widens(x)) return softmax_impl(name, autocast_widen(x), dim, log);
  check_floating(name, x);
  MG_CHECK(x.dim() >= 1, name, ": input must have at least 1 dim, got ", x.desc());
  const int d = normalize_dim(dim, x.dim(), name);
  if (d != x.dim() - 1) return softmax_impl(name, x.transpose(d, -1), -1, log).transpose(d, -1).contiguous();

  Tensor xc = contiguous_raw(x);
  Tensor y = empty_as(x.shape(), x);
  if (y.numel()) be(x).softmax_forward(as_rows(xc), as_rows(y), log);
  Tensor ys = y.detach();
  return record(name, y, {x}, [ys, log](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = empty_as(ys.shape(), ys);
    if (dx.numel()) be(ys).softmax_backward(as_rows(contiguous_raw(g)), as_rows(ys), as_rows(dx), log);
    return {dx};
  });
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl("softmax", x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl("log_softmax", x, dim, true); }

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index, Reduction reduction) {
  OpScope op_scope;
  check_floating("cross_entropy", logits);
  MG_CHECK(logits.dim() >= 1, "cross_entropy: logits must be [..., V], got ", logits.desc());
  MG_CHECK(targets.defined() && targets.dtype() == DType::i32, "cross_entropy: targets must be an i32 tensor, got ",
           targets.defined() ? targets.desc() : std::string("an undefined tensor"));
  MG_CHECK(targets.device() == logits.device(), "cross_entropy: targets ", targets.desc(), " and logits ",
           logits.desc(), " are on different devices");
  const Shape lead(logits.shape().begin(), logits.shape().end() - 1);
  MG_CHECK(targets.shape() == lead, "cross_entropy: targets must have the logits' leading shape ", shape_str(lead),
           ", got targets ", targets.desc(), " for logits ", logits.desc());
  const int64_t V = logits.shape().back(), N = numel(lead);
  MG_CHECK(V >= 1, "cross_entropy: logits ", logits.desc(), " have no classes");

  Tensor lc = contiguous_raw(logits).detach(), tc = contiguous_raw(targets);
  // Validated here, before any kernel, so every backend reports a bad target the same way.
  int64_t count = 0;
  const std::vector<int32_t> tv = tc.to_vector<int32_t>();
  for (int64_t i = 0; i < N; ++i) {
    const int32_t t = tv[size_t(i)];
    if (t == ignore_index) continue;
    MG_CHECK(t >= 0 && t < V, "cross_entropy: target ", t, " at position ", index_str(i, lead),
             " is out of range [0, ", V, ") for logits ", logits.desc(), " (ignore_index is ", ignore_index, ")");
    ++count;
  }

  // bf16 logits (the lm_head's output under autocast) are read as they are, never widened into an
  // f32 copy; the losses are f32 (autocast's rule for cross-entropy), and so is the loss.
  const TensorOptions acc{logits.dtype() == DType::bf16 ? DType::f32 : logits.dtype(), logits.device(), false};
  Tensor loss_rows = Tensor::empty({N}, acc), lse = Tensor::empty({N}, acc);
  Tensor t1 = make_view(tc, {N}, {1}, tc.offset());
  if (N) be(logits).cross_entropy_forward(as_rows(lc), t1, ignore_index, loss_rows, lse);

  Tensor out;
  double scale = 1.0;
  switch (reduction) {
    case Reduction::none: out = make_view(loss_rows, lead, contiguous_strides(lead), 0); break;
    case Reduction::sum: out = sum(loss_rows); break;
    case Reduction::mean:
      scale = 1.0 / double(std::max<int64_t>(count, 1));  // every row ignored: loss 0, gradient 0
      out = mul(sum(loss_rows), scale);
      break;
  }
  return record("cross_entropy", out, {logits},
                [lc, t1, lse, ignore_index, reduction, scale, N](const Tensor& g) -> std::vector<Tensor> {
                  Tensor dl = empty_as(lc.shape(), lc);
                  if (dl.numel() == 0) return {dl};
                  // One upstream value for every row (mean, sum) or one per row (none).
                  Tensor gc = contiguous_raw(g);
                  Tensor g_rows = reduction == Reduction::none ? make_view(gc, {N}, {1}, gc.offset())
                                                               : broadcast_to_raw(g, {N});
                  be(lc).cross_entropy_backward(as_rows(lc), t1, lse, ignore_index, g_rows, scale, as_rows(dl));
                  return {dl};
                });
}

}  // namespace mg
