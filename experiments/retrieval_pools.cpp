#include "experiments/retrieval_pools.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <mutex>
#include <numeric>

#include "core/parallel_for.h"
#include "experiments/bm25.h"
#include "experiments/tfidf.h"

namespace mg {


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

PoolScorer bm25_scorer(const std::vector<std::string>& queries, const std::vector<std::string>& documents) {
  auto index = std::make_shared<Bm25Index>(documents);
  auto qt = std::make_shared<std::vector<std::vector<int32_t>>>();
  qt->reserve(queries.size());
  for (const std::string& q : queries) qt->push_back(index->query_terms(q));
  return [index, qt](int64_t qi, std::span<const int64_t> cands, std::span<double> out) {
    MG_CHECK(qi >= 0 && size_t(qi) < qt->size(), "bm25_scorer: query ", qi, " out of range [0, ", qt->size(), ")");
    index->score((*qt)[size_t(qi)], cands, out);
  };
}


std::vector<int64_t> shuffled_indices(int64_t n, PoolRng& rng) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[size_t(i)], order[rng.below(uint64_t(i + 1))]);
  return order;
}

}  // namespace mg
