#pragma once
// Optimizers over a list of parameter tensors, with torch.optim's exact update rules, and global
// gradient-norm clipping.
//
// Parameters are contiguous float leaves with requires_grad; they may live on any device. step()
// runs under NoGradGuard, updates each parameter in place with one fused backend kernel
// (Backend::adamw_step / sgd_step) and skips parameters whose .grad is undefined, as torch does.
// Optimizer state is allocated (zeros) at construction, so a checkpoint can be loaded into a
// fresh optimizer through state_tensors() before the first step.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace mg {

class Optimizer {
 public:
  virtual ~Optimizer();
  // One update of every parameter that has a gradient.
  void step();
  // Drops every parameter's .grad (torch's zero_grad(set_to_none=True)).
  void zero_grad();
  double lr() const { return lr_; }
  void set_lr(double lr);
  const std::vector<Tensor>& params() const { return params_; }

  // The live state tensors, named "state.<param index>.<torch state key>" (e.g. "state.3.exp_avg"),
  // in a fixed order. Writing into them (e.g. with assign_ under NoGradGuard) restores a checkpoint.
  virtual std::vector<std::pair<std::string, Tensor>> state_tensors();
  // Number of step() calls so far. set_step_count restores it from a checkpoint and marks every
  // parameter as having taken that many steps (torch counts per parameter; the two differ only
  // for parameters that lacked a gradient on some earlier step).
  virtual int64_t step_count() const { return step_; }
  virtual void set_step_count(int64_t steps);

 protected:
  Optimizer(std::vector<Tensor> params, double lr, const char* name);
  // The gradient of params_[i] as a contiguous tensor of the parameter's dtype, or undefined.
  Tensor grad_for_update(size_t i) const;
  // step()'s update of params_[i] with its gradient g (grad_for_update(i), defined); t is the
  // parameter's own step number, counting this one (1 on its first update). Runs under
  // NoGradGuard.
  virtual void update(size_t i, const Tensor& g, int64_t t) = 0;

  std::vector<Tensor> params_;
  std::vector<int64_t> param_steps_;  // steps each parameter has taken (torch's per-parameter "step")
  double lr_;
  int64_t step_ = 0;
  const char* name_;
};

struct AdamWOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01;
};

// torch.optim.AdamW (amsgrad=False, maximize=False): for step t of a parameter,
//   p *= 1 - lr*wd;  m = m + (1-b1)(g - m);  v = b2 v + (1-b2) g^2;
//   p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
// State per parameter: exp_avg, exp_avg_sq.
class AdamW : public Optimizer {
 public:
  explicit AdamW(std::vector<Tensor> params, AdamWOptions opts = {});
  std::vector<std::pair<std::string, Tensor>> state_tensors() override;
  const AdamWOptions& options() const { return opts_; }

 private:
  void update(size_t i, const Tensor& g, int64_t t) override;

  AdamWOptions opts_;
  std::vector<Tensor> exp_avg_, exp_avg_sq_;
};

struct SGDOptions {
  double lr = 1e-2, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false;
};

// torch.optim.SGD (maximize=False): d = g + wd p; with momentum, buf = d on a parameter's first
// step, then buf = momentum buf + (1 - dampening) d; d = nesterov ? d + momentum buf : buf;
// p -= lr d. State per parameter (only with momentum): momentum_buffer.
class SGD : public Optimizer {
 public:
  explicit SGD(std::vector<Tensor> params, SGDOptions opts = {});
  std::vector<std::pair<std::string, Tensor>> state_tensors() override;
  const SGDOptions& options() const { return opts_; }

 private:
  void update(size_t i, const Tensor& g, int64_t t) override;

  SGDOptions opts_;
  std::vector<Tensor> momentum_buffer_;  // undefined entries when momentum == 0
};

// torch.nn.utils.clip_grad_norm_ (L2, error_if_nonfinite=False): total = sqrt(sum of squared
// gradient entries over all params with a .grad), accumulated in f64; when
// max_norm / (total + 1e-6) < 1, every gradient is multiplied in place by that factor.
// Returns the norm before clipping (NaN/inf propagate into it; gradients are then scaled by
// the NaN/zero factor, as in torch).
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

}  // namespace mg
