// `mixgrad autoencode train|eval|retrieve|encoder|plot`: the paper's autoencoders (docs/paper.md F) --
// training, the test (validation-split) reconstruction loss, their encoders' bottleneck z as a
// retrieval embedding scored on the same pools as `mixgrad retrieve eval`, the encoder written
// as a language-model checkpoint for `mixgrad retrieve` (InfoNCE fine-tuning, docs/paper.md E.3),
// and a figure of several runs' test-loss curves.
#include <omp.h>

#include <cstdio>
#include <filesystem>
#include <sstream>

#include "experiments/args.h"
#include "experiments/autoencode.h"
#include "experiments/commands.h"
#include "experiments/data_prep.h"
#include "experiments/encoder_export.h"
#include "experiments/retrieval.h"
#include "experiments/retrieval_eval.h"
#include "experiments/retrieve_experiment.h"
#include "report/csv.h"
#include "report/plot.h"

namespace mg {

namespace fs = std::filesystem;

namespace {

void set_threads(const Args& a) {
  int t = 0;  // OpenMP's default
  a.read("threads", t);
  MG_CHECK(t >= 0, "--threads must be >= 0, got ", t);
  if (t > 0) omp_set_num_threads(t);
}

int autoencode_train(const std::vector<std::string>& argv) {
  TrainOptions o;
  RunConfig rc = parse_train_args("autoencode train", argv, o);
  TrainSummary s = train_autoencoder(rc, o);
  std::printf("%s: %lld parameters, %lld steps in %.1fs, %.0f tokens/s, last train loss %.4f", rc.name.c_str(),
              (long long)s.num_parameters, (long long)s.steps_done, s.seconds, s.tokens_per_second, s.last_train_loss);
  if (!s.validation.empty()) std::printf(", test loss %.4f", s.validation.back().loss);
  std::printf(" (unigram baseline %.4f)\nsample:\n%s\noutputs in %s\n", s.unigram_entropy, s.sample.c_str(),
              rc.out_dir.c_str());
  return s.interrupted ? 130 : 0;
}

int autoencode_eval(const std::vector<std::string>& argv) {
  Args a("autoencode eval", argv, {"run", "batches", "threads"}, {});
  set_threads(a);
  MG_CHECK(a.has("run"), "autoencode eval: --run DIR is required");
  AutoencoderRun r = load_autoencoder_run(a.get("run", ""));
  PreparedData d = prepare_data(r.rc.data);
  MG_CHECK(tokenizer_fingerprint(*d.tokenizer) == tokenizer_fingerprint(r.tok),
           "autoencode eval: the data cache's tokenizer differs from the run's tokenizer.bpe");
  BatcherOptions bo = run_batcher_options(r.rc, r.tok);
  bo.shuffle = false;
  ValidationBatches vb(d.validation, bo);
  int64_t batches = 0;  // 0: the whole validation split
  a.read("batches", batches);
  MG_CHECK(batches >= 0, "autoencode eval: --batches must be >= 0, got ", batches);
  AutoencoderEval e = evaluate_autoencoder(*r.model, vb, batches);
  std::printf("%s (%s): test reconstruction loss %.4f nats, token accuracy %.4f, over %lld tokens (%lld batches)\n"
              "  unigram baseline %.4f; bag-of-tokens bound %.4f (best loss of a position-blind decoder)\n",
              r.rc.name.c_str(), r.checkpoint.c_str(), e.loss, e.token_accuracy, (long long)e.tokens,
              (long long)e.batches, unigram_entropy(*d.train), e.bag_of_tokens);
  return 0;
}

// Scored exactly as `mixgrad retrieve eval` (experiments/cmd_retrieve.cpp): the same pair split
// (--test-fraction, default 0.125, 1 for manpages; --split-seed 0) and pools (make_pools(n, c,
// --seed 0)), cosine similarity of the embeddings; TF-IDF and BM25 alongside unless --no-tfidf / --no-bm25.
int autoencode_retrieve(const std::vector<std::string>& argv) {
  std::set<std::string> options = {"run", "pools", "seed", "batch", "threads", "out"};
  for (const auto& n : pair_split_option_names()) options.insert(n);
  Args a("autoencode retrieve", argv, options, {"no-tfidf", "no-bm25"});
  set_threads(a);
  MG_CHECK(a.has("run"), "autoencode retrieve: --run DIR is required");
  AutoencoderRun r = load_autoencoder_run(a.get("run", ""));
  PairSplitOptions so;
  read_pair_split_args(a, so);
  RetrieveOptions defaults;  // the same pools, seed and batch as `retrieve eval`
  std::vector<int64_t> pools = defaults.pools;
  a.read("pools", pools);
  uint64_t seed = defaults.pool_seed;
  a.read("seed", seed);
  int64_t batch = defaults.embed.batch_size;
  a.read("batch", batch);
  MG_CHECK(batch >= 1, "autoencode retrieve: --batch must be >= 1, got ", batch);
  auto [q, d] = pair_texts(load_pair_split(so).test);
  const int64_t n = int64_t(q.size()), n_ctx = r.rc.model.n_ctx;
  require_a_pool_fits(n, pools);
  const int32_t pad = r.tok.pad_id();
  std::fprintf(stderr, "pairs %s: %lld test queries; encoder of %s (z, left-padded to %lld tokens)\n",
               so.pairs.c_str(), (long long)n, r.checkpoint.c_str(), (long long)n_ctx);
  Tensor qe = autoencoder_embeddings(*r.model, tokenize_texts(r.tok, q, n_ctx), pad, batch, "embed queries");
  Tensor de = autoencoder_embeddings(*r.model, tokenize_texts(r.tok, d, n_ctx), pad, batch, "embed documents");
  std::vector<NamedScorer> methods;
  methods.push_back({r.rc.name + " (autoencoder z)", cosine_scorer(qe, de)});
  if (!a.flag("no-tfidf")) methods.push_back({"tfidf", tfidf_scorer(q, d)});
  if (!a.flag("no-bm25")) methods.push_back({"bm25", bm25_scorer(q, d)});
  evaluate_methods(methods, n, pools, seed, so.pairs, a.get("out", ""), false);
  return 0;
}

// The encoder as a language-model checkpoint (experiments/encoder_export.h).
int autoencode_encoder(const std::vector<std::string>& argv) {
  Args a("autoencode encoder", argv, {"run", "out"}, {});
  MG_CHECK(a.has("run"), "autoencode encoder: --run DIR is required");
  MG_CHECK(a.has("out"), "autoencode encoder: --out DIR is required");
  const std::string run = a.get("run", ""), out = a.get("out", "");
  EncoderExport ex = export_autoencoder_encoder(run, out);
  std::printf("wrote %s: the encoder of %s (step %s) as a %s language model, %lld parameters\n"
              "  fine-tune / score it with: mixgrad retrieve train|eval --checkpoint %s --position last --pad-side left\n",
              out.c_str(), run.c_str(), ex.source_step.empty() ? "?" : ex.source_step.c_str(),
              ex.rc.model.summary().c_str(), (long long)ex.num_parameters, ex.checkpoint.c_str());
  return 0;
}

// Test-loss curves of several runs in one figure (their metrics.csv val_loss column), with the
// numbers in a CSV beside it.
int autoencode_plot(const std::vector<std::string>& argv) {
  Args a("autoencode plot", argv, {"runs", "out", "title"}, {});
  MG_CHECK(a.has("runs") && a.has("out"), "autoencode plot: --runs DIR[,DIR...] and --out FILE.png are required");
  const std::string out = a.get("out", "");
  report::LinePlot plot;
  plot.title = "Autoencoder test (validation) reconstruction loss";
  a.read("title", plot.title);
  plot.xlabel = "step";
  plot.ylabel = "cross-entropy (nats)";
  const std::string csv_path = fs::path(out).replace_extension(".csv").string();
  if (fs::path(out).has_parent_path()) fs::create_directories(fs::path(out).parent_path());
  report::CsvWriter csv(csv_path, {"run", "step", "test_loss"});
  std::stringstream ss(a.get("runs", ""));
  std::string dir;
  while (std::getline(ss, dir, ',')) {
    const std::string metrics = (fs::path(dir) / "metrics.csv").string();
    MG_CHECK(fs::exists(metrics), "autoencode plot: no ", metrics);
    report::CsvTable t = report::read_csv(metrics);
    const int step = t.column("step"), val = t.column("val_loss");
    MG_CHECK(step >= 0 && val >= 0, "autoencode plot: ", metrics, " has no step / val_loss columns");
    std::string name = fs::path(dir).filename().string();
    const std::string cfg = (fs::path(dir) / "config.yaml").string();
    if (fs::exists(cfg)) name = load_run_config(cfg).name;
    report::Series s{name, {}, {}};
    for (const auto& row : t.rows) {
      if (row[size_t(val)].empty()) continue;
      s.x.push_back(std::stod(row[size_t(step)]));
      s.y.push_back(std::stod(row[size_t(val)]));
      csv.row({name, row[size_t(step)], row[size_t(val)]});
    }
    plot.series.push_back(std::move(s));
  }
  report::save_line_plot(out, plot);
  std::printf("wrote %s and %s\n", out.c_str(), csv_path.c_str());
  return 0;
}

}  // namespace

int run_autoencode(const std::vector<std::string>& args) {
  const char* usage =
      "usage: mixgrad autoencode train|eval|retrieve|encoder|plot [options]   (docs/paper.md F)\n"
      "  train CONFIG.yaml [--resume] [--steps N] [--out-dir D] [--stop-after N]\n"
      "        (a run config with `autoencoder: true`, model.kind masked_mixer or llama, data.pad_side: left)\n"
      "  eval --run DIR [--batches N]: test reconstruction loss and token accuracy\n"
      "  retrieve --run DIR --pairs reuters|manpages|PATH.jsonl [--pools 32,128,1024 --seed S --test-fraction F\n"
      "           --split-seed S --max-queries N --batch B --out DIR --no-tfidf --no-bm25]: the encoder's z as embedding\n"
      "  encoder --run DIR --out NEW_DIR: the encoder as a language-model checkpoint (NEW_DIR/checkpoint.safetensors,\n"
      "          tokenizer.bpe, config.yaml) for `mixgrad retrieve ... --position last --pad-side left`\n"
      "  plot --runs DIR[,DIR...] --out FILE.png [--title T]: test-loss curves of runs (+ FILE.csv)";
  MG_CHECK(!args.empty(), usage);
  const std::string sub = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (sub == "train") return autoencode_train(rest);
  if (sub == "eval") return autoencode_eval(rest);
  if (sub == "retrieve") return autoencode_retrieve(rest);
  if (sub == "encoder") return autoencode_encoder(rest);
  if (sub == "plot") return autoencode_plot(rest);
  if (sub == "--help" || sub == "-h") {
    std::printf("%s\n", usage);
    return 0;
  }
  throw Error("autoencode: unknown subcommand '" + sub + "'\n" + usage);
}

}  // namespace mg
