// The standard and paper tiers of `mixgrad reproduce` (experiments/reproduce.h). The quick tier
// lives in cmd_reproduce.cpp.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/error.h"
#include "experiments/autoencode.h"
#include "experiments/lm_run.h"
#include "experiments/paper_scale.h"
#include "experiments/reproduce.h"
#include "report/csv.h"
#include "report/plot.h"

namespace mg {

namespace fs = std::filesystem;

namespace {

std::string config_dir_of(const ReproduceOptions& o) {
  return o.config_dir.empty() ? std::string(MG_CONFIG_DIR) : o.config_dir;
}

bool selected(const ReproduceOptions& o, const std::string& name) {
  return o.only.empty() || name.find(o.only) != std::string::npos;
}

struct TierRun {
  RunConfig rc;
  TrainSummary s;
};

// A run that --resume finds finished trains nothing in this invocation, so its summary carries no
// losses: they are read back from the run's metrics.csv (the last logged train loss, every
// validation point, the tokens and seconds of the whole run). Columns are found by name.
void fill_from_metrics(const std::string& dir, TrainSummary& s) {
  std::ifstream in(dir + "/metrics.csv");
  std::string line;
  if (!std::getline(in, line)) return;
  auto split = [](const std::string& l) {
    std::vector<std::string> f;
    std::string cur;
    for (char c : l) {
      if (c == ',') {
        f.push_back(cur);
        cur.clear();
      } else if (c != '\r') {
        cur += c;
      }
    }
    f.push_back(cur);
    return f;
  };
  const std::vector<std::string> head = split(line);
  auto col = [&](const char* name) -> int64_t {
    for (size_t i = 0; i < head.size(); ++i)
      if (head[i] == name) return int64_t(i);
    return -1;
  };
  const int64_t c_step = col("step"), c_train = col("train_loss"), c_val = col("val_loss"), c_tok = col("tokens"),
                c_sec = col("seconds");
  if (c_step < 0 || c_train < 0 || c_val < 0) return;
  double tokens = 0, seconds = 0;
  while (std::getline(in, line)) {
    const std::vector<std::string> f = split(line);
    if (int64_t(f.size()) < int64_t(head.size())) continue;
    const int64_t step = std::stoll(f[size_t(c_step)]);
    if (!f[size_t(c_train)].empty()) s.last_train_loss = std::stod(f[size_t(c_train)]);
    if (!f[size_t(c_val)].empty()) s.validation.push_back({step, std::stod(f[size_t(c_val)])});
    if (c_tok >= 0 && !f[size_t(c_tok)].empty()) tokens = std::stod(f[size_t(c_tok)]);
    if (c_sec >= 0 && !f[size_t(c_sec)].empty()) seconds = std::stod(f[size_t(c_sec)]);
  }
  s.seconds = seconds;
  s.tokens_per_second = seconds > 0 ? tokens / seconds : 0;
}

// Trains rc (resuming from its checkpoint with o.resume); false when it stopped early.
bool train_one(RunConfig rc, const ReproduceOptions& o, std::vector<TierRun>& runs) {
  rc.out_dir = o.out + "/" + rc.name;
  if (o.steps > 0) rc.train.steps = o.steps;
  TrainOptions t;
  t.resume = o.resume && fs::exists(rc.out_dir + "/checkpoint.safetensors");
  std::fprintf(stderr, "== %s (%s) ==\n", rc.name.c_str(), rc.model.summary().c_str());
  TrainSummary s = rc.autoencoder ? train_autoencoder(rc, t) : train_run(rc, t);
  if (t.resume && !s.interrupted && s.validation.empty()) fill_from_metrics(rc.out_dir, s);
  runs.push_back({rc, s});
  if (s.interrupted) std::fprintf(stderr, "reproduce: %s stopped early; rerun with --resume\n", rc.name.c_str());
  return !s.interrupted;
}

double final_val(const TrainSummary& s) { return s.validation.empty() ? NAN : s.validation.back().loss; }

std::string num(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

}  // namespace

int run_standard_tier(const ReproduceOptions& o) {
  // Context sweep (flat mixer d vs Llama d/2, the paper's Fig. 4 pairing), then the n = 128
  // comparisons: Llama at equal width, GPT-1, and the expanded, multi-head and kernel-4 mixers.
  const int64_t sweep[] = {32, 64, 128, 256, 512};
  std::vector<std::string> names;
  for (int64_t n : sweep) {
    names.push_back("std_mixer_n" + std::to_string(n));
    names.push_back("std_llama_n" + std::to_string(n));
  }
  for (const char* n : {"std_llama_d128_n128", "std_gpt_n128", "std_mixer_expanded_n128", "std_mixer_multihead_n128",
                        "std_mixer_kernel4_n128"})
    names.push_back(n);
  const std::string dir = config_dir_of(o);
  std::vector<RunConfig> configs;  // all read (and so checked) before any training
  for (const auto& n : names)
    if (selected(o, n)) configs.push_back(load_run_config(dir + "/" + n + ".yaml"));
  MG_CHECK(!configs.empty(), "reproduce --standard: --only '", o.only, "' matches no standard config");
  fs::create_directories(o.out);
  std::vector<TierRun> runs;
  for (const auto& rc : configs)
    if (!train_one(rc, o, runs)) return 130;

  // The sweep figure: final validation CE against n_ctx, one line per family.
  report::LinePlot p{"Context-length sweep: validation CE at equal tokens", "n_ctx", "cross-entropy (nats)", {}, false};
  report::Series mixer{"flat mixer d 128", {}, {}}, llama{"Llama d 64 (d/2)", {}, {}};
  report::CsvWriter csv(o.out + "/standard.csv",
                        {"run", "model", "n_ctx", "parameters", "steps", "train_loss", "val_loss", "tokens_per_s", "seconds"});
  std::ofstream md(o.out + "/standard.md");
  md << "# mixgrad reproduction, standard tier\n\nEvery run: 2048 tokens per step (batch x n_ctx), the same steps, "
        "lr 3e-3, packed rows of n_ctx tokens.\n\n| run | model | parameters | steps | train CE | validation CE | "
        "tokens/s | time |\n|---|---|---|---|---|---|---|---|\n";
  for (const auto& r : runs) {
    const double v = final_val(r.s);
    csv.row({r.rc.name, r.rc.model.summary(), std::to_string(r.rc.model.n_ctx), std::to_string(r.s.num_parameters),
             std::to_string(r.s.steps_done), report::csv_num(r.s.last_train_loss), report::csv_num(v),
             report::csv_num(r.s.tokens_per_second), report::csv_num(r.s.seconds)});
    md << "| " << r.rc.name << " | " << r.rc.model.summary() << " | " << r.s.num_parameters << " | " << r.s.steps_done
       << " | " << num("%.4f", r.s.last_train_loss) << " | " << num("%.4f", v) << " | "
       << num("%.0f", r.s.tokens_per_second) << " | " << num("%.0f s", r.s.seconds) << " |\n";
    if (r.rc.name.rfind("std_mixer_n", 0) == 0 || r.rc.name.rfind("std_llama_n", 0) == 0) {
      auto& s = r.rc.name.rfind("std_mixer_n", 0) == 0 ? mixer : llama;
      s.x.push_back(double(r.rc.model.n_ctx));
      s.y.push_back(v);
    }
  }
  md << "\n## Ordering per n_ctx (the paper: the mixer wins for n < 512, about equal at 512)\n\n";
  for (size_t i = 0; i < mixer.x.size(); ++i)
    for (size_t j = 0; j < llama.x.size(); ++j)
      if (mixer.x[i] == llama.x[j])
        md << "- n_ctx " << mixer.x[i] << ": mixer " << num("%.4f", mixer.y[i]) << " vs Llama "
           << num("%.4f", llama.y[j]) << ": "
           << (std::isnan(mixer.y[i]) || std::isnan(llama.y[j]) ? "no validation loss"
               : mixer.y[i] < llama.y[j]                         ? "mixer lower"
                                                                 : "Llama lower")
           << "\n";
  p.series = {mixer, llama};
  report::save_line_plot(o.out + "/context_sweep.png", p);
  md << "\n![context sweep](context_sweep.png)\n";
  std::printf("report: %s/standard.md\n", o.out.c_str());
  return 0;
}

int run_paper_tier(const ReproduceOptions& o) {
  if (o.dry_run) {
    PaperDryRunOptions d;
    d.config_dir = o.config_dir;
    d.only = o.only;
    d.build_limit = o.build_limit;
    const auto rows = run_paper_dry_run(d);
    MG_CHECK(!rows.empty(), "reproduce --paper --dry-run: --only '", o.only, "' matches no paper model");
    int failed = 0;
    for (const auto& r : rows) failed += !r.failure.empty();
    std::printf("\n%zu models, %d failed. Step: batch 1 of synthetic ids, f32 on the CPU. Parameter counts must equal "
                "docs/paper.md A.11 / B.4 exactly (tolerance 0: same vocabularies, untied mixer and Llama heads, "
                "GPT-1 tied as HF).\n",
                rows.size(), failed);
    return failed ? 1 : 0;
  }
  MG_CHECK(backend_available(DeviceType::CUDA),
           "reproduce --paper: the paper's scales need a CUDA GPU, and this mixgrad has none (no device, or built "
           "without -DMG_CUDA=ON). `mixgrad reproduce --paper --dry-run` builds every model, checks its parameter count "
           "and runs one step on the CPU");
  const std::string dir = config_dir_of(o);
  std::vector<RunConfig> configs;
  for (const auto& pm : paper_models())
    if (!pm.config.empty() && selected(o, pm.config)) configs.push_back(load_run_config(dir + "/" + pm.config + ".yaml"));
  MG_CHECK(!configs.empty(), "reproduce --paper: --only '", o.only, "' matches no paper config");
  fs::create_directories(o.out);
  std::vector<TierRun> runs;
  for (const auto& rc : configs)
    if (!train_one(rc, o, runs)) return 130;
  for (const auto& r : runs)
    std::printf("%-40s %s val CE %.4f, %.0f tokens/s\n", r.rc.name.c_str(), r.rc.model.summary().c_str(),
                final_val(r.s), r.s.tokens_per_second);
  std::printf("(the frozen-embedding retrieval mixers train with `mixgrad retrieve` on these models' embeddings)\n");
  return 0;
}

}  // namespace mg
