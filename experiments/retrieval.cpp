#include "experiments/retrieval.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <filesystem>
#include <mutex>
#include <numeric>

#include "autograd/grad_mode.h"
#include "core/factories.h"
#include "data/corpus.h"
#include "experiments/tfidf.h"
#include "nn/init.h"
#include "ops/softmax.h"
#include "nn/lr_schedule.h"
#include "nn/optim.h"
#include "ops/losses.h"
#include "ops/ops.h"
#include "report/progress.h"

namespace mg {

namespace {

// splitmix64: a tiny generator whose sequence is fixed on every platform (the std
// distributions are not), so pools are reproducible anywhere.
class PoolRng {
 public:
  explicit PoolRng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, bound), unbiased (rejection of the short last block).
  uint64_t below(uint64_t bound) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t x;
    do x = next();
    while (x >= limit);
    return x % bound;
  }

 private:
  uint64_t s_;
};

// Runs body(i) for i in [0, n) on OpenMP threads, rethrowing the first exception.
template <class F>
void parallel_for(int64_t n, F&& body) {
  std::exception_ptr error;
  std::mutex m;
#pragma omp parallel for schedule(dynamic, 16)
  for (int64_t i = 0; i < n; ++i) {
    try {
      body(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(m);
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

std::vector<RetrievalPool> make_pools(int64_t n, int64_t c, uint64_t seed) {
  MG_CHECK(c >= 2, "make_pools: pool size ", c, " < 2 (a pool holds the query and c - 1 candidates)");
  MG_CHECK(n >= c - 1, "make_pools: pool size ", c, " needs at least ", c - 1, " documents, have ", n);
  PoolRng rng(seed * 0x2545f4914f6cdd1dULL + uint64_t(c));
  // A persistent permutation: a partial Fisher-Yates pass over ANY arrangement draws a uniform
  // subset, so it need not be reset between queries (O(c) per query, not O(n)).
  std::vector<int64_t> perm(static_cast<size_t>(n)), pos(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  std::iota(pos.begin(), pos.end(), 0);
  auto swap_at = [&](int64_t a, int64_t b) {
    std::swap(perm[size_t(a)], perm[size_t(b)]);
    pos[size_t(perm[size_t(a)])] = a;
    pos[size_t(perm[size_t(b)])] = b;
  };
  const int64_t k = c - 2;  // distractors
  std::vector<RetrievalPool> pools(static_cast<size_t>(n));
  for (int64_t q = 0; q < n; ++q) {
    swap_at(pos[size_t(q)], n - 1);  // exclude the true document: draw from perm[0, n-1)
    for (int64_t i = 0; i < k; ++i) swap_at(i, i + int64_t(rng.below(uint64_t(n - 1 - i))));
    RetrievalPool& p = pools[size_t(q)];
    p.query = q;
    p.target = int64_t(rng.below(uint64_t(c - 1)));
    p.candidates.assign(perm.begin(), perm.begin() + k);
    p.candidates.insert(p.candidates.begin() + p.target, q);
  }
  return pools;
}

int64_t true_rank(std::span<const double> scores, int64_t target) {
  MG_CHECK(target >= 0 && size_t(target) < scores.size(), "true_rank: target ", target, " outside ",
           scores.size(), " scores");
  const double t = scores[size_t(target)];
  int64_t rank = 1;
  for (size_t i = 0; i < scores.size(); ++i)
    if (int64_t(i) != target && (std::isnan(t) || !(scores[i] < t))) ++rank;
  return rank;
}

RetrievalScore score_pools(const std::vector<RetrievalPool>& pools, int64_t pool_size, const PoolScorer& scorer) {
  MG_CHECK(!pools.empty(), "score_pools: no pools");
  std::vector<int64_t> ranks(pools.size());
  parallel_for(int64_t(pools.size()), [&](int64_t i) {
    const RetrievalPool& p = pools[size_t(i)];
    std::vector<double> s(p.candidates.size());
    scorer(p.query, p.candidates, s);
    ranks[size_t(i)] = true_rank(s, p.target);
  });
  RetrievalScore r;
  r.pool_size = pool_size;
  r.queries = int64_t(pools.size());
  for (int64_t rank : ranks) {
    r.top1 += rank == 1;
    r.mrr += 1.0 / double(rank);
  }
  r.top1 /= double(pools.size());
  r.mrr /= double(pools.size());
  return r;
}

namespace {
// Row-normalised f64 copy of a [N, D] tensor.
std::shared_ptr<std::vector<double>> normalized_rows(const Tensor& x, const char* what) {
  MG_CHECK(x.dim() == 2, "cosine_scorer: ", what, " must be [N, D], got ", x.desc());
  Tensor c = x.detach().to(kCPU).to(DType::f64).contiguous();
  auto v = std::make_shared<std::vector<double>>(c.to_vector<double>());
  const int64_t n = x.size(0), d = x.size(1);
  for (int64_t i = 0; i < n; ++i) {
    double* row = v->data() + i * d;
    double ss = 0;
    for (int64_t j = 0; j < d; ++j) ss += row[j] * row[j];
    const double inv = 1.0 / std::max(std::sqrt(ss), 1e-12);
    for (int64_t j = 0; j < d; ++j) row[j] *= inv;
  }
  return v;
}
}  // namespace

PoolScorer cosine_scorer(const Tensor& queries, const Tensor& documents) {
  MG_CHECK(queries.dim() == 2 && documents.dim() == 2 && queries.size(1) == documents.size(1),
           "cosine_scorer: expected queries [Nq, D] and documents [Nd, D], got ", queries.desc(), " and ",
           documents.desc());
  auto q = normalized_rows(queries, "queries"), d = normalized_rows(documents, "documents");
  const int64_t nq = queries.size(0), nd = documents.size(0), dim = queries.size(1);
  return [q, d, nq, nd, dim](int64_t qi, std::span<const int64_t> cands, std::span<double> out) {
    MG_CHECK(qi >= 0 && qi < nq, "cosine_scorer: query ", qi, " out of range [0, ", nq, ")");
    const double* qr = q->data() + qi * dim;
    for (size_t k = 0; k < cands.size(); ++k) {
      MG_CHECK(cands[k] >= 0 && cands[k] < nd, "cosine_scorer: document ", cands[k], " out of range [0, ", nd, ")");
      const double* dr = d->data() + cands[k] * dim;
      double s = 0;
      for (int64_t j = 0; j < dim; ++j) s += qr[j] * dr[j];
      out[k] = s;
    }
  };
}

PoolScorer tfidf_scorer(const std::vector<std::string>& queries, const std::vector<std::string>& documents) {
  auto index = std::make_shared<TfidfIndex>(documents);
  auto qv = std::make_shared<std::vector<SparseVector>>();
  qv->reserve(queries.size());
  for (const std::string& q : queries) qv->push_back(index->vectorize(q));
  return [index, qv](int64_t qi, std::span<const int64_t> cands, std::span<double> out) {
    MG_CHECK(qi >= 0 && size_t(qi) < qv->size(), "tfidf_scorer: query ", qi, " out of range [0, ", qv->size(), ")");
    index->score((*qv)[size_t(qi)], cands, out);
  };
}

// ---------------------------------------------------------------------------------------------

EmbedPosition parse_embed_position(const std::string& s) {
  if (s == "last" || s == "-1") return EmbedPosition::last;
  if (s == "second-last" || s == "second_last" || s == "-2") return EmbedPosition::second_last;
  if (s == "mean") return EmbedPosition::mean;
  throw Error("unknown embedding position '" + s + "' (expected last, second-last (-2) or mean)");
}

const char* embed_position_name(EmbedPosition p) {
  switch (p) {
    case EmbedPosition::last: return "last";
    case EmbedPosition::second_last: return "second-last";
    case EmbedPosition::mean: return "mean";
  }
  return "?";
}

std::vector<std::vector<int32_t>> tokenize_texts(const BpeTokenizer& tok, const std::vector<std::string>& texts,
                                                 int64_t n_ctx) {
  MG_CHECK(n_ctx >= 1, "tokenize_texts: n_ctx ", n_ctx, " < 1");
  std::vector<std::vector<int32_t>> out(texts.size());
  parallel_for(int64_t(texts.size()), [&](int64_t i) {
    std::vector<int32_t> ids = tok.encode(texts[size_t(i)]);
    MG_CHECK(!ids.empty(), "tokenize_texts: text ", i, " gives no tokens");
    if (int64_t(ids.size()) > n_ctx) ids.resize(size_t(n_ctx));
    out[size_t(i)] = std::move(ids);
  });
  return out;
}

PaddedBatch pad_batch(const std::vector<std::vector<int32_t>>& seqs, std::span<const int64_t> rows, int32_t pad_id,
                      PadSide side, int64_t T) {
  MG_CHECK(!rows.empty(), "pad_batch: no rows");
  int64_t longest = 0;
  for (int64_t r : rows) {
    MG_CHECK(r >= 0 && size_t(r) < seqs.size(), "pad_batch: row ", r, " out of range [0, ", seqs.size(), ")");
    MG_CHECK(!seqs[size_t(r)].empty(), "pad_batch: sequence ", r, " is empty");
    longest = std::max(longest, int64_t(seqs[size_t(r)].size()));
  }
  if (T == 0) T = longest;
  MG_CHECK(T >= longest, "pad_batch: sequence of ", longest, " tokens does not fit T = ", T);
  const int64_t B = int64_t(rows.size());
  std::vector<int32_t> ids(size_t(B * T), pad_id);
  PaddedBatch b;
  b.side = side;
  for (int64_t i = 0; i < B; ++i) {
    const auto& s = seqs[size_t(rows[size_t(i)])];
    const int64_t len = int64_t(s.size());
    const int64_t start = side == PadSide::left ? T - len : 0;
    std::copy(s.begin(), s.end(), ids.begin() + i * T + start);
    b.lengths.push_back(len);
  }
  b.ids = from_vector(ids, {B, T});
  return b;
}

Tensor pool_hidden(const Tensor& hidden, const PaddedBatch& batch, EmbedPosition position) {
  MG_CHECK(hidden.dim() == 3, "pool_hidden: expected hidden states [B, T, D], got ", hidden.desc());
  const int64_t B = hidden.size(0), T = hidden.size(1), D = hidden.size(2);
  MG_CHECK(int64_t(batch.lengths.size()) == B, "pool_hidden: ", batch.lengths.size(), " lengths for ", B, " rows");
  for (int64_t len : batch.lengths) MG_CHECK(len >= 1 && len <= T, "pool_hidden: length ", len, " outside [1, ", T, "]");
  const bool left = batch.side == PadSide::left;
  if (position == EmbedPosition::mean) {
    std::vector<double> w(size_t(B * T), 0.0);
    for (int64_t b = 0; b < B; ++b) {
      const int64_t len = batch.lengths[size_t(b)], first = left ? T - len : 0;
      for (int64_t t = first; t < first + len; ++t) w[size_t(b * T + t)] = 1.0 / double(len);
    }
    Tensor wt = from_vector(w, {B, T, 1}, TensorOptions{hidden.dtype(), hidden.device(), false});
    return sum(mul(hidden, wt), {1});
  }
  std::vector<int32_t> idx(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const int64_t len = batch.lengths[size_t(b)];
    const int64_t last = left ? T - 1 : len - 1;
    const int64_t back = position == EmbedPosition::second_last && len >= 2 ? 1 : 0;
    idx[size_t(b)] = int32_t(b * T + last - back);
  }
  Tensor index = from_vector(idx, {B}, TensorOptions{DType::i32, hidden.device(), false});
  return index_select(hidden.reshape({B * T, D}), 0, index);
}

Tensor embed_batch(LanguageModel& model, const PaddedBatch& batch, EmbedPosition position) {
  Tensor ids = batch.ids;
  const Device dev = model.token_embedding_weight().device();
  if (!(ids.device() == dev)) ids = ids.to(dev);
  Tensor hidden = model.forward_embeddings(model.embed(ids), -1, false);
  return pool_hidden(hidden, batch, position);
}

Tensor embed_sequences(LanguageModel& model, const std::vector<std::vector<int32_t>>& seqs, int32_t pad_id,
                       const EmbedOptions& options, const std::string& progress_label) {
  MG_CHECK(options.batch_size >= 1, "embed_sequences: batch size ", options.batch_size, " < 1");
  const int64_t n = int64_t(seqs.size()), D = model.config().d_model;
  MG_CHECK(n > 0, "embed_sequences: no sequences");
  // Longest first, so batches hold texts of similar length (little padding) and a too-large
  // batch fails at once rather than at the end.
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return seqs[size_t(a)].size() > seqs[size_t(b)].size(); });
  std::vector<float> out(size_t(n * D));
  NoGradGuard no_grad;
  const int64_t T = options.pad_to_ctx ? model.config().n_ctx : 0;
  const int64_t nb = (n + options.batch_size - 1) / options.batch_size;
  std::unique_ptr<report::ProgressBar> bar;
  if (!progress_label.empty()) bar = std::make_unique<report::ProgressBar>(nb, progress_label, 20);
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t lo = b * options.batch_size, hi = std::min(n, lo + options.batch_size);
    std::span<const int64_t> rows(order.data() + lo, size_t(hi - lo));
    PaddedBatch batch = pad_batch(seqs, rows, pad_id, options.pad_side, T);
    Tensor e = embed_batch(model, batch, options.position).to(kCPU).to(DType::f32).contiguous();
    const float* p = e.data_ptr<float>();
    for (int64_t i = 0; i < hi - lo; ++i) std::copy(p + i * D, p + (i + 1) * D, out.begin() + rows[size_t(i)] * D);
    if (bar) bar->update(b + 1, "");
  }
  if (bar) bar->finish("");
  return from_vector(out, {n, D});
}

// ---------------------------------------------------------------------------------------------

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
                            const InfoNceOptions& o, const std::function<void(int64_t, double)>& on_log) {
  const int64_t n = int64_t(queries.size());
  MG_CHECK(n > 0 && int64_t(documents.size()) == n, "train_info_nce: ", n, " queries and ", documents.size(),
           " documents");
  const bool in_batch = o.in_batch > 0;
  const int64_t per_step = in_batch ? o.in_batch : o.groups_per_step;
  MG_CHECK(per_step >= 1, "train_info_nce: groups_per_step must be >= 1");
  MG_CHECK(in_batch ? o.in_batch >= 2 && o.in_batch <= n : o.group_size >= 3 && o.group_size - 1 <= n,
           "train_info_nce: ", n, " training pairs are too few for ",
           in_batch ? "in-batch size " + std::to_string(o.in_batch) : "group size " + std::to_string(o.group_size));
  const int64_t steps = o.steps > 0 ? o.steps : (n + per_step - 1) / per_step;

  AdamWOptions ao;
  ao.lr = o.lr;
  ao.weight_decay = o.weight_decay;
  AdamW opt(model.parameters(), ao);
  LRSchedule sched{o.lr, std::min(o.warmup_steps, steps), steps, DecayKind::linear, 0};

  InfoNceStats st;
  const auto t0 = std::chrono::steady_clock::now();
  // Query order and groups: a fresh permutation and fresh pools every epoch (PAPER E.2/E.3
  // resample the negatives per epoch).
  std::vector<int64_t> order;
  std::vector<RetrievalPool> pools;
  int64_t cursor = n, epoch = 0;
  auto next_query = [&]() {
    if (cursor == n) {
      PoolRng rng(o.seed * 0x9e3779b97f4a7c15ULL + uint64_t(epoch) + 1);
      order.resize(size_t(n));
      std::iota(order.begin(), order.end(), 0);
      for (int64_t i = n - 1; i > 0; --i) std::swap(order[size_t(i)], order[rng.below(uint64_t(i + 1))]);
      if (!in_batch) pools = make_pools(n, o.group_size, o.seed + 1000003 * uint64_t(epoch + 1));
      cursor = 0;
      ++epoch;
    }
    return order[size_t(cursor++)];
  };
  double running = 0;
  int64_t in_window = 0;
  for (int64_t step = 0; step < steps; ++step) {
    opt.set_lr(sched.at(step));
    std::vector<int64_t> qidx;
    std::vector<std::vector<int64_t>> cands;
    Tensor loss;
    if (in_batch) {
      for (int64_t i = 0; i < per_step; ++i) qidx.push_back(next_query());
      const int64_t T = o.embed.pad_to_ctx ? model.config().n_ctx : 0;
      Tensor q = embed_batch(model, pad_batch(queries, qidx, pad_id, o.embed.pad_side, T), o.embed.position);
      Tensor d = embed_batch(model, pad_batch(documents, qidx, pad_id, o.embed.pad_side, T), o.embed.position);
      loss = info_nce_loss(q, d, o.temperature);
    } else {
      for (int64_t i = 0; i < per_step; ++i) {
        const int64_t qi = next_query();
        const RetrievalPool& p = pools[size_t(qi)];
        std::vector<int64_t> c = p.candidates;  // positive first: the loss's convention
        std::swap(c[0], c[size_t(p.target)]);
        qidx.push_back(qi);
        cands.push_back(std::move(c));
      }
      loss = info_nce_group_loss(model, queries, documents, pad_id, qidx, cands, o);
    }
    opt.zero_grad();
    loss.backward();
    if (o.grad_clip > 0) clip_grad_norm(opt.params(), o.grad_clip);
    opt.step();
    const double l = loss.item();
    st.losses.push_back(l);
    running += l;
    ++in_window;
    if (on_log && o.log_every > 0 && ((step + 1) % o.log_every == 0 || step + 1 == steps)) {
      on_log(step + 1, running / double(in_window));
      running = 0;
      in_window = 0;
    }
  }
  st.steps = steps;
  const size_t w = size_t(std::max<int64_t>(1, std::min(o.log_every, steps)));
  st.first_loss = std::accumulate(st.losses.begin(), st.losses.begin() + w, 0.0) / double(w);
  st.last_loss = std::accumulate(st.losses.end() - w, st.losses.end(), 0.0) / double(w);
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return st;
}

// ---------------------------------------------------------------------------------------------

BidirectionalMixerBlock::BidirectionalMixerBlock(int64_t dim, int64_t samples, Generator& gen, TensorOptions opts)
    : patch_layernorm(dim, 1e-5, opts), seq_layernorm(dim, 1e-5, opts),
      patch_ff(dim, 4 * dim, gen, Init::torch_default(), opts) {
  register_module("patch_layernorm", patch_layernorm);
  register_module("seq_layernorm", seq_layernorm);
  register_module("patch_ff", patch_ff);
  const double bound = 1.0 / std::sqrt(double(samples));  // Conv1d: fan_in = in_channels * kernel
  conv_weight = register_parameter("conv_weight", init_uniform({samples, samples, 1}, bound, gen, opts));
  conv_bias = register_parameter("conv_bias", init_uniform({samples}, bound, gen, opts));
}

Tensor BidirectionalMixerBlock::forward(const Tensor& x) const {
  MG_CHECK(x.dim() == 3 && x.size(1) == conv_weight.size(0), "BidirectionalMixerBlock: expected [B, ",
           conv_weight.size(0), ", d], got ", x.desc());
  // [c, c] x [B, c, d] broadcasts over B: every sample mixes with every other (no mask).
  Tensor mixed = add(matmul(conv_weight.squeeze(2), seq_layernorm.forward(x)), conv_bias.unsqueeze(1));
  Tensor y = add(x, mixed);
  return add(y, patch_ff.forward(patch_layernorm.forward(y)));
}

RetrievalMixer::RetrievalMixer(int64_t dim, int64_t depth, int64_t samples, Generator& gen, TensorOptions opts)
    : head(dim, 1, true, gen, Init::torch_default(), opts), samples_(samples) {
  MG_CHECK(dim >= 1 && depth >= 1 && samples >= 2, "RetrievalMixer: need dim, depth >= 1 and samples >= 2, got ",
           dim, ", ", depth, ", ", samples);
  for (int64_t i = 0; i < depth; ++i)
    blocks.push_back(std::make_unique<BidirectionalMixerBlock>(dim, samples, gen, opts));
  register_module("mixerblocks", blocks);
  register_module("retrieval_head", head);
}

Tensor RetrievalMixer::forward(const Tensor& x) const {
  Tensor h = x;
  for (const auto& b : blocks) h = b->forward(h);
  Tensor s = head.forward(h).squeeze(2);  // [B, c]
  return s.narrow(1, 1, samples_ - 1);   // the query's own row is not a candidate
}

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
  Tensor q = index_select(queries, 0, from_vector(qi, {B})).reshape({B, 1, D});
  Tensor d = index_select(documents, 0, from_vector(di, {B * C})).reshape({B, C, D});
  return cat({q, d}, 1);
}

Tensor pool_targets(const std::vector<RetrievalPool>& pools, std::span<const int64_t> which) {
  std::vector<int32_t> t;
  for (int64_t w : which) t.push_back(int32_t(pools[size_t(w)].target));
  return from_vector(t, {int64_t(t.size())});
}
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
    ce += cross_entropy(s, pool_targets(pools, which), -100, Reduction::sum).item();
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
                                             const Tensor& test_documents, const FrozenRetrievalOptions& o,
                                             uint64_t eval_seed,
                                             const std::function<void(int64_t, double)>& on_log) {
  const int64_t n = train_queries.size(0), c = o.pool_size;
  MG_CHECK(c == model.samples(), "train_frozen_retrieval: pool size ", c, " but the model mixes ", model.samples(),
           " samples");
  MG_CHECK(train_documents.size(0) == n && n >= c - 1, "train_frozen_retrieval: ", n, " train queries and ",
           train_documents.size(0), " documents (need >= ", c - 1, ")");
  const int64_t per_epoch = (n + o.batch_size - 1) / o.batch_size;
  const int64_t steps = o.steps > 0 ? o.steps : per_epoch * o.epochs;
  AdamWOptions ao;
  ao.lr = o.lr;
  ao.weight_decay = 0;
  AdamW opt(model.parameters(), ao);
  LRSchedule sched{o.lr, std::min(o.warmup_steps, steps), steps, DecayKind::linear, 0};
  FrozenRetrievalResult res;
  std::vector<RetrievalPool> pools;
  std::vector<int64_t> order(static_cast<size_t>(n));
  int64_t cursor = n, epoch = 0;
  double running = 0;
  int64_t window = 0;
  for (int64_t step = 0; step < steps; ++step) {
    if (cursor >= n) {  // a new epoch: fresh negatives and order (PAPER E.2 resamples per epoch)
      pools = make_pools(n, c, o.seed * 7919 + uint64_t(epoch) + 1);
      PoolRng rng(o.seed ^ (0xabcdef12345ULL + uint64_t(epoch)));
      std::iota(order.begin(), order.end(), 0);
      for (int64_t i = n - 1; i > 0; --i) std::swap(order[size_t(i)], order[rng.below(uint64_t(i + 1))]);
      cursor = 0;
      ++epoch;
    }
    std::span<const int64_t> which(order.data() + cursor, size_t(std::min(o.batch_size, n - cursor)));
    cursor += int64_t(which.size());
    opt.set_lr(sched.at(step));
    Tensor loss = cross_entropy(model.forward(pool_inputs(train_queries, train_documents, pools, which)),
                                pool_targets(pools, which));
    opt.zero_grad();
    loss.backward();
    if (o.grad_clip > 0) clip_grad_norm(opt.params(), o.grad_clip);
    opt.step();
    const double l = loss.item();
    res.losses.push_back(l);
    running += l;
    ++window;
    if (o.log_every > 0 && ((step + 1) % o.log_every == 0 || step + 1 == steps)) {
      res.train_loss = running / double(window);
      if (on_log) on_log(step + 1, res.train_loss);
      running = 0;
      window = 0;
    }
  }
  auto [ce, score] = evaluate_frozen_retrieval(model, test_queries, test_documents,
                                               make_pools(test_queries.size(0), c, eval_seed), o.batch_size);
  res.test_loss = ce;
  res.test = score;
  return res;
}

// ---------------------------------------------------------------------------------------------

std::vector<RetrievalPair> load_pairs(const std::string& spec) {
  namespace fs = std::filesystem;
  if (spec == "reuters") {
    const std::string dir = default_corpus_root() + "/reuters-21578";
    MG_CHECK(fs::exists(dir), "pairs 'reuters': ", dir, " does not exist (run scripts/install_corpus.sh reuters)");
    return read_reuters_pairs(dir);
  }
  if (spec == "manpages") {
    const std::string dir = default_corpus_root() + "/manpages";
    MG_CHECK(fs::exists(dir), "pairs 'manpages': ", dir, " does not exist (run scripts/install_corpus.sh manpages)");
    return read_manpage_pairs(dir);
  }
  MG_CHECK(fs::is_regular_file(spec), "pairs '", spec, "': expected reuters, manpages or a .jsonl file");
  return read_jsonl_pairs(spec);
}

}  // namespace mg
