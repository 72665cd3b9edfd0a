#include "experiments/frozen_retrieval.h"

#include <algorithm>
#include <numeric>
#include <span>

#include "autograd/grad_mode.h"
#include "core/factories.h"
#include "ops/losses.h"
#include "ops/ops.h"
#include "train/epoch_source.h"

namespace mg {

namespace {
// Embedding rows for each pool: [B, c, d], query first.
Tensor pool_inputs(const Tensor& queries, const Tensor& documents, const std::vector<RetrievalPool>& pools,
                   std::span<const int64_t> which) {
  std::vector<int32_t> qi, di;
  for (int64_t w : which) {
    const RetrievalPool& p = pools[size_t(w)];
    qi.push_back(int32_t(p.query));
    for (int64_t c : p.candidates) di.push_back(int32_t(c));
  }
  const int64_t B = int64_t(which.size()), C = int64_t(pools[size_t(which[0])].candidates.size()),
                D = queries.size(1);
  Tensor q = index_select(queries, 0, from_vector(qi, {B}).to(queries.device())).reshape({B, 1, D});
  Tensor d = index_select(documents, 0, from_vector(di, {B * C}).to(documents.device())).reshape({B, C, D});
  return cat({q, d}, 1);
}

Tensor pool_targets(const std::vector<RetrievalPool>& pools, std::span<const int64_t> which) {
  std::vector<int32_t> t;
  for (int64_t w : which) t.push_back(int32_t(pools[size_t(w)].target));
  return from_vector(t, {int64_t(t.size())});
}
}  // namespace

namespace {

// Pools and the query order are resampled every epoch from (seed, epoch); a batch is the next
// batch_size queries of the order (the epoch's last batch may be smaller).
class FrozenPoolSource : public EpochSource<std::vector<int64_t>> {
 public:
  FrozenPoolSource(int64_t n, const FrozenRetrievalOptions& o) : EpochSource(n), o_(o) {}
  std::vector<int64_t> next() override {
    ensure_epoch();
    const int64_t take = std::min(o_.train.batch_size, n_ - cursor_);
    std::vector<int64_t> which(order_.begin() + cursor_, order_.begin() + cursor_ + take);
    cursor_ += take;
    return which;
  }
  const std::vector<RetrievalPool>& pools() const { return pools_; }

 private:
  void draw_epoch(int64_t epoch) override {
    pools_ = make_pools(n_, o_.pool_size, o_.train.seed * 7919 + uint64_t(epoch) + 1);
    PoolRng rng(o_.train.seed ^ (0xabcdef12345ULL + uint64_t(epoch)));
    order_ = shuffled_indices(n_, rng);
  }
  const FrozenRetrievalOptions& o_;
  std::vector<int64_t> order_;
  std::vector<RetrievalPool> pools_;
};

}  // namespace

std::pair<double, RetrievalScore> evaluate_frozen_retrieval(RetrievalMixer& model, const Tensor& queries,
                                                            const Tensor& documents,
                                                            const std::vector<RetrievalPool>& pools,
                                                            int64_t batch_size) {
  MG_CHECK(!pools.empty() && batch_size >= 1, "evaluate_frozen_retrieval: no pools or batch size < 1");
  NoGradGuard no_grad;
  const int64_t n = int64_t(pools.size()), c = model.samples();
  std::vector<int64_t> all(static_cast<size_t>(n));
  std::iota(all.begin(), all.end(), 0);
  double ce = 0;
  RetrievalScore r;
  r.pool_size = c;
  r.queries = n;
  for (int64_t lo = 0; lo < n; lo += batch_size) {
    std::span<const int64_t> which(all.data() + lo, size_t(std::min(batch_size, n - lo)));
    Tensor x = pool_inputs(queries, documents, pools, which);
    Tensor s = model.forward(x);
    ce += cross_entropy(s, pool_targets(pools, which).to(s.device()), -100, Reduction::sum).item();
    Tensor s64 = s.to(DType::f64).contiguous();
    const double* p = s64.data_ptr<double>();
    for (size_t i = 0; i < which.size(); ++i) {
      const int64_t rank = true_rank(std::span<const double>(p + i * size_t(c - 1), size_t(c - 1)),
                                     pools[size_t(which[i])].target);
      r.top1 += rank == 1;
      r.mrr += 1.0 / double(rank);
    }
  }
  r.top1 /= double(n);
  r.mrr /= double(n);
  return {ce / double(n), r};
}

FrozenRetrievalResult train_frozen_retrieval(RetrievalMixer& model, const Tensor& train_queries,
                                             const Tensor& train_documents, const Tensor& test_queries,
                                             const Tensor& test_documents, const FrozenRetrievalOptions& options,
                                             uint64_t eval_seed, const std::function<void(int64_t, double)>& on_log,
                                             const RunControl& control) {
  const int64_t n = train_queries.size(0), c = options.pool_size;
  MG_CHECK(c == model.samples(), "train_frozen_retrieval: pool size ", c, " but the model mixes ", model.samples(),
           " samples");
  MG_CHECK(train_documents.size(0) == n && n >= c - 1, "train_frozen_retrieval: ", n, " train queries and ",
           train_documents.size(0), " documents (need >= ", c - 1, ")");
  MG_CHECK(options.train.batch_size >= 1 && options.epochs >= 1 && options.train.steps >= 0,
           "train_frozen_retrieval: need batch_size >= 1, epochs >= 1 and steps >= 0");
  FrozenRetrievalOptions o = options;
  const int64_t per_epoch = (n + o.train.batch_size - 1) / o.train.batch_size;
  if (o.train.steps == 0) o.train.steps = per_epoch * o.epochs;
  o.train.warmup_steps = std::min(o.train.warmup_steps, o.train.steps);

  RunControl ctl = control;
  if (ctl.label.empty()) ctl.label = "frozen c=" + std::to_string(c);
  Trainer trainer(model, o.train, ctl);
  FrozenPoolSource source(n, o);
  const Device dev = trainer.device();
  const Tensor tq = train_queries.to(dev), td = train_documents.to(dev);
  auto loss = [&](const std::vector<int64_t>& which) {
    Tensor targets = pool_targets(source.pools(), which).to(dev);
    return StepLoss{cross_entropy(model.forward(pool_inputs(tq, td, source.pools(), which)), targets),
                    double(which.size())};
  };
  TrainHooks hooks;
  hooks.on_log = on_log;
  hooks.plot_title = "frozen-embedding retrieval, c = " + std::to_string(c);
  TrainResult tr = trainer.fit<std::vector<int64_t>>(source, loss, hooks);

  FrozenRetrievalResult res;
  res.losses = tr.losses;
  res.train_loss = tr.last_train_loss;
  res.interrupted = tr.interrupted;
  auto [ce, score] = evaluate_frozen_retrieval(model, test_queries.to(dev), test_documents.to(dev),
                                               make_pools(test_queries.size(0), c, eval_seed),
                                               o.train.batch_size);
  res.test_loss = ce;
  res.test = score;
  return res;
}

}  // namespace mg
