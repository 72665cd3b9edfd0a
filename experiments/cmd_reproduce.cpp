// `mixgrad reproduce`: the paper's comparison, scaled to the machine at hand. Trains a masked
// mixer and a Llama-style transformer on the same data with the same budget (steps, batch,
// n_ctx, optimizer), then runs the input-representation test (docs/paper.md D) and the retrieval
// comparison (docs/paper.md E) on both, and writes report.md with loss curves, samples and both
// experiments' tables and figures.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "experiments/args.h"
#include "experiments/commands.h"
#include "experiments/represent_experiment.h"
#include "experiments/reproduce.h"
#include "experiments/retrieval_comparison.h"
#include "experiments/lm_run.h"
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

// What the representation and retrieval sections measured (empty when skipped).
struct Sections {
  std::vector<RepresentRow> representation;
  std::string representation_args;
  std::vector<RetrievalComparisonRow> retrieval;
  RetrievalComparisonOptions retrieval_options;
};

void write_representation(std::ofstream& md, const Sections& sec) {
  if (sec.representation.empty()) return;
  std::vector<int> layers;
  for (const auto& r : sec.representation)
    if (std::find(layers.begin(), layers.end(), r.layer) == layers.end()) layers.push_back(r.layer);
  std::sort(layers.begin(), layers.end());
  md << "## Input representation (docs/paper.md D, Fig. 3)\n\n"
     << "Random Gaussian input embeddings optimised by gradient descent (500 steps, L1, linearly decaying\n"
     << "step) until the model's activations after `layer` blocks match those of a validation text; the\n"
     << "recovered embeddings decoded through the pseudo-inverse of the embedding matrix. Metric: the\n"
     << "paper's modified Hamming distance (fraction of tokens NOT among the top 5; 0 = exact recovery),\n"
     << "top-1 accuracy in brackets. The untrained models are the same configs at initialisation.\n"
     << "Command: `" << sec.representation_args << "`\n\n| model |";
  for (int l : layers) md << " layer " << l << " |";
  md << "\n|---|";
  for (size_t i = 0; i < layers.size(); ++i) md << "---|";
  md << "\n";
  std::vector<std::string> models;
  for (const auto& r : sec.representation)
    if (std::find(models.begin(), models.end(), r.model) == models.end()) models.push_back(r.model);
  for (const auto& m : models) {
    md << "| " << m << " |";
    for (int l : layers) {
      auto it = std::find_if(sec.representation.begin(), sec.representation.end(),
                             [&](const RepresentRow& r) { return r.model == m && r.layer == l; });
      if (it == sec.representation.end()) md << " - |";
      else md << " " << fmt("%.3f", it->hamming) << " (" << fmt("%.3f", it->top1) << ") |";
    }
    md << "\n";
  }
  md << "\n![recovery vs depth](representation/representation.png)\n\n(per-position heatmaps: "
        "representation/recovery_*.png; recovered texts: representation/samples.txt)\n\n";
}

void write_retrieval(std::ofstream& md, const Sections& sec) {
  if (sec.retrieval.empty()) return;
  const auto& o = sec.retrieval_options;
  md << "## Retrieval (docs/paper.md E)\n\n"
     << o.pairs << " query -> document pairs, top-1 accuracy (MRR in brackets) among pools of c (the query's\n"
     << "document and c - 2 distractors, identical pools for every method). Embeddings: "
     << embed_position_name(o.position) << " of the last block's\n"
     << "outputs. `embeddings`: the pretrained model as it is; `frozen`: a " << o.frozen.depth
     << "-block bidirectional mixer trained\n"
     << "for " << o.frozen.train.steps << " steps over the frozen embeddings (c = " << o.frozen.pool_size
     << " only; E.2); `infonce`: the whole model fine-tuned " << o.infonce.train.steps << " steps\n"
     << "with InfoNCE (groups of " << o.infonce.group_size << ", tau " << fmt("%g", o.infonce.temperature) << ", lr "
     << fmt("%g", o.infonce.train.lr)
     << "; E.3). TF-IDF and BM25 word overlap are the references, on the text the models see (cut to\n"
     << "n_ctx tokens) and on the full text.\n\n| model | method |";
  for (const auto& s : sec.retrieval[0].scores) md << " c = " << s.pool_size << " |";
  md << " train loss | time |\n|---|---|";
  for (size_t i = 0; i < sec.retrieval[0].scores.size(); ++i) md << "---|";
  md << "---|---|\n";
  for (const auto& r : sec.retrieval) {
    md << "| " << (r.model.empty() ? "-" : r.model) << " | " << r.method << " |";
    for (const auto& s : r.scores) {
      if (std::isnan(s.top1)) md << " - |";
      else md << " " << fmt("%.3f", s.top1) << " (" << fmt("%.3f", s.mrr) << ") |";
    }
    if (r.method == "frozen" || r.method == "infonce")
      md << " " << fmt("%.3f", r.train_loss_start) << " -> " << fmt("%.3f", r.train_loss_end) << " |";
    else
      md << " - |";
    md << " " << fmt("%.0f s", r.seconds) << " |\n";
  }
  md << "\n![retrieval](retrieval/retrieval_top1.png)\n\n(numbers: retrieval/retrieval.csv)\n\n";
}

void write_report(const std::string& dir, const std::vector<RunResult>& runs, bool quick, const Sections& sec) {
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
     << "optimizer settings for the same number of steps (docs/paper.md H.2 rows 9-11 are the paper's\n"
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
  write_representation(md, sec);
  write_retrieval(md, sec);
}

}  // namespace

ReproduceOptions parse_reproduce_args(const std::vector<std::string>& argv) {
  Args a("reproduce", argv, {"out", "configs", "steps", "infonce-steps", "only", "build-limit"},
         {"quick", "standard", "paper", "dry-run", "resume", "skip-represent", "skip-retrieval"});
  ReproduceOptions o;
  a.read_flag("quick", o.quick);
  a.read_flag("standard", o.standard);
  a.read_flag("paper", o.paper);
  a.read_flag("dry-run", o.dry_run);
  a.read("only", o.only);
  a.read("build-limit", o.build_limit);
  MG_CHECK(int(o.quick) + int(o.standard) + int(o.paper) == 1,
           "reproduce: choose one tier: --quick (about 10 minutes on 2 CPU cores), --standard (about 2.5 hours, "
           "resumable) or --paper (the paper's scales: a CUDA GPU, or --paper --dry-run on any machine)");
  MG_CHECK(!o.dry_run || o.paper, "reproduce: --dry-run goes with --paper");
  MG_CHECK(o.build_limit >= 0, "reproduce: --build-limit must be >= 0, got ", o.build_limit);
  a.read("out", o.out);
  if (o.out.empty()) o.out = o.quick ? "runs/quick" : o.standard ? "runs/standard" : "runs/paper";
  a.read("configs", o.config_dir);
  a.read("steps", o.steps);
  o.retrieval.infonce.train.steps = o.quick ? 500 : 5000;
  a.read("infonce-steps", o.retrieval.infonce.train.steps);
  a.read_flag("resume", o.resume);
  a.read_flag("skip-represent", o.skip_represent);
  a.read_flag("skip-retrieval", o.skip_retrieval);
  return o;
}

int run_reproduce_experiment(const ReproduceOptions& o) {
  if (o.paper) return run_paper_tier(o);
  if (o.standard) return run_standard_tier(o);
  MG_CHECK(o.quick, "reproduce: choose a tier: --quick, --standard or --paper");
  const std::string& out = o.out;
  const std::vector<std::string> names = {"quick_mixer.yaml", "quick_llama.yaml"};
  // Fail before minutes of training, not after, when the retrieval pairs are not installed.
  if (!o.skip_retrieval) {
    try {
      (void)load_pairs(o.retrieval.pairs);
    } catch (const Error& e) {
      throw Error(std::string(e.what()) +
                  "\nreproduce: the retrieval section needs these pairs: install them with "
                  "scripts/install_corpus.sh reuters, or pass --skip-retrieval");
    }
  }
  fs::create_directories(out);
  std::vector<RunResult> runs;
  for (const auto& n : names) {
    RunConfig rc = load_run_config((o.config_dir.empty() ? std::string(MG_CONFIG_DIR) : o.config_dir) + "/" + n);
    rc.out_dir = out + "/" + rc.name;
    if (o.steps > 0) rc.train.steps = o.steps;
    TrainOptions t;
    t.resume = o.resume && fs::exists(rc.out_dir + "/checkpoint.safetensors");
    std::fprintf(stderr, "== %s ==\n", rc.name.c_str());
    runs.push_back({rc, train_run(rc, t)});
    if (runs.back().s.interrupted) {
      std::fprintf(stderr, "reproduce: %s stopped early; rerun with --resume\n", rc.name.c_str());
      return 130;
    }
  }
  Sections sec;
  if (!o.skip_represent) {
    // Trained checkpoints beside the same configs at initialisation (the training seed).
    RepresentExperimentOptions ro;
    for (const auto& r : runs) {
      ro.checkpoints.push_back(r.rc.out_dir + "/checkpoint.safetensors");
      ro.configs.push_back(r.rc.out_dir + "/config.yaml");
    }
    const int64_t L = runs[0].rc.model.n_layers;
    ro.model_seed = runs[0].rc.train.seed;
    ro.texts = o.quick ? 4 : 10;
    ro.layers = o.quick ? "1," + std::to_string(L) : "all";
    ro.out = out + "/representation";
    sec.representation_args = represent_command_line(ro);
    std::fprintf(stderr, "== input representation ==\n");
    sec.representation = run_represent_experiment(ro);
  }
  if (!o.skip_retrieval) {
    std::fprintf(stderr, "== retrieval ==\n");
    std::vector<PretrainedModel> models;
    for (const auto& r : runs) models.push_back({r.rc.name, r.rc.out_dir + "/checkpoint.safetensors"});
    sec.retrieval_options = o.retrieval;
    sec.retrieval = run_retrieval_comparison(models, sec.retrieval_options, out + "/retrieval");
  }
  write_report(out, runs, o.quick, sec);
  std::printf("report: %s/report.md\n", out.c_str());
  for (const auto& r : runs)
    std::printf("%-14s val loss %.4f (unigram %.4f), %.0f tokens/s\n", r.rc.name.c_str(),
                r.s.validation.empty() ? NAN : r.s.validation.back().loss, r.s.unigram_entropy, r.s.tokens_per_second);
  return 0;
}

int run_reproduce(const std::vector<std::string>& argv) { return run_reproduce_experiment(parse_reproduce_args(argv)); }

}  // namespace mg
