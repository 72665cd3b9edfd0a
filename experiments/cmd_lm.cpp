// The language-model subcommands: tokenize, train, generate, eval.
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "experiments/args.h"
#include "experiments/commands.h"
#include "experiments/data_prep.h"
#include "experiments/eval_ids.h"
#include "experiments/generate.h"
#include "experiments/lm_run.h"
#include "nn/checkpoint.h"
#include "ops/ops.h"

namespace mg {

namespace fs = std::filesystem;

RunConfig parse_train_args(const std::string& command, const std::vector<std::string>& argv, TrainOptions& o) {
  Args a(command, argv, {"steps", "out-dir", "stop-after"}, {"resume"});
  const std::string path = a.positional("CONFIG.yaml");
  RunConfig rc = load_run_config(path);
  a.read("steps", rc.train.steps);
  a.read("out-dir", rc.out_dir);
  a.read_flag("resume", o.resume);
  a.read("stop-after", o.stop_after);
  // -1, the default, means "never"; on the command line only a real step count is meaningful.
  MG_CHECK(!a.has("stop-after") || o.stop_after >= 0, command, ": --stop-after must be >= 0, got ", o.stop_after);
  // The command line's overrides are checked as the file's values are.
  validate_train_settings(rc.train, path + " (with the command line's overrides)");
  return rc;
}

int run_tokenize(const std::vector<std::string>& argv) {
  Args a("tokenize", argv, {}, {});
  RunConfig rc = load_run_config(a.positional("CONFIG.yaml"));
  PreparedData d = prepare_data(rc.data);
  std::printf("tokenizer %s/tokenizer.bpe (%d tokens)\ntrain %s: %llu documents, %llu tokens\n", d.dir.c_str(),
              d.tokenizer->vocab_size(), d.train->path().c_str(), (unsigned long long)d.train->num_documents(),
              (unsigned long long)d.train->num_tokens());
  std::printf("validation %s: %llu documents, %llu tokens\n", d.validation->path().c_str(),
              (unsigned long long)d.validation->num_documents(), (unsigned long long)d.validation->num_tokens());
  return 0;
}

namespace {
constexpr const char* kTrainUsage =
    "usage: mixgrad train CONFIG.yaml [--resume] [--steps N] [--out-dir D] [--stop-after N]\n"
    "  trains the model of a run config (experiments/configs/*.yaml); Ctrl-C or SIGTERM stops with a\n"
    "  checkpoint, --resume continues it bit for bit.\n"
    "data-parallel (a build with MPI; docs/distributed.md):\n"
    "  mpirun -np N build/mixgrad train CONFIG.yaml        each rank takes one micro-batch per step\n"
    "  (as root add --allow-run-as-root; train.grad_accum_steps accumulates micro-batches per rank;\n"
    "  train.deterministic: true makes N ranks bitwise one process with N accumulation steps)";
}  // namespace

int run_train(const std::vector<std::string>& argv) {
  for (const auto& a : argv)
    if (a == "--help" || a == "-h") {
      std::printf("%s\n", kTrainUsage);
      return 0;
    }
  TrainOptions o;
  RunConfig rc = parse_train_args("train", argv, o);
  TrainSummary s = train_run(rc, o);
  std::printf("%s: %lld steps in %.1fs, %.0f tokens/s, last train loss %.4f", rc.name.c_str(), (long long)s.steps_done,
              s.seconds, s.tokens_per_second, s.last_train_loss);
  if (!s.validation.empty()) std::printf(", validation loss %.4f", s.validation.back().loss);
  std::printf(" (unigram baseline %.4f)\nsample: %s\noutputs in %s\n", s.unigram_entropy, s.sample.c_str(),
              rc.out_dir.c_str());
  return s.interrupted ? 130 : 0;
}

namespace {
struct LoadedRun {
  RunConfig rc;
  std::unique_ptr<LanguageModel> model;
  BpeTokenizer tok;
};

LoadedRun load_run(const std::string& ckpt) {
  auto meta = read_checkpoint_metadata(ckpt);
  auto it = meta.find("config");
  MG_CHECK(it != meta.end(), "checkpoint '", ckpt, "' carries no config");
  LoadedRun r{parse_run_config(it->second, ckpt + " [config]"), nullptr, BpeTokenizer()};
  require_language_model(r.rc, ckpt, "generate/eval");
  std::string tok_path = (fs::path(ckpt).parent_path() / "tokenizer.bpe").string();
  r.tok = BpeTokenizer::load(tok_path);
  // The tokenizer must be the one the model was trained with (checkpoints since the Trainer
  // carry its fingerprint).
  if (auto fp = meta.find("tokenizer.fingerprint"); fp != meta.end())
    MG_CHECK(fp->second == std::to_string(tokenizer_fingerprint(r.tok)), tok_path,
             " is not the tokenizer ", ckpt, " was trained with (fingerprint ", tokenizer_fingerprint(r.tok), ", the checkpoint's ",
             fp->second, ")");
  Generator gen(0);
  r.model = make_model(r.rc.model, gen);
  load_checkpoint(ckpt, *r.model, nullptr);
  return r;
}
}  // namespace

int run_generate(const std::vector<std::string>& argv) {
  Args a("generate", argv, {"checkpoint", "prompt", "tokens", "temperature", "top-k", "seed"}, {});
  MG_CHECK(a.has("checkpoint"), "generate: --checkpoint PATH is required");
  LoadedRun r = load_run(a.get("checkpoint", ""));
  GenerateOptions o;
  a.read("tokens", o.max_new_tokens);
  a.read("temperature", o.temperature);
  a.read("top-k", o.top_k);
  a.read("seed", o.seed);
  MG_CHECK(o.max_new_tokens >= 1, "generate: --tokens must be >= 1, got ", o.max_new_tokens);
  MG_CHECK(std::isfinite(o.temperature) && o.temperature >= 0, "generate: --temperature must be >= 0 (0 = greedy), got ",
           o.temperature);
  MG_CHECK(o.top_k >= 0, "generate: --top-k must be >= 0 (0 = all tokens), got ", o.top_k);
  std::string prompt = "Once upon a time";
  a.read("prompt", prompt);
  std::printf("%s%s\n", prompt.c_str(), generate_text(*r.model, r.tok, prompt, o).c_str());
  return 0;
}

int run_eval(const std::vector<std::string>& argv) {
  Args a("eval", argv, {"checkpoint", "batches", "ids"}, {});
  MG_CHECK(a.has("checkpoint"), "eval: --checkpoint PATH is required");
  LoadedRun r = load_run(a.get("checkpoint", ""));
  if (a.has("ids")) return eval_ids_file(*r.model, r.tok, a.get("ids", ""));
  require_run_data(a.get("checkpoint", ""));
  PreparedData d = prepare_data(r.rc.data);
  MG_CHECK(tokenizer_fingerprint(*d.tokenizer) == tokenizer_fingerprint(r.tok),
           "eval: the data cache's tokenizer differs from the checkpoint's tokenizer.bpe");
  BatcherOptions bo;
  bo.batch_size = r.rc.train.batch_size;
  bo.n_ctx = r.rc.model.n_ctx;
  bo.mode = r.rc.data.batching;
  bo.pad_side = r.rc.data.pad_side;
  bo.pad_id = r.tok.pad_id();
  bo.eos_id = r.tok.eos_id();
  bo.shuffle = false;
  ValidationBatches vb(d.validation, bo);
  NoGradGuard no_grad;
  Batch b;
  double total = 0;
  int64_t count = 0, nb = 0, limit = 0;
  a.read("batches", limit);
  MG_CHECK(limit >= 0, "eval: --batches must be >= 0 (0 = the whole validation split), got ", limit);
  while ((limit == 0 || nb < limit) && vb.next(b)) {
    total += shifted_lm_loss(r.model->forward(b.inputs), b.labels, true).item();
    count += count_scored(b.labels);
    ++nb;
  }
  MG_CHECK(count > 0, "eval: the validation split scores no tokens");
  const double loss = total / double(count);
  MG_CHECK(std::isfinite(loss), "eval: the validation loss is ", loss, " (the checkpoint's weights are not finite?)");
  std::printf("validation loss %.4f nats over %lld tokens (%lld batches); unigram baseline %.4f\n",
              loss, (long long)count, (long long)nb, unigram_entropy(*d.train));
  return 0;
}

}  // namespace mg
