// `mixgrad retrieve train|eval|embed|frozen|texts`: the retrieval experiments (docs/paper.md E) on
// query -> document pairs, scored top-1 / MRR among pools of 32, 128 and 1024 (c counts the
// query: c - 1 candidates), with a TF-IDF baseline on the same pools; `texts` writes one part of
// the split as a language-model corpus.
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "core/safetensors.h"
#include "experiments/args.h"
#include "experiments/commands.h"
#include "experiments/data_prep.h"
#include "experiments/pair_text_export.h"
#include "experiments/retrieval.h"
#include "experiments/retrieval_eval.h"
#include "experiments/retrieve_experiment.h"
#include "experiments/run_config.h"
#include "nn/checkpoint.h"
#include "report/csv.h"

namespace mg {

namespace fs = std::filesystem;

namespace {

constexpr const char* kUsage =
    "usage: mixgrad retrieve train|eval|embed|frozen|texts --pairs reuters|manpages|PATH.jsonl [options]\n"
    "  model: --checkpoint P | --config C.yaml [--init-seed S] [--tokenizer T] [--device D]\n"
    "         (eval: none = the classical baselines only)\n"
    "  pairs: --test-fraction F --split-seed S --max-queries N --max-train N\n"
    "  embedding: --position last|second-last|mean  --pad-side right|left  --pad-to-ctx  --batch N\n"
    "  pools: --pools 32,128,1024 --seed S --out DIR --threads N\n"
    "  eval: --tfidf-only (no model: TF-IDF and BM25 only) --no-tfidf --no-bm25\n"
    "  train (InfoNCE, docs/paper.md E.3): --steps N --group 32 --groups-per-step 1 --in-batch B --tau 0.02\n"
    "         --lr 1e-4 --warmup 500 --weight-decay 0 --grad-clip 1 --log-every 10 --train-seed 0\n"
    "         --precision f32|bf16 --checkpoint-every N --resume --stop-after N --no-eval\n"
    "  embed: --split test|train|all --out FILE.safetensors\n"
    "  frozen (docs/paper.md E.2): --pools 32,128 --depth 8 --frozen-batch 32 --epochs 1 | --steps N --lr 1e-4\n"
    "         --warmup 500 --precision f32|bf16 --resume (with --out)\n"
    "  texts: --split train|test|all --side documents|queries|both --out FILE.jsonl\n"
    "         (one {\"text\": ...} per line: a `data.format: jsonl` corpus; no model; --split train\n"
    "         leaves out any text the test split also holds)";

struct Model {
  RunConfig rc;
  std::string source;  // checkpoint path or "untrained ..."
  std::unique_ptr<LanguageModel> lm;
  std::shared_ptr<BpeTokenizer> tok;
  std::string tok_path;
};

// The model of o (null when none is named).
std::unique_ptr<Model> load_model(const RetrieveModelOptions& o) {
  auto m = std::make_unique<Model>();
  if (!o.checkpoint.empty()) {
    auto meta = read_checkpoint_metadata(o.checkpoint);
    auto it = meta.find("config");
    MG_CHECK(it != meta.end(), "checkpoint '", o.checkpoint, "' carries no config");
    m->rc = parse_run_config(it->second, o.checkpoint + " [config]");
    require_language_model(m->rc, o.checkpoint, "retrieve");
    m->tok_path = !o.tokenizer.empty() ? o.tokenizer : (fs::path(o.checkpoint).parent_path() / "tokenizer.bpe").string();
    Generator gen(0);
    m->lm = make_model(m->rc.model, gen);
    load_checkpoint(o.checkpoint, *m->lm, nullptr);
    m->source = o.checkpoint;
  } else if (!o.config.empty()) {
    m->rc = load_run_config(o.config);
    require_language_model(m->rc, o.config, "retrieve");
    m->tok_path = !o.tokenizer.empty()           ? o.tokenizer
                  : !m->rc.data.tokenizer.empty() ? m->rc.data.tokenizer
                                                  : data_cache_dir(m->rc.data) + "/tokenizer.bpe";
    MG_CHECK(fs::exists(m->tok_path), "tokenizer ", m->tok_path,
             " does not exist: run `mixgrad tokenize CONFIG` or pass --tokenizer PATH");
    Generator gen(o.init_seed);
    m->lm = make_model(m->rc.model, gen);
    m->source = "untrained " + m->rc.name + " (init seed " + std::to_string(o.init_seed) + ")";
  } else {
    return nullptr;
  }
  m->tok = std::make_shared<BpeTokenizer>(BpeTokenizer::load(m->tok_path));
  MG_CHECK(m->tok->vocab_size() <= m->rc.model.vocab_size, "tokenizer ", m->tok_path, " has ",
           m->tok->vocab_size(), " tokens, more than the model's vocab_size ", m->rc.model.vocab_size);
  const Device dev = parse_device(o.device);
  if (!dev.is_cpu()) m->lm->to(dev);
  return m;
}

std::pair<Tensor, Tensor> embed_pairs(Model& m, const std::vector<RetrievalPair>& pairs, const EmbedOptions& eo,
                                      const std::string& what) {
  auto [q, d] = pair_texts(pairs);
  const int64_t n_ctx = m.rc.model.n_ctx;
  const int32_t pad = m.tok->pad_id();
  Tensor qe = embed_sequences(*m.lm, tokenize_texts(*m.tok, q, n_ctx), pad, eo, "embed " + what + "queries");
  Tensor de = embed_sequences(*m.lm, tokenize_texts(*m.tok, d, n_ctx), pad, eo, "embed " + what + "documents");
  return {qe, de};
}

// Scores TF-IDF, BM25 and (when given) the model on identical pools; prints, writes CSV and a plot.
void evaluate(const RetrieveOptions& o, const PairSplit& split, Model* model) {
  auto [q, d] = pair_texts(split.test);
  require_a_pool_fits(int64_t(q.size()), o.pools);
  std::vector<NamedScorer> methods;
  if (!o.no_tfidf) methods.push_back({"tfidf", tfidf_scorer(q, d)});
  if (!o.no_bm25) methods.push_back({"bm25", bm25_scorer(q, d)});
  if (model) {
    auto [qe, de] = embed_pairs(*model, split.test, o.embed, "");
    methods.push_back({model->rc.name + " (" + embed_position_name(o.embed.position) + ")", cosine_scorer(qe, de)});
  }
  evaluate_methods(methods, int64_t(q.size()), o.pools, o.pool_seed, o.split.pairs, o.out, true);
}

int retrieve_eval(const RetrieveOptions& o) {
  std::unique_ptr<Model> model = o.tfidf_only ? nullptr : load_model(o.model);
  MG_CHECK(model || !(o.no_tfidf && o.no_bm25),
           "retrieve eval: --no-tfidf with --no-bm25 needs a model (--checkpoint or --config)");
  PairSplit split = load_pair_split(o.split);
  if (model) std::fprintf(stderr, "model: %s\n", model->source.c_str());
  evaluate(o, split, model.get());
  return 0;
}

int retrieve_embed(const RetrieveOptions& o) {
  std::unique_ptr<Model> model = load_model(o.model);
  MG_CHECK(model, "retrieve embed: a model is required (--checkpoint P, or --config C.yaml [--init-seed S])");
  MG_CHECK(!o.out.empty(), "retrieve embed: --out FILE.safetensors is required");
  MG_CHECK(o.which == "test" || o.which == "train" || o.which == "all", "--split: expected test, train or all, got '",
           o.which, "'");
  PairSplit split = load_pair_split(o.split);
  std::vector<RetrievalPair> pairs;
  if (o.which == "test" || o.which == "all") pairs = split.test;
  if (o.which == "train" || o.which == "all") pairs.insert(pairs.end(), split.train.begin(), split.train.end());
  MG_CHECK(!pairs.empty(), "retrieve embed: the ", o.which, " split is empty");
  auto [qe, de] = embed_pairs(*model, pairs, o.embed, "");
  std::string ids;
  for (const auto& p : pairs) ids += p.id + "\n";
  if (fs::path(o.out).has_parent_path()) fs::create_directories(fs::path(o.out).parent_path());
  save_safetensors(o.out, {{"queries", qe}, {"documents", de}},
                   {{"model", model->source}, {"pairs", o.split.pairs}, {"split", o.which},
                    {"position", embed_position_name(o.embed.position)},
                    {"pad_side", o.embed.pad_side == PadSide::left ? "left" : "right"}, {"ids", ids}});
  std::printf("wrote %s: queries and documents [%lld, %lld]\n", o.out.c_str(), (long long)qe.size(0),
              (long long)qe.size(1));
  return 0;
}

// The texts of one part of the split, as a corpus to pretrain on (pair_text_export.h).
int retrieve_texts(const RetrieveOptions& o) {
  MG_CHECK(!o.which.empty(), "retrieve texts: --split train|test|all is required (train: texts a model may be "
           "pretrained on without seeing the test pairs)");
  MG_CHECK(o.which == "test" || o.which == "train" || o.which == "all", "--split: expected test, train or all, got '",
           o.which, "'");
  MG_CHECK(!o.out.empty(), "retrieve texts: --out FILE.jsonl is required");
  const PairSide side = parse_pair_side(o.side);
  PairSplit split = load_pair_split(o.split);
  std::vector<RetrievalPair> pairs;
  if (o.which == "test" || o.which == "all") pairs = split.test;
  if (o.which == "train" || o.which == "all") pairs.insert(pairs.end(), split.train.begin(), split.train.end());
  MG_CHECK(!pairs.empty(), "retrieve texts: the ", o.which, " split is empty");
  // The training texts leave out any text the test part also holds (an article filed under two
  // headlines), so a model pretrained on them has seen no test text.
  size_t dropped = 0;
  const std::vector<std::string> texts = o.which == "train"
                                             ? texts_not_in(pair_side_texts(pairs, side), pair_side_texts(split.test, side), dropped)
                                             : pair_side_texts(pairs, side);
  MG_CHECK(!texts.empty(), "retrieve texts: every text of the train split is also in the test split");
  if (fs::path(o.out).has_parent_path()) fs::create_directories(fs::path(o.out).parent_path());
  write_text_jsonl(o.out, texts);
  size_t bytes = 0;
  for (const auto& t : texts) bytes += t.size();
  const std::string dropped_note =
      o.which == "train" ? "; " + std::to_string(dropped) + " left out as also in the test split" : "";
  std::printf("wrote %s: %zu texts (%s of the %s split of %zu pairs%s), %zu bytes of text\n", o.out.c_str(),
              texts.size(), o.side.c_str(), o.which.c_str(), pairs.size(), dropped_note.c_str(), bytes);
  return 0;
}

int retrieve_train(const RetrieveOptions& o) {
  std::unique_ptr<Model> model = load_model(o.model);
  MG_CHECK(model, "retrieve train: a model is required (--checkpoint P, or --config C.yaml [--init-seed S])");
  MG_CHECK(!o.out.empty(), "retrieve train: --out DIR is required");
  PairSplit split = load_pair_split(o.split);
  MG_CHECK(!split.train.empty(), "retrieve train: no training pairs (lower --test-fraction)");
  auto [q, d] = pair_texts(split.train);
  const int64_t n_ctx = model->rc.model.n_ctx;
  auto qt = tokenize_texts(*model->tok, q, n_ctx), dt = tokenize_texts(*model->tok, d, n_ctx);
  const InfoNceOptions& io = o.infonce;
  std::fprintf(stderr, "InfoNCE on %zu pairs from %s: %s\n", split.train.size(), model->source.c_str(),
               io.in_batch > 0 ? ("in-batch " + std::to_string(io.in_batch)).c_str()
                               : ("groups of " + std::to_string(io.group_size) + " x " +
                                  std::to_string(io.groups_per_step) + " per step").c_str());
  // The run directory holds a checkpoint that `retrieve eval --checkpoint` reads like a trained
  // language model's (config in its metadata, tokenizer.bpe beside it).
  std::map<std::string, std::string> meta{{"config", model->rc.source_yaml},
                                          {"retrieval.base", model->source},
                                          {"retrieval.pairs", o.split.pairs},
                                          {"retrieval.position", embed_position_name(io.embed.position)},
                                          {"retrieval.tau", report::csv_num(io.temperature)}};
  RunControl control{o.out, o.resume, o.stop_after, "infonce", true};
  InfoNceStats st = train_info_nce(*model->lm, qt, dt, model->tok->pad_id(), io, nullptr, control, meta);
  const std::string tok_copy = o.out + "/tokenizer.bpe";
  if (!fs::exists(tok_copy) || !fs::equivalent(tok_copy, model->tok_path))
    fs::copy_file(model->tok_path, tok_copy, fs::copy_options::overwrite_existing);
  std::printf("InfoNCE: step %lld in %.1fs, loss %.4f -> %.4f; wrote %s/checkpoint.safetensors\n", (long long)st.steps,
              st.seconds, st.first_loss, st.last_loss, o.out.c_str());
  if (st.interrupted) return 130;
  if (o.no_eval) return 0;
  evaluate(o, split, model.get());
  return 0;
}

int retrieve_frozen(const RetrieveOptions& o) {
  std::unique_ptr<Model> model = load_model(o.model);
  MG_CHECK(model, "retrieve frozen: a model is required (--checkpoint P, or --config C.yaml [--init-seed S])");
  MG_CHECK(!o.resume || !o.out.empty(), "retrieve frozen: --resume needs --out DIR");
  PairSplit split = load_pair_split(o.split);
  MG_CHECK(!split.train.empty(), "retrieve frozen: no training pairs (lower --test-fraction)");
  auto [trq, trd] = embed_pairs(*model, split.train, o.embed, "train ");
  auto [teq, ted] = embed_pairs(*model, split.test, o.embed, "test ");
  auto [tq, td] = pair_texts(split.test);
  PoolScorer tfidf = tfidf_scorer(tq, td);
  std::unique_ptr<report::CsvWriter> csv;
  if (!o.out.empty()) {
    fs::create_directories(o.out);
    csv = std::make_unique<report::CsvWriter>(
        o.out + "/frozen_retrieval.csv",
        std::vector<std::string>{"method", "pairs", "pool_size", "train_loss", "test_loss", "top1", "mrr", "seed"});
  }
  std::printf("frozen-embedding retrieval (docs/paper.md E.2) on %s: %zu train, %zu test pairs, embeddings of %s (%s)\n",
              o.split.pairs.c_str(), split.train.size(), split.test.size(), model->source.c_str(),
              embed_position_name(o.embed.position));
  std::printf("%-6s %-10s %-10s %-10s %-10s %-10s %-10s\n", "c", "train CE", "test CE", "chance", "top1", "MRR",
              "tfidf top1");
  int code = 0;
  for (int64_t c : o.frozen_pools) {
    if (c - 1 > int64_t(split.test.size()) || c - 1 > int64_t(split.train.size())) {
      std::fprintf(stderr, "pool size %lld skipped: too few pairs\n", (long long)c);
      continue;
    }
    FrozenRetrievalOptions fo = o.frozen;
    fo.pool_size = c;
    Generator gen(fo.train.seed + 17);
    RetrievalMixer rm(trq.size(1), fo.depth, c, gen);
    RunControl control{o.out.empty() ? "" : o.out + "/c" + std::to_string(c), o.resume, -1,
                       "frozen c=" + std::to_string(c), true};
    FrozenRetrievalResult r = train_frozen_retrieval(rm, trq, trd, teq, ted, fo, o.pool_seed, nullptr, control);
    if (r.interrupted) code = 130;
    RetrievalScore t = score_pools(make_pools(int64_t(split.test.size()), c, o.pool_seed), c, tfidf);
    std::printf("%-6lld %-10.4f %-10.4f %-10.4f %-10.4f %-10.4f %-10.4f\n", (long long)c, r.train_loss, r.test_loss,
                std::log(double(c - 1)), r.test.top1, r.test.mrr, t.top1);
    std::fflush(stdout);  // one row per pool size, each after minutes of training
    if (csv) {
      csv->row({"frozen " + model->rc.name, o.split.pairs, std::to_string(c), report::csv_num(r.train_loss),
                report::csv_num(r.test_loss), report::csv_num(r.test.top1), report::csv_num(r.test.mrr),
                std::to_string(o.pool_seed)});
      csv->row({"tfidf", o.split.pairs, std::to_string(c), "", "", report::csv_num(t.top1), report::csv_num(t.mrr),
                std::to_string(o.pool_seed)});
    }
    if (code) break;
  }
  return code;
}

}  // namespace

RetrieveOptions parse_retrieve_args(const std::vector<std::string>& args, bool& help) {
  help = args.empty() || args[0] == "--help" || args[0] == "-h";
  RetrieveOptions o;
  if (help) return o;
  o.command = args[0];
  MG_CHECK(o.command == "eval" || o.command == "train" || o.command == "embed" || o.command == "frozen" ||
               o.command == "texts",
           "retrieve: unknown subcommand '", o.command, "'\n", kUsage);
  const std::vector<std::string> argv(args.begin() + 1, args.end());
  std::set<std::string> options = {"pools", "seed", "out", "position", "pad-side", "batch", "threads", "device",
                                   "checkpoint", "config", "init-seed", "tokenizer"};
  for (const auto& n : pair_split_option_names()) options.insert(n);
  std::set<std::string> flags = {"pad-to-ctx", "help"};
  if (o.command == "eval") flags.insert({"tfidf-only", "no-tfidf", "no-bm25"});
  if (o.command == "embed") options.insert("split");
  // texts reads no model: only the split and where to write.
  if (o.command == "texts") {
    options = {"out", "split", "side"};
    for (const auto& n : pair_split_option_names()) options.insert(n);
  }
  if (o.command == "train" || o.command == "frozen") {
    options.insert({"steps", "lr", "warmup", "grad-clip", "log-every", "train-seed", "precision", "checkpoint-every"});
    flags.insert("resume");
  }
  if (o.command == "train") {
    options.insert({"group", "groups-per-step", "in-batch", "tau", "weight-decay", "stop-after"});
    flags.insert("no-eval");
  }
  if (o.command == "frozen") options.insert({"epochs", "depth", "frozen-batch"});
  Args a("retrieve " + o.command, argv, options, flags);
  help = a.flag("help");
  a.read("checkpoint", o.model.checkpoint);
  a.read("config", o.model.config);
  a.read("init-seed", o.model.init_seed);
  a.read("tokenizer", o.model.tokenizer);
  a.read("device", o.model.device);
  read_pair_split_args(a, o.split);
  if (a.has("position")) o.embed.position = parse_embed_position(a.get("position", ""));
  if (a.has("pad-side")) {
    const std::string side = a.get("pad-side", "");
    MG_CHECK(side == "left" || side == "right", "--pad-side: expected left or right, got '", side, "'");
    o.embed.pad_side = side == "left" ? PadSide::left : PadSide::right;
  }
  // Left padding moves every token with the batch's padding; only n_ctx padding is stable.
  o.embed.pad_to_ctx = a.flag("pad-to-ctx") || o.embed.pad_side == PadSide::left;
  a.read("batch", o.embed.batch_size);
  MG_CHECK(o.embed.batch_size >= 1, "--batch must be >= 1, got ", o.embed.batch_size);
  a.read("pools", o.command == "frozen" ? o.frozen_pools : o.pools);
  a.read("seed", o.pool_seed);
  a.read("out", o.out);
  a.read("threads", o.threads);
  a.read_flag("tfidf-only", o.tfidf_only);
  a.read_flag("no-tfidf", o.no_tfidf);
  a.read_flag("no-bm25", o.no_bm25);
  if (o.command == "texts") o.which.clear();  // must be given: its default would be test's texts
  a.read("split", o.which);
  a.read("side", o.side);
  a.read_flag("no-eval", o.no_eval);
  a.read_flag("resume", o.resume);
  a.read("stop-after", o.stop_after);
  MG_CHECK(!a.has("stop-after") || o.stop_after >= 0, "retrieve ", o.command, ": --stop-after must be >= 0, got ",
           o.stop_after);
  // The loop settings of whichever run this is (InfoNCE or the frozen mixer).
  TrainSettings& t = o.command == "frozen" ? o.frozen.train : o.infonce.train;
  t.device = o.model.device;
  a.read("steps", t.steps);
  a.read("lr", t.lr);
  a.read("warmup", t.warmup_steps);
  a.read("grad-clip", t.grad_clip);
  a.read("log-every", t.log_every);
  a.read("train-seed", t.seed);
  a.read("precision", t.precision);
  a.read("checkpoint-every", t.checkpoint_every);
  a.read("weight-decay", t.weight_decay);
  a.read("threads", t.threads);
  o.infonce.embed = o.embed;
  a.read("tau", o.infonce.temperature);
  a.read("group", o.infonce.group_size);
  a.read("groups-per-step", o.infonce.groups_per_step);
  a.read("in-batch", o.infonce.in_batch);
  a.read("epochs", o.frozen.epochs);
  a.read("depth", o.frozen.depth);
  a.read("frozen-batch", o.frozen.train.batch_size);
  return o;
}

int run_retrieve_experiment(const RetrieveOptions& o) {
  if (o.threads > 0) omp_set_num_threads(o.threads);
  if (o.command == "eval") return retrieve_eval(o);
  if (o.command == "train") return retrieve_train(o);
  if (o.command == "embed") return retrieve_embed(o);
  if (o.command == "frozen") return retrieve_frozen(o);
  if (o.command == "texts") return retrieve_texts(o);
  throw Error("retrieve: unknown subcommand '" + o.command + "'\n" + kUsage);
}

int run_retrieve(const std::vector<std::string>& args) {
  bool help = false;
  RetrieveOptions o = parse_retrieve_args(args, help);
  if (help) {
    std::printf("%s\n", kUsage);
    return args.empty() ? 2 : 0;
  }
  return run_retrieve_experiment(o);
}

}  // namespace mg
