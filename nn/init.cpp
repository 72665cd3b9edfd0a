#include "nn/init.h"

namespace mg {

namespace {
// Draws happen in f32 whatever the parameter's dtype (see init.h).
TensorOptions draw_options(TensorOptions opts) { return TensorOptions{DType::f32, opts.device, false}; }

Tensor as_param(Tensor drawn, TensorOptions opts) {
  Tensor t = drawn.dtype() == opts.dtype ? drawn : drawn.to(opts.dtype);
  t.set_requires_grad(true);
  return t;
}
}  // namespace

Tensor init_uniform(const Shape& shape, double bound, Generator& gen, TensorOptions opts) {
  MG_CHECK(bound >= 0, "init_uniform: negative bound ", bound);
  return as_param(uniform(shape, -bound, bound, gen, draw_options(opts)), opts);
}

Tensor init_normal(const Shape& shape, double std, Generator& gen, TensorOptions opts) {
  MG_CHECK(std >= 0, "init_normal: negative std ", std);
  return as_param(normal(shape, 0.0, std, gen, draw_options(opts)), opts);
}

Tensor init_constant(const Shape& shape, double value, TensorOptions opts) {
  return as_param(full(shape, value, draw_options(opts)), opts);
}

}  // namespace mg
