#pragma once
// Training steps for tests that train briefly.
#include <functional>
#include <utility>
#include <vector>

#include "core/autocast.h"
#include "nn/lm.h"
#include "nn/lm_loss.h"
#include "nn/optim.h"

namespace mg::test {

// The shifted next-token loss of `model` on ids (forward under bf16 autocast when `bf16`), its
// backward, the gradient norm clipped to 1, one optimizer step and the gradients dropped.
// Returns the loss.
inline double lm_train_step(LanguageModel& model, Optimizer& opt, const Tensor& ids, bool bf16) {
  Tensor loss;
  {
    AutocastGuard ac(bf16);
    loss = shifted_lm_loss(model.forward(ids), ids);
  }
  loss.backward();
  clip_grad_norm(opt.params(), 1.0);
  opt.step();
  opt.zero_grad();
  return loss.item();
}

// `steps` optimizer steps on loss() (a fixed batch): zero_grad, loss, backward, step. Returns the
// first and the last loss.
inline std::pair<double, double> minimize(Optimizer& opt, int steps, const std::function<Tensor()>& loss) {
  double first = 0, last = 0;
  for (int step = 0; step < steps; ++step) {
    opt.zero_grad();
    Tensor l = loss();
    if (step == 0) first = l.item();
    last = l.item();
    l.backward();
    opt.step();
  }
  return {first, last};
}

}  // namespace mg::test
