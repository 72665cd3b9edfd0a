#pragma once
// Retrieval pair sets by name.
#include <string>
#include <vector>

#include "data/retrieval_pairs.h"

namespace mg {

// "reuters" and "manpages" (installed by scripts/install_corpus.sh under default_corpus_root())
// or a path to a JSON Lines file (read_jsonl_pairs). Throws naming what is missing.
std::vector<RetrievalPair> load_pairs(const std::string& spec);

}  // namespace mg
