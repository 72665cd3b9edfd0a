#pragma once
// Retrieval pools and their scoring (docs/paper.md E.4): pools of candidate documents for each
// query, top-1 accuracy and MRR with any scorer, and the cosine and TF-IDF scorers.
//
// Pool convention (docs/paper.md E.4): a pool of size c holds the query's c - 1 candidate documents:
// its true document and c - 2 distractors (c counts the query, as the paper's "1 query vs 31
// candidates" at c = 32). Every method is scored on the pools make_pools returns for the same
// (number of documents, c, seed), so all are compared on identical pools.
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/hash.h"
#include "core/tensor.h"

namespace mg {

// splitmix64: a tiny generator whose sequence is fixed on every platform (the std
// distributions are not), so pools and retrieval training orders are reproducible anywhere.
class PoolRng {
 public:
  explicit PoolRng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    const uint64_t z = splitmix64(s_);
    s_ += 0x9e3779b97f4a7c15ULL;
    return z;
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

// A uniform permutation of 0..n-1 from rng (Fisher-Yates, last element first).
std::vector<int64_t> shuffled_indices(int64_t n, PoolRng& rng);


struct RetrievalPool {
  int64_t query = 0;                // index of the query (and of its true document)
  std::vector<int64_t> candidates;  // c - 1 document indices, distinct, `query` exactly once
  int64_t target = 0;               // candidates[target] == query
};

// One pool per query 0..n-1 (query i's true document is document i): c - 2 distractors drawn
// uniformly without replacement from the other n - 1 documents, the true document inserted at a
// uniform slot. Deterministic in (n, c, seed) on every platform. Requires c >= 2 and n >= c - 1.
std::vector<RetrievalPool> make_pools(int64_t n, int64_t c, uint64_t seed);

// Writes the scores of query q against `candidates` into out (same length). Called from several
// threads at once.
using PoolScorer = std::function<void(int64_t q, std::span<const int64_t> candidates, std::span<double> out)>;

struct RetrievalScore {
  int64_t pool_size = 0;  // c
  int64_t queries = 0;
  double top1 = 0;        // fraction of queries whose true document ranks first
  double mrr = 0;         // mean of 1 / rank
};

// Rank of the true document = 1 + the number of other candidates scoring at least as high (ties
// count against the true document, so a scorer that gives every candidate the same score is
// never right, and NaN scores never rank first).
int64_t true_rank(std::span<const double> scores, int64_t target);

// Scores every pool (in parallel) and averages top-1 and reciprocal rank over them.
RetrievalScore score_pools(const std::vector<RetrievalPool>& pools, int64_t pool_size, const PoolScorer& scorer);

// Scorer for embeddings queries [Nq, D], documents [Nd, D] (any float dtype or device; copied
// to the host and L2-normalised per row here): the cosine of each query with each candidate.
PoolScorer cosine_scorer(const Tensor& queries, const Tensor& documents);

// Scorer: TF-IDF fitted on `documents`, queries vectorised with it.
PoolScorer tfidf_scorer(const std::vector<std::string>& queries, const std::vector<std::string>& documents);
// Scorer: Okapi BM25 (experiments/bm25.h, k1 1.2, b 0.75) indexed on `documents`.
PoolScorer bm25_scorer(const std::vector<std::string>& queries, const std::vector<std::string>& documents);

}  // namespace mg
