// `mixgrad audit`: the CLI of experiments/audit.h.
#include <cstdio>

#include "experiments/audit.h"
#include "experiments/commands.h"

namespace mg {

namespace {
constexpr const char* kUsage =
    "usage: mixgrad audit CONFIG.yaml | --checkpoint P [options]\n"
    "  one batch through the model: logits, loss and every parameter's gradient (grad.<name>) saved\n"
    "  to OUT/audit.safetensors; every gradient checked against f64 central differences; per-parameter\n"
    "  gradient / weight norms and update ratios (OUT/norms.csv, OUT/norms.png); masked mixers'\n"
    "  upper-triangle token-mixing gradients checked to be exactly zero. Exit 1 when a check fails.\n"
    "options:\n"
    "  --out DIR            output directory (runs/audit)\n"
    "  --data auto|corpus|synthetic  the batch: the config's first validation batch, or uniform random\n"
    "                       ids; auto (default) uses the corpus when it can be opened\n"
    "  --batch N            sequences in the batch (default min(train.batch_size, 4))\n"
    "  --fd-samples K       entries checked per parameter (8; the largest |gradient| and K-1 random)\n"
    "  --fd-all-below N     models with fewer than N parameters have every entry checked (20000)\n"
    "  --bound B            fail when the worst FD relative error exceeds B (1e-4, docs/audit.md)\n"
    "  --seed S             sampled entries and synthetic ids (0)\n"
    "  --activations        also save every module's output (act.<path>) and gradient (act_grad.<path>)\n"
    "  --detect-anomaly     run the backward passes in anomaly mode\n";
}  // namespace

int run_audit(const std::vector<std::string>& argv) {
  bool help = false;
  AuditOptions o = parse_audit_args(argv, help);
  if (help) {
    std::printf("%s", kUsage);
    return 0;
  }
  AuditResult r = run_audit_experiment(o);
  std::printf("%s", format_audit(r).c_str());
  return r.ok() ? 0 : 1;
}

}  // namespace mg
