#pragma once
// Scoring several retrieval methods on the same pools and reporting them the same way, for every
// command that evaluates embeddings (`retrieve eval|train`, `autoencode retrieve`).
#include <cstdint>
#include <string>
#include <vector>

#include "experiments/retrieval.h"

namespace mg {

struct NamedScorer {
  std::string name;
  PoolScorer scorer;
};

struct MethodScores {
  std::string method;
  std::vector<RetrievalScore> scores;  // one per pool size that fits
};

// Throws mg::Error unless some c in pool_sizes has c - 1 <= n: what evaluate_methods needs.
// Callers check it before the (costly, and for an empty set impossible) scorers are built.
void require_a_pool_fits(int64_t n, const std::vector<int64_t>& pool_sizes);

// Scores every method on make_pools(n, c, seed) for each c in pool_sizes with c - 1 <= n (the
// others are skipped with a note on stderr), prints the table to stdout, and when out_dir is
// non-empty writes retrieval.csv (and retrieval_top1.png when `plot`) there. Throws mg::Error
// when no pool size fits or there is no method.
std::vector<MethodScores> evaluate_methods(const std::vector<NamedScorer>& methods, int64_t n,
                                           const std::vector<int64_t>& pool_sizes, uint64_t seed,
                                           const std::string& pairs_name, const std::string& out_dir, bool plot);

}  // namespace mg
