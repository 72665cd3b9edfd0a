#include "nn/optim.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "core/autocast_cache.h"
#include "core/backend.h"
#include "core/factories.h"
#include "ops/elementwise.h"
#include "ops/inplace.h"
#include "ops/reduce.h"

namespace mg {

Optimizer::Optimizer(std::vector<Tensor> params, double lr, const char* name)
    : params_(std::move(params)), param_steps_(params_.size(), 0), lr_(lr), name_(name) {
  MG_CHECK(lr >= 0 && std::isfinite(lr), name_, ": invalid learning rate ", lr);
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    MG_CHECK(p.defined(), name_, ": parameter ", i, " is undefined");
    MG_CHECK(p.is_leaf() && p.requires_grad(), name_, ": parameter ", i, " (", p.desc(),
             ") must be a leaf with requires_grad");
    MG_CHECK(p.dtype() == DType::f32 || p.dtype() == DType::f64, name_, ": parameter ", i, " is ", p.desc(),
             ", expected f32 or f64");
    // Kernels update storage in place element by element; a strided view would be updated
    // through a different layout than its state.
    MG_CHECK(p.is_contiguous(), name_, ": parameter ", i, " (", p.desc(), ") must be contiguous");
    for (size_t j = 0; j < i; ++j)
      MG_CHECK(!params_[j].same(p), name_, ": parameter ", i, " is listed twice (also at ", j, ")");
  }
}

Optimizer::~Optimizer() = default;

void Optimizer::zero_grad() {
  for (Tensor& p : params_) p.zero_grad();
}

void Optimizer::set_lr(double lr) {
  MG_CHECK(lr >= 0 && std::isfinite(lr), name_, ": invalid learning rate ", lr);
  lr_ = lr;
}

void Optimizer::step() {
  NoGradGuard no_grad;
  // The parameters change in place: bf16 copies cached by a still-open autocast scope are stale.
  autocast_clear_cache();
  ++step_;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor g = grad_for_update(i);
    if (g.defined()) update(i, g, ++param_steps_[i]);
  }
}

std::vector<std::pair<std::string, Tensor>> Optimizer::state_tensors() { return {}; }

void Optimizer::set_step_count(int64_t steps) {
  MG_CHECK(steps >= 0, name_, ": negative step count ", steps);
  step_ = steps;
  param_steps_.assign(params_.size(), steps);
}

Tensor Optimizer::grad_for_update(size_t i) const {
  const Tensor& p = params_[i];
  Tensor g = p.grad();
  if (!g.defined()) return g;
  MG_CHECK(g.shape() == p.shape() && g.dtype() == p.dtype() && g.device() == p.device(), name_, ": gradient ",
           g.desc(), " of parameter ", i, " does not match the parameter ", p.desc());
  // Accumulated gradients can be broadcast views (stride 0); kernels read contiguous memory.
  return g.is_contiguous() ? g : g.contiguous();
}

// ---- AdamW ------------------------------------------------------------------------------

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions opts) : Optimizer(std::move(params), opts.lr, "AdamW"),
                                                               opts_(opts) {
  MG_CHECK(opts.eps >= 0, "AdamW: invalid eps ", opts.eps);
  MG_CHECK(opts.beta1 >= 0 && opts.beta1 < 1, "AdamW: invalid beta1 ", opts.beta1, " (expected [0, 1))");
  MG_CHECK(opts.beta2 >= 0 && opts.beta2 < 1, "AdamW: invalid beta2 ", opts.beta2, " (expected [0, 1))");
  MG_CHECK(opts.weight_decay >= 0, "AdamW: invalid weight_decay ", opts.weight_decay);
  for (const Tensor& p : params_) {
    TensorOptions o{p.dtype(), p.device(), false};
    exp_avg_.push_back(zeros(p.shape(), o));
    exp_avg_sq_.push_back(zeros(p.shape(), o));
  }
}

void AdamW::update(size_t i, const Tensor& g, int64_t t) {
  backend_for(params_[i].device())
      .adamw_step(params_[i], g, exp_avg_[i], exp_avg_sq_[i], lr_, opts_.beta1, opts_.beta2, opts_.eps,
                  opts_.weight_decay, t);
}

std::vector<std::pair<std::string, Tensor>> AdamW::state_tensors() {
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string k = "state." + std::to_string(i) + ".";
    out.emplace_back(k + "exp_avg", exp_avg_[i]);
    out.emplace_back(k + "exp_avg_sq", exp_avg_sq_[i]);
  }
  return out;
}

// ---- SGD --------------------------------------------------------------------------------

SGD::SGD(std::vector<Tensor> params, SGDOptions opts) : Optimizer(std::move(params), opts.lr, "SGD"), opts_(opts) {
  MG_CHECK(opts.momentum >= 0, "SGD: invalid momentum ", opts.momentum);
  MG_CHECK(opts.weight_decay >= 0, "SGD: invalid weight_decay ", opts.weight_decay);
  MG_CHECK(!opts.nesterov || (opts.momentum > 0 && opts.dampening == 0),
           "SGD: nesterov momentum requires a momentum and zero dampening (momentum ", opts.momentum,
           ", dampening ", opts.dampening, ")");
  for (const Tensor& p : params_)
    momentum_buffer_.push_back(opts.momentum != 0 ? zeros(p.shape(), TensorOptions{p.dtype(), p.device(), false})
                                                  : Tensor());
}

void SGD::update(size_t i, const Tensor& g, int64_t t) {
  // torch starts the buffer as a copy of the first d; with a zeroed buffer, dampening 0 gives
  // exactly that: momentum * 0 + 1 * d.
  const bool first = t == 1;
  if (first && momentum_buffer_[i].defined()) fill_(momentum_buffer_[i], 0.0);
  backend_for(params_[i].device())
      .sgd_step(params_[i], g, momentum_buffer_[i], lr_, opts_.momentum, first ? 0.0 : opts_.dampening,
                opts_.weight_decay, opts_.nesterov);
}

std::vector<std::pair<std::string, Tensor>> SGD::state_tensors() {
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t i = 0; i < params_.size(); ++i)
    if (momentum_buffer_[i].defined()) out.emplace_back("state." + std::to_string(i) + ".momentum_buffer",
                                                        momentum_buffer_[i]);
  return out;
}

// ---- clipping ---------------------------------------------------------------------------

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  NoGradGuard no_grad;
  std::vector<Tensor> with_grad;
  // sum() accumulates each tensor in f64 and rounds to the gradient's dtype; those per-tensor
  // totals are added in f64 on the gradients' device, so a GPU step syncs with the host once
  // (one .item() per parameter would stall the stream ~80 times per step).
  double host_sq = 0;
  Tensor device_sq;
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined() || g.numel() == 0) continue;
    MG_CHECK(g.dtype() == DType::f32 || g.dtype() == DType::f64, "clip_grad_norm: gradient ", g.desc(),
             " is not f32 or f64");
    Tensor flat = g.reshape({g.numel()});
    Tensor sq = sum(mul(flat, flat)).to(DType::f64);
    if (device_sq.defined() && device_sq.device() != sq.device()) {  // parameters on several devices
      host_sq += device_sq.item();
      device_sq = Tensor();
    }
    device_sq = device_sq.defined() ? add(device_sq, sq) : sq;
    with_grad.push_back(p);
  }
  const double total = std::sqrt(host_sq + (device_sq.defined() ? device_sq.item() : 0.0));
  const double coef = max_norm / (total + 1e-6);
  if (coef >= 1.0) return total;  // torch clamps the factor to 1: nothing changes
  for (Tensor p : with_grad) {
    Tensor g = p.grad();
    if (g.is_contiguous())
      backend_for(g.device()).unary(UnaryOp::mul_scalar, g, g, coef);
    else
      p.set_grad(mul(g, coef));  // a user-set strided or broadcast view may alias other memory
  }
  return total;
}

}  // namespace mg
