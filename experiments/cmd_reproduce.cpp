// `mixgrad reproduce`: the paper's comparison, scaled to the machine at hand. Trains a masked
// mixer and a Llama-style transformer on the same data with the same budget (steps, batch,
// n_ctx, optimizer), then writes report.md with both loss curves (PNG + CSV) and samples.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "experiments/args.h"
#include "experiments/commands.h"
#include "experiments/trainer.h"
#include "report/csv.h"
#include "report/plot.h"

namespace mg {

namespace fs = std::filesystem;

namespace {

struct RunResult {
  RunConfig rc;
  TrainSummary s;
};

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

void write_report(const std::string& dir, const std::vector<RunResult>& runs, bool quick) {
  // Validation curves of every run in one figure, with its numbers in CSV beside it.
  report::LinePlot p{"Validation loss, same data and budget", "step", "cross-entropy (nats)", {}, false};
  report::CsvWriter csv(dir + "/validation_loss.csv", {"model", "step", "val_loss"});
  for (const auto& r : runs) {
    report::Series s{r.rc.name, {}, {}};
    for (const auto& e : r.s.validation) {
      s.x.push_back(double(e.step));
      s.y.push_back(e.loss);
      csv.row({r.rc.name, std::to_string(e.step), report::csv_num(e.loss)});
    }
    p.series.push_back(s);
  }
  if (!runs.empty()) {
    double u = runs[0].s.unigram_entropy;
    p.series.push_back({"unigram baseline", {0, double(runs[0].rc.train.steps)}, {u, u}});
  }
  report::save_line_plot(dir + "/validation_loss.png", p);

  std::ofstream md(dir + "/report.md");
  md << "# mixgrad reproduction" << (quick ? " (quick)" : "") << "\n\n"
     << "Masked mixer vs Llama-style transformer trained on the same corpus, tokenizer, batches and\n"
     << "optimizer settings for the same number of steps (PAPER.md H.2 rows 9-11 are the paper's\n"
     << "TinyStories figures for this comparison at full scale).\n\n"
     << "| model | parameters | steps | tokens/s | train loss | validation loss | unigram baseline | time |\n"
     << "|---|---|---|---|---|---|---|---|\n";
  for (const auto& r : runs) {
    md << "| " << r.rc.name << " (" << r.rc.model.summary() << ") | " << r.s.num_parameters << " | " << r.s.steps_done
       << " | " << fmt("%.0f", r.s.tokens_per_second) << " | " << fmt("%.4f", r.s.last_train_loss) << " | "
       << (r.s.validation.empty() ? std::string("-") : fmt("%.4f", r.s.validation.back().loss)) << " | "
       << fmt("%.4f", r.s.unigram_entropy) << " | " << fmt("%.0f s", r.s.seconds) << " |\n";
  }
  md << "\n![validation loss](validation_loss.png)\n\n(numbers: validation_loss.csv; per-step logs: "
        "<run>/metrics.csv, <run>/loss.png)\n\n## Samples (greedy, continuing a validation document)\n\n";
  for (const auto& r : runs) md << "**" << r.rc.name << "**: " << r.s.sample << "\n\n";
}

}  // namespace

int run_reproduce(const std::vector<std::string>& argv) {
  Args a("reproduce", argv, {"out", "configs", "steps"}, {"quick", "resume"});
  const bool quick = a.flag("quick");
  const std::string out = a.get("out", quick ? "runs/quick" : "runs/full");
  const std::string cfg_dir = a.get("configs", std::string(MG_CONFIG_DIR));
  std::vector<std::string> names = quick ? std::vector<std::string>{"quick_mixer.yaml", "quick_llama.yaml"}
                                         : std::vector<std::string>{"tinystories_mixer.yaml", "tinystories_llama.yaml"};
  fs::create_directories(out);
  std::vector<RunResult> runs;
  for (const auto& n : names) {
    RunConfig rc = load_run_config(cfg_dir + "/" + n);
    rc.out_dir = out + "/" + rc.name;
    rc.train.steps = a.get_int("steps", rc.train.steps);
    TrainOptions o;
    o.resume = a.flag("resume") && fs::exists(rc.out_dir + "/checkpoint.safetensors");
    std::fprintf(stderr, "== %s ==\n", rc.name.c_str());
    runs.push_back({rc, train_run(rc, o)});
    if (runs.back().s.interrupted) {
      std::fprintf(stderr, "reproduce: %s stopped early; rerun with --resume\n", rc.name.c_str());
      return 130;
    }
  }
  write_report(out, runs, quick);
  std::printf("report: %s/report.md\n", out.c_str());
  for (const auto& r : runs)
    std::printf("%-14s val loss %.4f (unigram %.4f), %.0f tokens/s\n", r.rc.name.c_str(),
                r.s.validation.empty() ? NAN : r.s.validation.back().loss, r.s.unigram_entropy, r.s.tokens_per_second);
  return 0;
}

}  // namespace mg
