#include "experiments/infonce.h"

#include <algorithm>
#include <numeric>

#include "experiments/retrieval_pools.h"
#include "train/epoch_source.h"
#include "ops/losses.h"
#include "ops/ops.h"
#include "report/csv.h"

namespace mg {

namespace {

struct InfoNceBatch {
  std::vector<int64_t> queries;                  // query indices
  std::vector<std::vector<int64_t>> candidates;  // per query, its document first (grouped mode only)
};

// A fresh query permutation and fresh candidate groups every epoch (docs/paper.md E.2/E.3
// resample the negatives per epoch), both functions of (seed, epoch).
class InfoNceSource : public EpochSource<InfoNceBatch> {
 public:
  InfoNceSource(int64_t n, const InfoNceOptions& o) : EpochSource(n), o_(o) {}

  InfoNceBatch next() override {
    InfoNceBatch b;
    const int64_t per_step = o_.in_batch > 0 ? o_.in_batch : o_.groups_per_step;
    for (int64_t i = 0; i < per_step; ++i) {
      ensure_epoch();
      const int64_t qi = order_[size_t(cursor_++)];
      b.queries.push_back(qi);
      if (o_.in_batch > 0) continue;
      const RetrievalPool& p = pools_[size_t(qi)];
      std::vector<int64_t> c = p.candidates;  // positive first: the loss's convention
      std::swap(c[0], c[size_t(p.target)]);
      b.candidates.push_back(std::move(c));
    }
    return b;
  }

 private:
  void draw_epoch(int64_t epoch) override {
    PoolRng rng(o_.train.seed * 0x9e3779b97f4a7c15ULL + uint64_t(epoch) + 1);
    order_ = shuffled_indices(n_, rng);
    if (o_.in_batch <= 0) pools_ = make_pools(n_, o_.group_size, o_.train.seed + 1000003 * uint64_t(epoch + 1));
  }

  const InfoNceOptions& o_;
  std::vector<int64_t> order_;
  std::vector<RetrievalPool> pools_;
};

double token_count(const std::vector<std::vector<int32_t>>& seqs, std::span<const int64_t> rows) {
  double n = 0;
  for (int64_t r : rows) n += double(seqs[size_t(r)].size());
  return n;
}

}  // namespace

Tensor info_nce_group_loss(LanguageModel& model, const std::vector<std::vector<int32_t>>& queries,
                           const std::vector<std::vector<int32_t>>& documents, int32_t pad_id,
                           std::span<const int64_t> query_idx, const std::vector<std::vector<int64_t>>& candidates,
                           const InfoNceOptions& o) {
  const int64_t G = int64_t(query_idx.size());
  MG_CHECK(G > 0 && int64_t(candidates.size()) == G, "info_nce_group_loss: ", G, " queries but ",
           candidates.size(), " candidate lists");
  const int64_t C = int64_t(candidates[0].size());
  std::vector<int64_t> docs;
  for (const auto& c : candidates) {
    MG_CHECK(int64_t(c.size()) == C && C > 0, "info_nce_group_loss: candidate lists must share one non-zero size");
    docs.insert(docs.end(), c.begin(), c.end());
  }
  const int64_t T = o.embed.pad_to_ctx ? model.config().n_ctx : 0;
  Tensor q = embed_batch(model, pad_batch(queries, query_idx, pad_id, o.embed.pad_side, T), o.embed.position);
  Tensor d = embed_batch(model, pad_batch(documents, docs, pad_id, o.embed.pad_side, T), o.embed.position);
  const int64_t D = q.size(1);
  return info_nce_loss_grouped(q, d.reshape({G, C, D}), o.temperature);
}

InfoNceStats train_info_nce(LanguageModel& model, const std::vector<std::vector<int32_t>>& queries,
                            const std::vector<std::vector<int32_t>>& documents, int32_t pad_id,
                            const InfoNceOptions& options, const std::function<void(int64_t, double)>& on_log,
                            const RunControl& control, const std::map<std::string, std::string>& metadata) {
  const int64_t n = int64_t(queries.size());
  MG_CHECK(n > 0 && int64_t(documents.size()) == n, "train_info_nce: ", n, " queries and ", documents.size(),
           " documents");
  const bool in_batch = options.in_batch > 0;
  const int64_t per_step = in_batch ? options.in_batch : options.groups_per_step;
  MG_CHECK(per_step >= 1, "train_info_nce: groups_per_step must be >= 1");
  MG_CHECK(in_batch ? options.in_batch >= 2 && options.in_batch <= n
                    : options.group_size >= 3 && options.group_size - 1 <= n,
           "train_info_nce: ", n, " training pairs are too few for ",
           in_batch ? "in-batch size " + std::to_string(options.in_batch)
                    : "group size " + std::to_string(options.group_size));
  MG_CHECK(options.train.steps >= 0, "train_info_nce: steps must be >= 0 (0 = one epoch), got ", options.train.steps);
  InfoNceOptions o = options;
  if (o.train.steps == 0) o.train.steps = (n + per_step - 1) / per_step;
  o.train.warmup_steps = std::min(o.train.warmup_steps, o.train.steps);

  RunControl ctl = control;
  if (ctl.label.empty()) ctl.label = "infonce";
  Trainer trainer(model, o.train, ctl);
  InfoNceSource source(n, o);
  const int64_t T = o.embed.pad_to_ctx ? model.config().n_ctx : 0;
  auto loss = [&](const InfoNceBatch& b) {
    StepLoss s;
    s.tokens = token_count(queries, b.queries);
    if (in_batch) {
      Tensor q = embed_batch(model, pad_batch(queries, b.queries, pad_id, o.embed.pad_side, T), o.embed.position);
      Tensor d = embed_batch(model, pad_batch(documents, b.queries, pad_id, o.embed.pad_side, T), o.embed.position);
      s.loss = info_nce_loss(q, d, o.temperature);
      s.tokens += token_count(documents, b.queries);
    } else {
      s.loss = info_nce_group_loss(model, queries, documents, pad_id, b.queries, b.candidates, o);
      for (const auto& c : b.candidates) s.tokens += token_count(documents, c);
    }
    return s;
  };
  TrainHooks hooks;
  hooks.on_log = on_log;
  hooks.metadata = metadata;
  hooks.plot_title = "InfoNCE training loss (tau " + report::csv_num(o.temperature) + ")";
  TrainResult r = trainer.fit<InfoNceBatch>(source, loss, hooks);

  InfoNceStats st;
  st.steps = r.steps_done;
  st.interrupted = r.interrupted;
  st.losses = r.losses;
  st.seconds = r.seconds;
  if (!st.losses.empty()) {
    const size_t w = std::min(st.losses.size(), size_t(std::max<int64_t>(1, o.train.log_every)));
    st.first_loss = std::accumulate(st.losses.begin(), st.losses.begin() + long(w), 0.0) / double(w);
    st.last_loss = std::accumulate(st.losses.end() - long(w), st.losses.end(), 0.0) / double(w);
  }
  return st;
}

}  // namespace mg
