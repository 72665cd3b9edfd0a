#include "ops/attention.h"

#include <cmath>

#include "ops/autocast_policy.h"
#include "ops/common.h"

namespace mg {
using namespace detail;

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, double scale) {
  OpScope op_scope;
  // Autocast runs attention in bf16, as torch.autocast's lower-precision list does: the products
  // and the softmax in f32 inside, the output rounded once, and q, k, v, out saved in bf16.
  if (autocast_lowers(q, k, v))
    return scaled_dot_product_attention(autocast_lower(q), autocast_lower(k), autocast_lower(v), causal, scale);
  check_same("scaled_dot_product_attention", q, k);
  check_same("scaled_dot_product_attention", q, v);
  MG_CHECK(q.dtype() == DType::f32 || q.dtype() == DType::f64 || q.dtype() == DType::bf16,
           "scaled_dot_product_attention: f32, f64 or bf16 expected, got ", q.desc());
  MG_CHECK(q.dim() == 4 && k.shape() == q.shape() && v.shape() == q.shape(),
           "scaled_dot_product_attention: expected q, k, v of one shape [B, H, T, Dh], got q ", q.desc(), ", k ",
           k.desc(), ", v ", v.desc());
  MG_CHECK(std::isfinite(scale), "scaled_dot_product_attention: scale must be finite, got ", scale);
  const int64_t Dh = q.size(3);
  if (scale == 0 && Dh > 0) scale = 1.0 / std::sqrt(double(Dh));

  Tensor qc = contiguous_raw(q), kc = contiguous_raw(k), vc = contiguous_raw(v);
  Tensor out = empty_as(q.shape(), q);
  // The logsumexp in f32 for bf16 (its rounding would show in every recomputed probability).
  Tensor lse = Tensor::empty({q.size(0), q.size(1), q.size(2)},
                             TensorOptions{q.dtype() == DType::bf16 ? DType::f32 : q.dtype(), q.device(), false});
  if (out.numel()) be(q).attention_forward(qc, kc, vc, scale, causal, out, lse);

  Tensor sq = qc.detach(), sk = kc.detach(), sv = vc.detach(), so = out.detach();
  return record("scaled_dot_product_attention", out, {q, k, v},
                [sq, sk, sv, so, lse, scale, causal](const Tensor& g) -> std::vector<Tensor> {
                  Tensor dq = empty_as(sq.shape(), sq), dk = empty_as(sq.shape(), sq), dv = empty_as(sq.shape(), sq);
                  if (dq.numel()) be(sq).attention_backward(contiguous_raw(g), sq, sk, sv, so, lse, scale, causal, dq, dk, dv);
                  return {dq, dk, dv};
                });
}

}  // namespace mg
