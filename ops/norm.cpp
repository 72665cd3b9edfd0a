#include "ops/norm.h"

#include "ops/autocast_policy.h"
#include "ops/common.h"

namespace mg {
using namespace detail;

namespace {

// Checks an optional affine parameter: undefined, or [D] with x's dtype and device.
void check_param(const char* op, const char* what, const Tensor& p, const Tensor& x) {
  if (!p.defined()) return;
  check_same(op, x, p);
  const int64_t D = x.shape().back();
  MG_CHECK(p.dim() == 1 && p.size(0) == D, op, ": ", what, " must be [", D, "] for input ", x.desc(), ", got ",
           p.desc());
}

void check_input(const char* op, const Tensor& x) {
  check_floating(op, x);
  MG_CHECK(x.dim() >= 1, op, ": input must have at least 1 dim (normalised over the last), got ", x.desc());
}

Tensor maybe_contiguous(const Tensor& t) { return t.defined() ? contiguous_raw(t) : Tensor(); }

}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  OpScope op_scope;
  if (autocast_widens(x, weight, bias))
    return layer_norm(autocast_widen(x), autocast_widen(weight), autocast_widen(bias), eps);
  check_input("layer_norm", x);
  check_param("layer_norm", "weight", weight, x);
  check_param("layer_norm", "bias", bias, x);
  Tensor xc = contiguous_raw(x).detach(), wc = maybe_contiguous(weight), bc = maybe_contiguous(bias);
  const int64_t D = x.shape().back(), rows = D ? x.numel() / D : 0;
  Tensor y = empty_as(x.shape(), x), mean = empty_as({rows}, x), rstd = empty_as({rows}, x);
  if (y.numel()) be(x).layernorm_forward(as_rows(xc), wc, bc, eps, as_rows(y), mean, rstd);

  const bool need_w = needs_grad(weight), need_b = needs_grad(bias);
  Tensor ws = wc.defined() ? wc.detach() : Tensor();
  return record("layer_norm", y, {x, weight, bias},
                [xc, ws, mean, rstd, need_w, need_b, D](const Tensor& g) -> std::vector<Tensor> {
                  Tensor gc = contiguous_raw(g);
                  Tensor dx = empty_as(xc.shape(), xc);
                  Tensor dw = need_w ? empty_as({D}, xc) : Tensor(), db = need_b ? empty_as({D}, xc) : Tensor();
                  if (dx.numel() || need_w || need_b)
                    be(xc).layernorm_backward(as_rows(gc), as_rows(xc), ws, mean, rstd, as_rows(dx), dw, db);
                  return {dx, dw, db};
                });
}

Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) {
  OpScope op_scope;
  if (autocast_widens(x, weight)) return rms_norm(autocast_widen(x), autocast_widen(weight), eps);
  check_input("rms_norm", x);
  check_param("rms_norm", "weight", weight, x);
  Tensor xc = contiguous_raw(x).detach(), wc = maybe_contiguous(weight);
  const int64_t D = x.shape().back(), rows = D ? x.numel() / D : 0;
  Tensor y = empty_as(x.shape(), x), rstd = empty_as({rows}, x);
  if (y.numel()) be(x).rmsnorm_forward(as_rows(xc), wc, eps, as_rows(y), rstd);

  const bool need_w = needs_grad(weight);
  Tensor ws = wc.defined() ? wc.detach() : Tensor();
  return record("rms_norm", y, {x, weight}, [xc, ws, rstd, need_w, D](const Tensor& g) -> std::vector<Tensor> {
    Tensor gc = contiguous_raw(g);
    Tensor dx = empty_as(xc.shape(), xc);
    Tensor dw = need_w ? empty_as({D}, xc) : Tensor();
    if (dx.numel() || need_w) be(xc).rmsnorm_backward(as_rows(gc), as_rows(xc), ws, rstd, as_rows(dx), dw);
    return {dx, dw};
  });
}

}  // namespace mg
