#include "ops/activation.h"

#include "ops/autocast_policy.h"
#include "ops/common.h"

namespace mg {
using namespace detail;

namespace {

// bf16 runs natively (f32 arithmetic inside, one rounding per output), as PyTorch's autocast runs
// pointwise ops in their input's dtype: no widened copy of x is made or saved.
Tensor activation(Activation act, const char* name, const Tensor& x) {
  OpScope op_scope;
  check_floating(name, x);
  Tensor xc = contiguous_raw(x).detach();
  Tensor y = empty_as(x.shape(), x);
  if (y.numel()) be(x).activation_forward(act, xc, Tensor(), y);
  return record(name, y, {x}, [act, xc](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = empty_as(xc.shape(), xc);
    if (dx.numel()) be(xc).activation_backward(act, contiguous_raw(g), xc, Tensor(), dx, Tensor());
    return {dx};
  });
}

}  // namespace

Tensor gelu(const Tensor& x, bool tanh_approx) {
  OpScope op_scope;
  return tanh_approx ? activation(Activation::gelu_tanh, "gelu_tanh", x) : activation(Activation::gelu, "gelu", x);
}
Tensor bias_gelu(const Tensor& x, const Tensor& bias, bool tanh_approx) {
  OpScope op_scope;
  check_floating("bias_gelu", x);
  check_floating("bias_gelu", bias);
  // Under autocast the bias follows x: lowered (a parameter's cached bf16 copy) when x is bf16,
  // widened when x is f32, as an addmm's bias is cast with its operands.
  if (autocast_enabled() && x.dtype() != bias.dtype())
    return bias_gelu(x, x.dtype() == DType::bf16 ? autocast_lower(bias) : autocast_widen(bias), tanh_approx);
  check_same("bias_gelu", x, bias);
  MG_CHECK(x.dim() >= 1 && bias.dim() == 1 && bias.size(0) == x.size(-1), "bias_gelu: bias must be [", 
           x.dim() >= 1 ? x.size(-1) : 0, "] (x's last dim), got x ", x.desc(), " and bias ", bias.desc());
  const Activation act = tanh_approx ? Activation::gelu_tanh : Activation::gelu;
  Tensor xc = contiguous_raw(x).detach(), bc = contiguous_raw(bias).detach();
  Tensor y = empty_as(x.shape(), x);
  if (y.numel()) be(x).activation_forward(act, xc, bc, y);
  const bool need_bias = needs_grad(bias);
  return record("bias_gelu", y, {x, bias}, [act, xc, bc, need_bias](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = empty_as(xc.shape(), xc);
    // The bias's gradient comes out of the same pass over dx, summed in f32 (f64 for f64).
    Tensor db = need_bias ? Tensor::empty({bc.numel()}, TensorOptions{bc.dtype() == DType::f64 ? DType::f64 : DType::f32,
                                                                      bc.device(), false})
                          : Tensor();
    if (dx.numel() || db.defined()) be(xc).activation_backward(act, contiguous_raw(g), xc, bc, dx, db);
    return {dx, db.defined() ? cast_raw(db, bc.dtype()) : Tensor()};
  });
}

Tensor silu(const Tensor& x) { return activation(Activation::silu, "silu", x); }
Tensor relu(const Tensor& x) { return activation(Activation::relu, "relu", x); }

Tensor swiglu(const Tensor& gate, const Tensor& up) {
  OpScope op_scope;
  // Mixed dtypes under autocast (one side bf16, the other f32) meet in f32.
  if (autocast_widens(gate, up) && gate.dtype() != up.dtype())
    return swiglu(autocast_widen(gate), autocast_widen(up));
  check_floating("swiglu", gate);
  check_same("swiglu", gate, up);
  MG_CHECK(gate.shape() == up.shape(), "swiglu: gate and up must have the same shape, got gate ", gate.desc(),
           " and up ", up.desc());
  Tensor gc = contiguous_raw(gate).detach(), uc = contiguous_raw(up).detach();
  Tensor y = empty_as(gate.shape(), gate);
  if (y.numel()) be(gate).swiglu_forward(gc, uc, y);
  return record("swiglu", y, {gate, up}, [gc, uc](const Tensor& g) -> std::vector<Tensor> {
    Tensor dgate = empty_as(gc.shape(), gc), dup = empty_as(uc.shape(), uc);
    if (dgate.numel()) be(gc).swiglu_backward(contiguous_raw(g), gc, uc, dgate, dup);
    return {dgate, dup};
  });
}

}  // namespace mg
