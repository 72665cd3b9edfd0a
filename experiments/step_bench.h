#pragma once
// One training step of a run config's language model on a synthetic batch, for the tools that
// look at a step rather than train (`mixgrad profile`, `mixgrad graph`): the model built as
// `mixgrad train` builds it (make_model, seed train.seed, train.device, train.precision's
// autocast, train.threads), a [batch_size, n_ctx] batch of uniform random token ids (the ops
// and their shapes are those of a real batch; only the values differ), and the Trainer's step:
// shifted LM loss forward, backward, clip_grad_norm, AdamW step, zero_grad.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "experiments/run_config.h"
#include "nn/lm.h"
#include "nn/optim.h"

namespace mg {

struct StepBench {
  RunConfig rc;
  Device device;
  bool bf16 = false;
  std::shared_ptr<LanguageModel> model;
  std::vector<Tensor> params;
  std::unique_ptr<AdamW> opt;
  Tensor ids;  // [batch_size, n_ctx] i32 on device
};

// Throws mg::Error for an autoencoder config (not a language model) or a bad device.
// layers > 0 builds the model with that many layers instead of model.n_layers.
StepBench make_step_bench(const RunConfig& rc, int64_t layers = 0);

enum class StepPhase { forward, backward, optimizer };
const char* phase_name(StepPhase p);

// Wall seconds of each phase of one step (device-synchronized at each phase boundary).
struct StepTimes {
  double forward = 0, backward = 0, optimizer = 0;
  double total() const { return forward + backward + optimizer; }
};

// Runs one step. on_phase(p) is called as phase p starts; optimizer_part(name, fn) runs each
// piece of the optimizer phase ("clip_grad_norm", "adamw_step", "zero_grad"), so a profiler
// can time them (default: fn()).
StepTimes run_step(StepBench& b, const std::function<void(StepPhase)>& on_phase = {},
                   const std::function<void(const char*, const std::function<void()>&)>& optimizer_part = {});

// Forward and backward only (no optimizer), for the graph picture; returns the loss.
Tensor forward_loss(StepBench& b);

}  // namespace mg
