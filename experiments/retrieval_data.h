#pragma once
// The pair split every retrieval command evaluates on, chosen the same way everywhere.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "data/retrieval_pairs.h"

namespace mg {

class Args;

struct PairSplitOptions {
  std::string pairs;          // reuters | manpages | PATH.jsonl (required)
  // Fraction of pairs held out for testing; 0: the set's default, all of the man pages (too few
  // to train on) and one eighth of the others.
  double test_fraction = 0;
  uint64_t split_seed = 0;
  int64_t max_queries = 0;    // > 0: keep at most this many test pairs
  int64_t max_train = 0;      // > 0: keep at most this many training pairs
};

// Reads --pairs --test-fraction --split-seed --max-queries --max-train into o.
void read_pair_split_args(const Args& a, PairSplitOptions& o);
// The option names read_pair_split_args reads.
std::vector<std::string> pair_split_option_names();

// Loads and splits the pairs (printing the counts to stderr). Throws naming a missing set or a
// bad fraction.
PairSplit load_pair_split(const PairSplitOptions& o);

// The queries and documents of pairs, as two lists.
std::pair<std::vector<std::string>, std::vector<std::string>> pair_texts(const std::vector<RetrievalPair>& pairs);

}  // namespace mg
