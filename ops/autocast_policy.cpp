#include "ops/autocast_policy.h"

#include "ops/common.h"

namespace mg::detail {
namespace {
bool is(const Tensor& t, DType dt) { return t.defined() && t.dtype() == dt; }
}  // namespace

bool autocast_lowers(const Tensor& a, const Tensor& b, const Tensor& c) {
  return autocast_enabled() && (is(a, DType::f32) || is(b, DType::f32) || is(c, DType::f32));
}

Tensor autocast_lower(const Tensor& t) {
  return autocast_enabled() && is(t, DType::f32) ? t.to(autocast_state().dtype) : t;
}

bool autocast_widens(const Tensor& a, const Tensor& b, const Tensor& c) {
  return autocast_enabled() && (is(a, DType::bf16) || is(b, DType::bf16) || is(c, DType::bf16));
}

Tensor autocast_widen(const Tensor& t) { return is(t, DType::bf16) ? t.to(DType::f32) : t; }

Tensor cast_raw(const Tensor& t, DType dt) {
  if (t.dtype() == dt) return t;
  Tensor out = Tensor::empty(t.shape(), TensorOptions{dt, t.device(), false});
  if (out.numel()) be(t).copy(t, out);
  return out;
}

}  // namespace mg::detail
