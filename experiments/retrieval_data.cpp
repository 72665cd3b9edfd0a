#include "experiments/retrieval_data.h"

#include <cstdio>

#include "core/error.h"
#include "experiments/args.h"
#include "experiments/pair_sets.h"

namespace mg {

void read_pair_split_args(const Args& a, PairSplitOptions& o) {
  a.read("pairs", o.pairs);
  a.read("test-fraction", o.test_fraction);
  a.read("split-seed", o.split_seed);
  a.read("max-queries", o.max_queries);
  a.read("max-train", o.max_train);
}

std::vector<std::string> pair_split_option_names() {
  return {"pairs", "test-fraction", "split-seed", "max-queries", "max-train"};
}

PairSplit load_pair_split(const PairSplitOptions& o) {
  MG_CHECK(!o.pairs.empty(), "--pairs reuters|manpages|PATH.jsonl is required");
  std::vector<RetrievalPair> pairs = load_pairs(o.pairs);
  MG_CHECK(o.test_fraction >= 0 && o.test_fraction <= 1, "--test-fraction must be in (0, 1], got ", o.test_fraction);
  const double frac = o.test_fraction > 0 ? o.test_fraction : o.pairs == "manpages" ? 1.0 : 0.125;
  MG_CHECK(o.max_queries >= 0 && o.max_train >= 0, "--max-queries and --max-train must be >= 0");
  PairSplit s;
  if (frac >= 1) s.test = std::move(pairs);
  else s = split_pairs(pairs, frac, o.split_seed);
  if (o.max_queries > 0 && int64_t(s.test.size()) > o.max_queries) s.test.resize(size_t(o.max_queries));
  if (o.max_train > 0 && int64_t(s.train.size()) > o.max_train) s.train.resize(size_t(o.max_train));
  std::fprintf(stderr, "pairs %s: %zu train, %zu test\n", o.pairs.c_str(), s.train.size(), s.test.size());
  return s;
}

std::pair<std::vector<std::string>, std::vector<std::string>> pair_texts(const std::vector<RetrievalPair>& pairs) {
  std::pair<std::vector<std::string>, std::vector<std::string>> out;
  for (const auto& p : pairs) {
    out.first.push_back(p.query);
    out.second.push_back(p.document);
  }
  return out;
}

}  // namespace mg
