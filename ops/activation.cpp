#include "ops/activation.h"

#include "ops/autocast_policy.h"
#include "ops/common.h"

namespace mg {
using namespace detail;

namespace {

Tensor activation(Activation act, const char* name, const Tensor& x) {
  OpScope op_scope;
  if (autocast_widens(x)) return activation(act, name, autocast_widen(x));
  check_floating(name, x);
  Tensor xc = contiguous_raw(x).detach();
  Tensor y = empty_as(x.shape(), x);
  if (y.numel()) be(x).activation_forward(act, xc, y);
  return record(name, y, {x}, [act, xc](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = empty_as(xc.shape(), xc);
    if (dx.numel()) be(xc).activation_backward(act, contiguous_raw(g), xc, dx);
    return {dx};
  });
}

}  // namespace

Tensor gelu(const Tensor& x, bool tanh_approx) {
  OpScope op_scope;
  return tanh_approx ? activation(Activation::gelu_tanh, "gelu_tanh", x) : activation(Activation::gelu, "gelu", x);
}
Tensor silu(const Tensor& x) { return activation(Activation::silu, "silu", x); }
Tensor relu(const Tensor& x) { return activation(Activation::relu, "relu", x); }

Tensor swiglu(const Tensor& gate, const Tensor& up) {
  OpScope op_scope;
  if (autocast_widens(gate, up)) return swiglu(autocast_widen(gate), autocast_widen(up));
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
