#include "experiments/retrieval_comparison.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "core/error.h"
#include "experiments/run_config.h"
#include "nn/checkpoint.h"
#include "report/csv.h"
#include "report/plot.h"

namespace mg {

namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Loaded {
  RunConfig rc;
  std::unique_ptr<LanguageModel> lm;
  std::unique_ptr<BpeTokenizer> tok;
};

Loaded load_pretrained(const PretrainedModel& m) {
  MG_CHECK(fs::exists(m.checkpoint), "retrieval comparison: checkpoint '", m.checkpoint, "' does not exist");
  auto meta = read_checkpoint_metadata(m.checkpoint);
  auto it = meta.find("config");
  MG_CHECK(it != meta.end(), "retrieval comparison: checkpoint '", m.checkpoint, "' carries no config");
  Loaded l;
  l.rc = parse_run_config(it->second, m.checkpoint + " [config]");
  require_language_model(l.rc, m.checkpoint, "retrieval comparison");
  Generator gen(0);
  l.lm = make_model(l.rc.model, gen);
  load_checkpoint(m.checkpoint, *l.lm, nullptr);
  const std::string tok = (fs::path(m.checkpoint).parent_path() / "tokenizer.bpe").string();
  MG_CHECK(fs::exists(tok), "retrieval comparison: no tokenizer.bpe beside '", m.checkpoint, "'");
  l.tok = std::make_unique<BpeTokenizer>(BpeTokenizer::load(tok));
  return l;
}

void split_texts(const std::vector<RetrievalPair>& pairs, std::vector<std::string>& q, std::vector<std::string>& d) {
  for (const auto& p : pairs) {
    q.push_back(p.query);
    d.push_back(p.document);
  }
}

}  // namespace

std::vector<RetrievalComparisonRow> run_retrieval_comparison(const std::vector<PretrainedModel>& models,
                                                             const RetrievalComparisonOptions& o,
                                                             const std::string& out_dir) {
  const PairSplit split = split_pairs(load_pairs(o.pairs), o.test_fraction, 0);
  MG_CHECK(!split.train.empty() && !split.test.empty(), "retrieval comparison: ", o.pairs, " gives ",
           split.train.size(), " train and ", split.test.size(), " test pairs; both must be non-empty");
  std::vector<std::string> tq, td, trq, trd;
  split_texts(split.test, tq, td);
  split_texts(split.train, trq, trd);
  const int64_t n = int64_t(tq.size());

  std::vector<int64_t> sizes;
  std::vector<std::vector<RetrievalPool>> pools;
  for (int64_t c : o.pools) {
    if (c - 1 > n) continue;
    sizes.push_back(c);
    pools.push_back(make_pools(n, c, o.pool_seed));
  }
  MG_CHECK(!sizes.empty(), "retrieval comparison: every pool size exceeds the ", n, " test documents");
  auto score_all = [&](const PoolScorer& s) {
    std::vector<RetrievalScore> out;
    for (size_t i = 0; i < sizes.size(); ++i) out.push_back(score_pools(pools[i], sizes[i], s));
    return out;
  };

  std::vector<RetrievalComparisonRow> rows;
  auto t0 = std::chrono::steady_clock::now();
  // The classical baselines on the text the models see: each text cut to its first n_ctx tokens
  // of the first model's tokenizer and decoded back (tokenize_texts, as the models' input); then
  // on the full text.
  {
    MG_CHECK(!models.empty(), "retrieval comparison: no models");
    Loaded m0 = load_pretrained(models.front());
    const int64_t n_ctx = m0.rc.model.n_ctx;
    auto cut = [&](const std::vector<std::string>& texts) {
      std::vector<std::string> out;
      for (const auto& ids : tokenize_texts(*m0.tok, texts, n_ctx)) out.push_back(m0.tok->decode(ids));
      return out;
    };
    const std::vector<std::string> tq_cut = cut(tq), td_cut = cut(td);
    rows.push_back({"", "tfidf", score_all(tfidf_scorer(tq_cut, td_cut)), 0, 0, seconds_since(t0)});
    t0 = std::chrono::steady_clock::now();
    rows.push_back({"", "bm25", score_all(bm25_scorer(tq_cut, td_cut)), 0, 0, seconds_since(t0)});
  }
  t0 = std::chrono::steady_clock::now();
  rows.push_back({"", "tfidf (full text)", score_all(tfidf_scorer(tq, td)), 0, 0, seconds_since(t0)});
  t0 = std::chrono::steady_clock::now();
  rows.push_back({"", "bm25 (full text)", score_all(bm25_scorer(tq, td)), 0, 0, seconds_since(t0)});

  EmbedOptions eo;
  eo.position = o.position;
  for (const PretrainedModel& pm : models) {
    Loaded m = load_pretrained(pm);
    const int64_t n_ctx = m.rc.model.n_ctx;
    const int32_t pad = m.tok->pad_id();
    const auto test_q = tokenize_texts(*m.tok, tq, n_ctx), test_d = tokenize_texts(*m.tok, td, n_ctx);
    const auto train_q = tokenize_texts(*m.tok, trq, n_ctx), train_d = tokenize_texts(*m.tok, trd, n_ctx);
    const std::string label = pm.name;

    // (a) The pretrained model's embeddings as they are.
    t0 = std::chrono::steady_clock::now();
    Tensor qe = embed_sequences(*m.lm, test_q, pad, eo, label + ": embed test queries");
    Tensor de = embed_sequences(*m.lm, test_d, pad, eo, label + ": embed test documents");
    rows.push_back({pm.name, "embeddings", score_all(cosine_scorer(qe, de)), 0, 0, seconds_since(t0)});

    // (b) Frozen embeddings + a bidirectional retrieval mixer trained on the train pairs.
    const FrozenRetrievalOptions& fo = o.frozen;
    if (fo.pool_size - 1 <= n && fo.pool_size - 1 <= int64_t(train_q.size())) {
      t0 = std::chrono::steady_clock::now();
      Tensor trqe = embed_sequences(*m.lm, train_q, pad, eo, label + ": embed train queries");
      Tensor trde = embed_sequences(*m.lm, train_d, pad, eo, label + ": embed train documents");
      Generator gen(fo.train.seed + 17);
      RetrievalMixer rm(trqe.size(1), fo.depth, fo.pool_size, gen);
      FrozenRetrievalResult r = train_frozen_retrieval(rm, trqe, trde, qe, de, fo, o.pool_seed);
      RetrievalComparisonRow row{pm.name, "frozen", {}, r.losses.empty() ? 0 : r.losses.front(), r.train_loss,
                                 seconds_since(t0)};
      for (int64_t c : sizes) {
        if (c == fo.pool_size) row.scores.push_back(r.test);
        else row.scores.push_back({c, 0, NAN, NAN});
      }
      rows.push_back(row);
    }

    // (c) InfoNCE fine-tuning of the whole model, then its embeddings.
    t0 = std::chrono::steady_clock::now();
    InfoNceOptions io = o.infonce;
    io.embed = eo;
    io.train.log_every = std::max<int64_t>(1, io.train.steps / 10);
    InfoNceStats st = train_info_nce(*m.lm, train_q, train_d, pad, io, [&](int64_t step, double loss) {
      std::fprintf(stderr, "%s InfoNCE step %lld loss %.4f\n", label.c_str(), (long long)step, loss);
    });
    qe = embed_sequences(*m.lm, test_q, pad, eo, label + ": embed test queries");
    de = embed_sequences(*m.lm, test_d, pad, eo, label + ": embed test documents");
    rows.push_back({pm.name, "infonce", score_all(cosine_scorer(qe, de)), st.first_loss, st.last_loss,
                    seconds_since(t0)});
  }

  fs::create_directories(out_dir);
  {
    report::CsvWriter w(out_dir + "/retrieval.csv", {"model", "method", "pairs", "pool_size", "queries", "top1", "mrr",
                                                     "train_loss_start", "train_loss_end", "seconds"});
    for (const auto& r : rows)
      for (const auto& s : r.scores) {
        if (std::isnan(s.top1)) continue;
        w.row({r.model, r.method, o.pairs, std::to_string(s.pool_size), std::to_string(s.queries),
               report::csv_num(s.top1), report::csv_num(s.mrr), report::csv_num(r.train_loss_start),
               report::csv_num(r.train_loss_end), report::csv_num(r.seconds)});
      }
  }
  report::BarPlot bp;
  bp.title = "Top-1 retrieval, " + o.pairs + " (" + std::to_string(n) + " test queries)";
  bp.ylabel = "top-1 accuracy";
  for (int64_t c : sizes) bp.categories.push_back("c = " + std::to_string(c));
  for (const auto& r : rows) {
    bp.series_names.push_back(r.model.empty() ? r.method : r.model + " " + r.method);
    std::vector<double> v;
    for (const auto& s : r.scores) v.push_back(s.top1);
    bp.values.push_back(v);
  }
  report::save_bar_plot(out_dir + "/retrieval_top1.png", bp);
  return rows;
}

}  // namespace mg
