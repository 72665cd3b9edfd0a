#include "ops/autocast_policy.h"

#include "core/autocast_cache.h"
#include "ops/common.h"

namespace mg::detail {
namespace {
bool is(const Tensor& t, DType dt) { return t.defined() && t.dtype() == dt; }
}  // namespace

bool autocast_lowers(const Tensor& a, const Tensor& b, const Tensor& c) {
  return autocast_enabled() && (is(a, DType::f32) || is(b, DType::f32) || is(c, DType::f32));
}

Tensor autocast_lower(const Tensor& t) {
  if (!autocast_enabled() || !is(t, DType::f32)) return t;
  const DType low = autocast_state().dtype;
  OpScope op_scope;
  const bool parameter = autocast_cacheable(t);
  Tensor raw = parameter ? autocast_cache_find(t, low) : autocast_activation_find(t, low);
  if (!raw.defined()) {
    autocast_count_conversion();
    raw = cast_raw(t, low);
    if (parameter) autocast_cache_store(t, raw);
    else autocast_activation_store(t, raw);
  }
  // A fresh handle per use with its own cast node, exactly as t.to(low) records: gradients (and
  // their rounding) are those of an uncached cast even when a tensor is used twice.
  Tensor out = make_view(raw, raw.shape(), raw.strides(), raw.offset());
  return record("to_dtype", out, {t}, [](const Tensor& g) -> std::vector<Tensor> { return {g.to(DType::f32)}; });
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
