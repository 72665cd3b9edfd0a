// `mixgrad retrieve train|eval|embed|frozen`: the retrieval experiments (PAPER.md E) on query ->
// document pairs, scored top-1 / MRR among pools of 32, 128 and 1024 (c counts the query: c - 1
// candidates), with a TF-IDF baseline on the same pools.
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>

#include "core/safetensors.h"
#include "experiments/args.h"
#include "experiments/commands.h"
#include "experiments/data_prep.h"
#include "experiments/retrieval.h"
#include "experiments/retrieval_eval.h"
#include "experiments/run_config.h"
#include "nn/checkpoint.h"
#include "report/csv.h"
#include "report/plot.h"

namespace mg {

namespace fs = std::filesystem;

namespace {

const std::set<std::string> kCommonOptions = {
    "pairs", "test-fraction", "split-seed", "pools", "seed", "max-queries", "out", "position", "pad-side",
    "batch", "threads", "device", "checkpoint", "config", "init-seed", "tokenizer"};
const std::set<std::string> kCommonFlags = {"pad-to-ctx"};

std::set<std::string> with(std::set<std::string> a, const std::set<std::string>& b) {
  a.insert(b.begin(), b.end());
  return a;
}

struct Model {
  RunConfig rc;
  std::string source;  // checkpoint path or "config + seed"
  std::unique_ptr<LanguageModel> lm;
  std::shared_ptr<BpeTokenizer> tok;
  std::string tok_path;
};

// --checkpoint P (tokenizer.bpe beside it), or --config C.yaml [--init-seed S] [--tokenizer T]
// for an untrained model. Returns null when neither is given.
std::unique_ptr<Model> load_model(const Args& a) {
  auto m = std::make_unique<Model>();
  if (a.has("checkpoint")) {
    const std::string ckpt = a.get("checkpoint", "");
    auto meta = read_checkpoint_metadata(ckpt);
    auto it = meta.find("config");
    MG_CHECK(it != meta.end(), "checkpoint '", ckpt, "' carries no config");
    m->rc = parse_run_config(it->second, ckpt + " [config]");
    require_language_model(m->rc, ckpt, "retrieve");
    m->tok_path = a.get("tokenizer", (fs::path(ckpt).parent_path() / "tokenizer.bpe").string());
    Generator gen(0);
    m->lm = make_model(m->rc.model, gen);
    load_checkpoint(ckpt, *m->lm, nullptr);
    m->source = ckpt;
  } else if (a.has("config")) {
    m->rc = load_run_config(a.get("config", ""));
    require_language_model(m->rc, a.get("config", ""), "retrieve");
    m->tok_path = a.get("tokenizer", data_cache_dir(m->rc.data) + "/tokenizer.bpe");
    MG_CHECK(fs::exists(m->tok_path), "tokenizer ", m->tok_path,
             " does not exist: run `mixgrad tokenize CONFIG` or pass --tokenizer PATH");
    const uint64_t seed = uint64_t(a.get_int("init-seed", 0));
    Generator gen(seed);
    m->lm = make_model(m->rc.model, gen);
    m->source = "untrained " + m->rc.name + " (init seed " + std::to_string(seed) + ")";
  } else {
    return nullptr;
  }
  m->tok = std::make_shared<BpeTokenizer>(BpeTokenizer::load(m->tok_path));
  MG_CHECK(m->tok->vocab_size() <= m->rc.model.vocab_size, "tokenizer ", m->tok_path, " has ",
           m->tok->vocab_size(), " tokens, more than the model's vocab_size ", m->rc.model.vocab_size);
  const Device dev = parse_device(a.get("device", m->rc.train.device));
  if (!dev.is_cpu()) m->lm->to(dev);
  return m;
}

EmbedOptions embed_options(const Args& a) {
  EmbedOptions o;
  o.position = parse_embed_position(a.get("position", "second-last"));
  const std::string side = a.get("pad-side", "right");
  MG_CHECK(side == "left" || side == "right", "--pad-side: expected left or right, got '", side, "'");
  o.pad_side = side == "left" ? PadSide::left : PadSide::right;
  // Left padding moves every token with the batch's padding; only n_ctx padding is stable.
  o.pad_to_ctx = a.flag("pad-to-ctx") || o.pad_side == PadSide::left;
  o.batch_size = a.get_int("batch", 16);
  return o;
}

struct Data {
  std::string name;
  PairSplit split;
};

Data load_data(const Args& a) {
  MG_CHECK(a.has("pairs"), "--pairs reuters|manpages|PATH.jsonl is required");
  Data d;
  d.name = a.get("pairs", "");
  std::vector<RetrievalPair> pairs = load_pairs(d.name);
  // The man pages are too few to train on (DATA.md B): all of them are evaluation pairs.
  const double frac = a.get_double("test-fraction", d.name == "manpages" ? 1.0 : 0.125);
  MG_CHECK(frac > 0 && frac <= 1, "--test-fraction must be in (0, 1], got ", frac);
  if (frac >= 1) d.split.test = std::move(pairs);
  else d.split = split_pairs(pairs, frac, uint64_t(a.get_int("split-seed", 0)));
  const int64_t maxq = a.get_int("max-queries", 0);
  if (maxq > 0 && int64_t(d.split.test.size()) > maxq) d.split.test.resize(size_t(maxq));
  std::fprintf(stderr, "pairs %s: %zu train, %zu test\n", d.name.c_str(), d.split.train.size(),
               d.split.test.size());
  return d;
}

void texts_of(const std::vector<RetrievalPair>& pairs, std::vector<std::string>& q, std::vector<std::string>& d) {
  q.clear();
  d.clear();
  for (const auto& p : pairs) {
    q.push_back(p.query);
    d.push_back(p.document);
  }
}

// Scores TF-IDF and (when given) the model on identical pools; prints, writes CSV and a plot.
int evaluate(const Args& a, const Data& data, Model* model, const std::string& out_dir, bool tfidf) {
  std::vector<std::string> q, d;
  texts_of(data.split.test, q, d);
  std::vector<NamedScorer> methods;
  if (tfidf) methods.push_back({"tfidf", tfidf_scorer(q, d)});
  if (model) {
    EmbedOptions eo = embed_options(a);
    const int64_t n_ctx = model->rc.model.n_ctx;
    const int32_t pad = model->tok->pad_id();
    Tensor qe = embed_sequences(*model->lm, tokenize_texts(*model->tok, q, n_ctx), pad, eo, "embed queries");
    Tensor de = embed_sequences(*model->lm, tokenize_texts(*model->tok, d, n_ctx), pad, eo, "embed documents");
    methods.push_back({model->rc.name + " (" + embed_position_name(eo.position) + ")", cosine_scorer(qe, de)});
  }
  evaluate_methods(methods, int64_t(q.size()), parse_pools(a.get("pools", "32,128,1024")),
                   uint64_t(a.get_int("seed", 0)), data.name, out_dir, true);
  return 0;
}

void set_threads(const Args& a) {
  const int64_t t = a.get_int("threads", 0);
  if (t > 0) omp_set_num_threads(int(t));
}

int retrieve_eval(const std::vector<std::string>& argv) {
  Args a("retrieve eval", argv, kCommonOptions, with(kCommonFlags, {"tfidf-only", "no-tfidf"}));
  set_threads(a);
  std::unique_ptr<Model> model = a.flag("tfidf-only") ? nullptr : load_model(a);
  MG_CHECK(model || !a.flag("no-tfidf"), "retrieve eval: --no-tfidf needs a model (--checkpoint or --config)");
  Data data = load_data(a);
  if (model) std::fprintf(stderr, "model: %s\n", model->source.c_str());
  return evaluate(a, data, model.get(), a.get("out", ""), !a.flag("no-tfidf"));
}

int retrieve_embed(const std::vector<std::string>& argv) {
  Args a("retrieve embed", argv, with(kCommonOptions, {"split"}), kCommonFlags);
  set_threads(a);
  std::unique_ptr<Model> model = load_model(a);
  MG_CHECK(model, "retrieve embed: a model is required (--checkpoint P, or --config C.yaml [--init-seed S])");
  MG_CHECK(a.has("out"), "retrieve embed: --out FILE.safetensors is required");
  Data data = load_data(a);
  const std::string which = a.get("split", "test");
  std::vector<RetrievalPair> pairs;
  if (which == "test" || which == "all") pairs = data.split.test;
  if (which == "train" || which == "all") pairs.insert(pairs.end(), data.split.train.begin(), data.split.train.end());
  MG_CHECK(which == "test" || which == "train" || which == "all", "--split: expected test, train or all, got '",
           which, "'");
  MG_CHECK(!pairs.empty(), "retrieve embed: the ", which, " split is empty");
  std::vector<std::string> q, d;
  texts_of(pairs, q, d);
  EmbedOptions eo = embed_options(a);
  const int64_t n_ctx = model->rc.model.n_ctx;
  const int32_t pad = model->tok->pad_id();
  Tensor qe = embed_sequences(*model->lm, tokenize_texts(*model->tok, q, n_ctx), pad, eo, "embed queries");
  Tensor de = embed_sequences(*model->lm, tokenize_texts(*model->tok, d, n_ctx), pad, eo, "embed documents");
  std::string ids;
  for (const auto& p : pairs) ids += p.id + "\n";
  const std::string out = a.get("out", "");
  if (fs::path(out).has_parent_path()) fs::create_directories(fs::path(out).parent_path());
  save_safetensors(out, {{"queries", qe}, {"documents", de}},
                   {{"model", model->source}, {"pairs", data.name}, {"split", which},
                    {"position", embed_position_name(eo.position)},
                    {"pad_side", eo.pad_side == PadSide::left ? "left" : "right"}, {"ids", ids}});
  std::printf("wrote %s: queries and documents [%lld, %lld]\n", out.c_str(), (long long)qe.size(0),
              (long long)qe.size(1));
  return 0;
}

int retrieve_train(const std::vector<std::string>& argv) {
  Args a("retrieve train", argv,
         with(kCommonOptions, {"steps", "group", "groups-per-step", "in-batch", "tau", "lr", "warmup", "weight-decay",
                               "grad-clip", "log-every", "train-seed", "max-train"}),
         with(kCommonFlags, {"no-eval"}));
  set_threads(a);
  std::unique_ptr<Model> model = load_model(a);
  MG_CHECK(model, "retrieve train: a model is required (--checkpoint P, or --config C.yaml [--init-seed S])");
  MG_CHECK(a.has("out"), "retrieve train: --out DIR is required");
  const std::string out_dir = a.get("out", "");
  Data data = load_data(a);
  std::vector<RetrievalPair> train = data.split.train;
  const int64_t max_train = a.get_int("max-train", 0);
  if (max_train > 0 && int64_t(train.size()) > max_train) train.resize(size_t(max_train));
  MG_CHECK(!train.empty(), "retrieve train: no training pairs (lower --test-fraction)");
  InfoNceOptions o;
  o.embed = embed_options(a);
  o.temperature = a.get_double("tau", 0.02);
  o.group_size = a.get_int("group", 32);
  o.groups_per_step = a.get_int("groups-per-step", 1);
  o.in_batch = a.get_int("in-batch", 0);
  o.steps = a.get_int("steps", 0);
  o.lr = a.get_double("lr", 1e-4);
  o.warmup_steps = a.get_int("warmup", 500);
  o.weight_decay = a.get_double("weight-decay", 0);
  o.grad_clip = a.get_double("grad-clip", 1.0);
  o.log_every = a.get_int("log-every", 10);
  o.seed = uint64_t(a.get_int("train-seed", 0));
  std::vector<std::string> q, d;
  texts_of(train, q, d);
  const int64_t n_ctx = model->rc.model.n_ctx;
  const int32_t pad = model->tok->pad_id();
  auto qt = tokenize_texts(*model->tok, q, n_ctx), dt = tokenize_texts(*model->tok, d, n_ctx);
  fs::create_directories(out_dir);
  report::CsvWriter log(out_dir + "/infonce_loss.csv", {"step", "loss"});
  report::LinePlot lp;
  lp.title = "InfoNCE training loss (tau " + report::csv_num(o.temperature) + ")";
  lp.xlabel = "step";
  lp.ylabel = "loss";
  lp.series.push_back({"train", {}, {}});
  std::fprintf(stderr, "InfoNCE on %zu pairs from %s: %s\n", train.size(), model->source.c_str(),
               o.in_batch > 0 ? ("in-batch " + std::to_string(o.in_batch)).c_str()
                              : ("groups of " + std::to_string(o.group_size) + " x " +
                                 std::to_string(o.groups_per_step) + " per step").c_str());
  InfoNceStats st = train_info_nce(*model->lm, qt, dt, pad, o, [&](int64_t step, double loss) {
    std::fprintf(stderr, "step %lld loss %.4f\n", (long long)step, loss);
    log.row({std::to_string(step), report::csv_num(loss)});
    lp.series[0].x.push_back(double(step));
    lp.series[0].y.push_back(loss);
  });
  report::save_line_plot(out_dir + "/infonce_loss.png", lp);
  std::map<std::string, std::string> meta{{"config", model->rc.source_yaml},
                                          {"retrieval.base", model->source},
                                          {"retrieval.pairs", data.name},
                                          {"retrieval.position", embed_position_name(o.embed.position)},
                                          {"retrieval.tau", report::csv_num(o.temperature)},
                                          {"retrieval.steps", std::to_string(st.steps)}};
  const std::string ckpt = out_dir + "/retrieval.safetensors";
  save_checkpoint(ckpt, *model->lm, nullptr, meta);
  const std::string tok_copy = out_dir + "/tokenizer.bpe";
  if (!fs::exists(tok_copy) || !fs::equivalent(tok_copy, model->tok_path))
    fs::copy_file(model->tok_path, tok_copy, fs::copy_options::overwrite_existing);
  std::printf("InfoNCE: %lld steps in %.1fs, loss %.4f -> %.4f; wrote %s\n", (long long)st.steps, st.seconds,
              st.first_loss, st.last_loss, ckpt.c_str());
  if (a.flag("no-eval")) return 0;
  return evaluate(a, data, model.get(), out_dir, true);
}

int retrieve_frozen(const std::vector<std::string>& argv) {
  Args a("retrieve frozen", argv,
         with(kCommonOptions, {"steps", "epochs", "depth", "lr", "warmup", "grad-clip", "log-every", "train-seed",
                               "max-train", "frozen-batch"}),
         kCommonFlags);
  set_threads(a);
  std::unique_ptr<Model> model = load_model(a);
  MG_CHECK(model, "retrieve frozen: a model is required (--checkpoint P, or --config C.yaml [--init-seed S])");
  Data data = load_data(a);
  std::vector<RetrievalPair> train = data.split.train;
  const int64_t max_train = a.get_int("max-train", 0);
  if (max_train > 0 && int64_t(train.size()) > max_train) train.resize(size_t(max_train));
  MG_CHECK(!train.empty(), "retrieve frozen: no training pairs (lower --test-fraction)");
  EmbedOptions eo = embed_options(a);
  const int64_t n_ctx = model->rc.model.n_ctx;
  const int32_t pad = model->tok->pad_id();
  auto embed_pairs = [&](const std::vector<RetrievalPair>& pairs, const std::string& what, Tensor& qe, Tensor& de) {
    std::vector<std::string> q, d;
    texts_of(pairs, q, d);
    qe = embed_sequences(*model->lm, tokenize_texts(*model->tok, q, n_ctx), pad, eo, "embed " + what + " queries");
    de = embed_sequences(*model->lm, tokenize_texts(*model->tok, d, n_ctx), pad, eo, "embed " + what + " documents");
  };
  Tensor trq, trd, teq, ted;
  embed_pairs(train, "train", trq, trd);
  embed_pairs(data.split.test, "test", teq, ted);
  const uint64_t seed = uint64_t(a.get_int("seed", 0));
  std::vector<std::string> tq, td;
  texts_of(data.split.test, tq, td);
  PoolScorer tfidf = tfidf_scorer(tq, td);
  const std::string out_dir = a.get("out", "");
  std::unique_ptr<report::CsvWriter> csv;
  if (!out_dir.empty()) {
    fs::create_directories(out_dir);
    csv = std::make_unique<report::CsvWriter>(
        out_dir + "/frozen_retrieval.csv",
        std::vector<std::string>{"method", "pairs", "pool_size", "train_loss", "test_loss", "top1", "mrr", "seed"});
  }
  std::printf("frozen-embedding retrieval (PAPER E.2) on %s: %zu train, %zu test pairs, embeddings of %s (%s)\n",
              data.name.c_str(), train.size(), data.split.test.size(), model->source.c_str(),
              embed_position_name(eo.position));
  std::printf("%-6s %-10s %-10s %-10s %-10s %-10s %-10s\n", "c", "train CE", "test CE", "chance", "top1", "MRR",
              "tfidf top1");
  for (int64_t c : parse_pools(a.get("pools", "32,128"))) {
    if (c - 1 > int64_t(data.split.test.size()) || c - 1 > int64_t(train.size())) {
      std::fprintf(stderr, "pool size %lld skipped: too few pairs\n", (long long)c);
      continue;
    }
    FrozenRetrievalOptions o;
    o.pool_size = c;
    o.depth = a.get_int("depth", 8);
    o.batch_size = a.get_int("frozen-batch", 32);
    o.epochs = a.get_int("epochs", 1);
    o.steps = a.get_int("steps", 0);
    o.lr = a.get_double("lr", 1e-4);
    o.warmup_steps = a.get_int("warmup", 500);
    o.grad_clip = a.get_double("grad-clip", 1.0);
    o.log_every = a.get_int("log-every", 50);
    o.seed = uint64_t(a.get_int("train-seed", 0));
    Generator gen(o.seed + 17);
    RetrievalMixer rm(trq.size(1), o.depth, c, gen);
    FrozenRetrievalResult r =
        train_frozen_retrieval(rm, trq, trd, teq, ted, o, seed, [&](int64_t step, double loss) {
          std::fprintf(stderr, "c=%lld step %lld train CE %.4f\n", (long long)c, (long long)step, loss);
        });
    RetrievalScore t = score_pools(make_pools(int64_t(data.split.test.size()), c, seed), c, tfidf);
    std::printf("%-6lld %-10.4f %-10.4f %-10.4f %-10.4f %-10.4f %-10.4f\n", (long long)c, r.train_loss, r.test_loss,
                std::log(double(c - 1)), r.test.top1, r.test.mrr, t.top1);
    std::fflush(stdout);  // one row per pool size, each after minutes of training
    if (csv) {
      csv->row({"frozen " + model->rc.name, data.name, std::to_string(c), report::csv_num(r.train_loss),
                report::csv_num(r.test_loss), report::csv_num(r.test.top1), report::csv_num(r.test.mrr),
                std::to_string(seed)});
      csv->row({"tfidf", data.name, std::to_string(c), "", "", report::csv_num(t.top1), report::csv_num(t.mrr),
                std::to_string(seed)});
    }
  }
  return 0;
}

}  // namespace

int run_retrieve(const std::vector<std::string>& args) {
  const char* usage =
      "usage: mixgrad retrieve train|eval|embed|frozen --pairs reuters|manpages|PATH.jsonl [options]\n"
      "  model: --checkpoint P | --config C.yaml [--init-seed S] [--tokenizer T]   (eval: none = TF-IDF only)\n"
      "  embedding: --position last|second-last|mean  --pad-side right|left  --pad-to-ctx  --batch N\n"
      "  pools: --pools 32,128,1024 --seed S --test-fraction F --split-seed S --max-queries N --out DIR\n"
      "  train: --steps N --group 32 --groups-per-step 1 --in-batch B --tau 0.02 --lr 1e-4 --warmup 500\n"
      "  embed: --split test|train|all --out FILE.safetensors\n"
      "  frozen (PAPER E.2): --pools 32,128 --depth 8 --frozen-batch 32 --epochs 1 | --steps N --lr 1e-4 --max-train N";
  MG_CHECK(!args.empty(), usage);
  const std::string sub = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (sub == "eval") return retrieve_eval(rest);
  if (sub == "train") return retrieve_train(rest);
  if (sub == "embed") return retrieve_embed(rest);
  if (sub == "frozen") return retrieve_frozen(rest);
  if (sub == "--help" || sub == "-h") {
    std::printf("%s\n", usage);
    return 0;
  }
  throw Error("retrieve: unknown subcommand '" + sub + "'\n" + usage);
}

}  // namespace mg
