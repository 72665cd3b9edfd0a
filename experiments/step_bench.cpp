#include "experiments/step_bench.h"

#include <omp.h>

#include <chrono>

#include "core/autocast.h"
#include "core/backend.h"
#include "core/factories.h"
#include "nn/lm_loss.h"

namespace mg {

namespace {
double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
}  // namespace

const char* phase_name(StepPhase p) {
  switch (p) {
    case StepPhase::forward: return "forward";
    case StepPhase::backward: return "backward";
    case StepPhase::optimizer: return "optimizer";
  }
  return "?";
}

StepBench make_step_bench(const RunConfig& rc, int64_t layers) {
  require_language_model(rc, "'" + rc.name + "'", "step");
  validate_train_settings(rc.train, rc.name);
  StepBench b;
  b.rc = rc;
  if (layers > 0) b.rc.model.n_layers = layers;
  b.device = parse_device(rc.train.device);
  b.bf16 = rc.train.precision == "bf16";
  if (rc.train.threads > 0) omp_set_num_threads(rc.train.threads);
  Generator gen(rc.train.seed);
  b.model = make_model(b.rc.model, gen, TensorOptions{DType::f32, b.device, false});
  b.params = b.model->parameters();
  const TrainSettings& s = rc.train;
  b.opt = std::make_unique<AdamW>(b.params, AdamWOptions{s.lr, s.beta1, s.beta2, s.eps, s.weight_decay});
  b.ids = randint(0, int32_t(b.rc.model.vocab_size), {rc.train.batch_size, b.rc.model.n_ctx}, rc.train.seed + 1)
              .to(b.device);
  return b;
}

Tensor forward_loss(StepBench& b) {
  AutocastGuard autocast(b.bf16);
  return shifted_lm_loss(b.model->forward(b.ids), b.ids);
}

StepTimes run_step(StepBench& b, const std::function<void(StepPhase)>& on_phase,
                   const std::function<void(const char*, const std::function<void()>&)>& optimizer_part) {
  Backend& be = backend_for(b.device);
  auto part = [&](const char* name, const std::function<void()>& fn) {
    if (optimizer_part) optimizer_part(name, fn);
    else fn();
  };
  StepTimes t;
  be.synchronize();
  double t0 = now_s();
  if (on_phase) on_phase(StepPhase::forward);
  Tensor loss = forward_loss(b);
  be.synchronize();
  double t1 = now_s();
  t.forward = t1 - t0;
  if (on_phase) on_phase(StepPhase::backward);
  loss.backward();
  be.synchronize();
  double t2 = now_s();
  t.backward = t2 - t1;
  if (on_phase) on_phase(StepPhase::optimizer);
  const double clip = b.rc.train.grad_clip;
  if (clip > 0) part("clip_grad_norm", [&] { clip_grad_norm(b.params, clip); });
  part("adamw_step", [&] { b.opt->step(); });
  part("zero_grad", [&] { b.opt->zero_grad(); });
  be.synchronize();
  t.optimizer = now_s() - t2;
  return t;
}

}  // namespace mg
