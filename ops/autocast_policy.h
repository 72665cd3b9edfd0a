#pragma once
// How ops apply the autocast state of core/autocast.h (helpers for op and layer implementations,
// not part of the public API). Matmul-class ops call autocast_lowers/autocast_lower on their inputs; ops
// without bf16 kernels start with
//   if (autocast_widens(a, b)) return op(autocast_widen(a), autocast_widen(b));
// so they run on f32 copies of bf16 inputs. Both casts are recorded (Tensor::to), so gradients
// come back through them in the input's own dtype.
#include "core/autocast.h"
#include "core/tensor.h"

namespace mg::detail {

// Autocast is on and some defined argument is f32: a matmul-class op reruns on lowered inputs.
bool autocast_lowers(const Tensor& a, const Tensor& b = Tensor(), const Tensor& c = Tensor());
// Under autocast an f32 tensor becomes its recorded bf16 copy; anything else is returned as is.
// A parameter (f32 leaf that requires grad) is converted once per outermost guard scope and its
// copy reused (core/autocast_cache.h); layers lower a parameter before taking a view of it (as
// Linear does before transposing), since a view is not a leaf and is converted on every use.
Tensor autocast_lower(const Tensor& t);

// Autocast is on and some defined argument is bf16: the op reruns on widened inputs.
bool autocast_widens(const Tensor& a, const Tensor& b = Tensor(), const Tensor& c = Tensor());
// A bf16 tensor becomes its recorded f32 copy; anything else (undefined included) is returned as is.
Tensor autocast_widen(const Tensor& t);

// dtype conversion without autograd: a new contiguous tensor, or t itself when it already has dtype dt.
Tensor cast_raw(const Tensor& t, DType dt);

}  // namespace mg::detail
