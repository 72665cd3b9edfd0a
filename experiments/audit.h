#pragma once
// `mixgrad audit` as a typed experiment: one batch through a language model (masked mixer of any
// form, Llama, GPT-1), its tensors saved for inspection, every parameter's gradient checked
// against central finite differences in f64, per-parameter gradient / weight / update norms, and
// the masked mixers' upper-triangle gradients checked to be exactly zero. docs/audit.md explains
// the output and the bound.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/shape.h"
#include "nn/module.h"

namespace mg {

// The default --bound on the worst FD relative error (docs/audit.md derives it). A central
// difference of the f64 loss L with step h carries a rounding error of about c * eps64 * |L| / h
// (eps64 = 2.2e-16; c = 1 to 4 measured, from the rounding accumulated through the model), i.e.
// 1e-9 to 7e-9 absolute at h = 1e-6 and L = 5 to 8 nats; the truncation error h^2 |L'''| / 6 is
// ~1e-12. Entries whose gradient is below kAuditFdFloor are compared relative to that floor,
// so a correct gradient's relative error stays below ~1e-5 while a gradient off by 0.1% (a
// wrong factor, a missed term) shows as 1e-3: 1e-4 separates the two with a factor 10 each way.
inline constexpr double kAuditDefaultBound = 1e-4;
// Gradient magnitudes below this are compared absolutely: rel = |a - n| / max(|a|, |n|, floor),
// so an entry below the floor fails only when |a - n| > bound * floor = 1e-7.
inline constexpr double kAuditFdFloor = 1e-3;

struct AuditOptions {
  // The model: exactly one of the two. A config gives an untrained model seeded by train.seed.
  std::string config;      // run config YAML (experiments/run_config.h)
  std::string checkpoint;  // trained checkpoint (its config from the checkpoint's metadata)
  std::string out = "runs/audit";
  // Where the batch comes from: "corpus" (the first validation batch of the config's data),
  // "synthetic" (uniform random ids over the model's vocabulary, every position scored), or
  // "auto" (the corpus when it can be opened, else synthetic, saying why).
  std::string data = "auto";
  int64_t batch = 0;            // sequences in the batch; 0 = min(train.batch_size, 4)
  int64_t fd_samples = 8;       // entries checked per parameter of a model with >= fd_all_below parameters
  int64_t fd_all_below = 20000; // models smaller than this have every entry checked
  double fd_step = 1e-6;        // h of the central difference (f64)
  double bound = kAuditDefaultBound;
  uint64_t seed = 0;            // which entries are sampled; the synthetic ids
  bool activations = false;     // also save every module's output and its gradient
  bool detect_anomaly = false;  // run the backward passes in anomaly mode
  bool quiet = false;           // no progress lines on stderr
  // Test hook: called after the f64 backward, before the finite differences, with the f64
  // model whose .grad fields are about to be checked (a test corrupts one to see it caught).
  std::function<void(Module& model)> after_f64_backward;
};

struct FdRow {
  std::string name;
  Shape shape;
  int64_t checked = 0;      // entries compared
  double worst_abs = 0;     // max |analytical - numerical|
  double worst_rel = 0;     // max |a - n| / max(|a|, |n|, kAuditFdFloor)
  int64_t worst_index = -1; // flat index of the worst relative error
  double analytical = 0, numerical = 0;  // at worst_index
};

struct NormRow {
  std::string name;
  Shape shape;
  double grad_norm = 0, weight_norm = 0;
  double sgd_ratio = 0;    // lr * |g| / |w|
  double adamw_ratio = 0;  // |w_after - w_before| / |w| of one actual AdamW step
};

struct AuditResult {
  std::string model;        // ModelConfig::summary()
  std::string data;         // where the batch came from, in words
  int64_t num_parameters = 0;
  double loss = 0;          // f32 loss of the batch
  double loss_f64 = 0;      // the same in f64
  double fd_step = 0;       // h
  double fd_noise = 0;      // eps64 * |loss_f64| / h: the expected rounding error of one difference
  std::vector<FdRow> fd;
  double worst_rel = 0, worst_abs = 0;
  std::string worst_param;
  bool fd_ok = false;       // worst_rel <= bound
  double bound = 0;
  double lr = 0;            // the lr of the update ratios
  std::string lr_note;      // how it was chosen
  std::vector<NormRow> norms;
  // Masked mixers only: upper-triangle entries of every mixing matrix, in f32 and f64.
  bool masked_applicable = false;
  int64_t masked_checked = 0, masked_nonzero = 0;
  std::string masked_first_bad;  // "mixerblocks.0.conv.weight[1, 3] = 1e-9 (f32)" when nonzero
  int64_t activations_saved = 0;
  std::vector<std::string> files;  // written, in order
  bool ok() const { return fd_ok && (!masked_applicable || masked_nonzero == 0); }
};

// Runs the audit and writes its files to options.out: audit.safetensors, fd_check.csv,
// norms.csv, norms.png. Throws mg::Error for bad options, a bad config or checkpoint, or data
// that cannot be read; a failed check is not an error: see AuditResult::ok().
AuditResult run_audit_experiment(const AuditOptions& options);

// The result as the tables `mixgrad audit` prints.
std::string format_audit(const AuditResult& result);

// The `mixgrad audit` arguments as options (throws naming a bad argument); `help` is set when
// --help was given.
AuditOptions parse_audit_args(const std::vector<std::string>& argv, bool& help);

}  // namespace mg
