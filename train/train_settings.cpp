#include "train/train_settings.h"

#include <cmath>
#include <sstream>

#include "core/device.h"
#include "core/error.h"

namespace mg {

void validate_train_settings(const TrainSettings& t, const std::string& where) {
  auto bad = [&](const std::string& key, const std::string& what) {
    throw Error(where + ": train." + key + " " + what);
  };
  auto num = [](double v) {  // shortest form: "-1", "0.001", "nan"
    std::ostringstream o;
    o << v;
    return o.str();
  };
  if (t.batch_size < 1) bad("batch_size", "must be >= 1, got " + std::to_string(t.batch_size));
  if (t.grad_accum_steps < 1) bad("grad_accum_steps", "must be >= 1, got " + std::to_string(t.grad_accum_steps));
  if (t.steps < 1) bad("steps", "must be >= 1, got " + std::to_string(t.steps));
  if (!(std::isfinite(t.lr) && t.lr > 0)) bad("lr", "must be a positive number, got " + num(t.lr));
  if (!(std::isfinite(t.min_lr) && t.min_lr >= 0 && t.min_lr <= t.lr))
    bad("min_lr", "must be in [0, lr = " + num(t.lr) + "], got " + num(t.min_lr));
  if (t.warmup_steps < 0 || t.warmup_steps > t.steps)
    bad("warmup_steps", "must be in [0, steps = " + std::to_string(t.steps) + "], got " +
                            std::to_string(t.warmup_steps));
  if (!(t.weight_decay >= 0 && std::isfinite(t.weight_decay)))
    bad("weight_decay", "must be >= 0, got " + num(t.weight_decay));
  if (!(t.beta1 >= 0 && t.beta1 < 1)) bad("beta1", "must be in [0, 1), got " + num(t.beta1));
  if (!(t.beta2 >= 0 && t.beta2 < 1)) bad("beta2", "must be in [0, 1), got " + num(t.beta2));
  if (!(t.eps > 0 && std::isfinite(t.eps))) bad("eps", "must be positive, got " + num(t.eps));
  if (!(t.grad_clip >= 0 && std::isfinite(t.grad_clip)))
    bad("grad_clip", "must be >= 0 (0 disables), got " + num(t.grad_clip));
  if (t.eval_every < 0) bad("eval_every", "must be >= 0, got " + std::to_string(t.eval_every));
  if (t.eval_batches < 0) bad("eval_batches", "must be >= 0 (0 = all), got " + std::to_string(t.eval_batches));
  if (t.log_every < 1) bad("log_every", "must be >= 1, got " + std::to_string(t.log_every));
  if (t.checkpoint_every < 0) bad("checkpoint_every", "must be >= 0, got " + std::to_string(t.checkpoint_every));
  // Under 1 KiB a bucket holds too few values to pay for a collective; above 1 GiB MPI's int
  // counts would need chunking the reducer does not do.
  if (!(t.reduce_bucket_mb >= 1.0 / 1024 && t.reduce_bucket_mb <= 1024))
    bad("reduce_bucket_mb", "must be in [1/1024, 1024] MiB, got " + num(t.reduce_bucket_mb));
  if (t.threads < 0) bad("threads", "must be >= 0 (0 = OpenMP's default), got " + std::to_string(t.threads));
  if (t.precision != "f32" && t.precision != "bf16") bad("precision", "must be f32 or bf16, got '" + t.precision + "'");
  if (!(t.time_limit_minutes >= 0)) bad("time_limit_minutes", "must be >= 0, got " + num(t.time_limit_minutes));
  try {
    parse_device(t.device);
  } catch (const Error& e) {
    bad("device", e.what());
  }
}

}  // namespace mg
