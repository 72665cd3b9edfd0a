#pragma once
// The texts of retrieval pairs as a language-model corpus: one {"text": ...} object per line, the
// `jsonl` corpus format with its default field (data/corpus.h). Written from one part of a pair
// split, it lets a model be pretrained on a retrieval set's training articles without seeing its
// test pairs (`mixgrad retrieve texts`; the pretraining-data ablation of docs/reproduction.md).
#include <cstddef>
#include <string>
#include <vector>

#include "data/retrieval_pairs.h"

namespace mg {

enum class PairSide { queries, documents, both };

// "queries" | "documents" | "both"; throws mg::Error naming the value otherwise.
PairSide parse_pair_side(const std::string& name);

// The texts of `pairs` in their order: each pair's query, its document, or both (query first).
std::vector<std::string> pair_side_texts(const std::vector<RetrievalPair>& pairs, PairSide side);

// `texts` without those equal to one of `excluded` (order kept); `dropped` counts them. A pair set
// can hold the same article under two headlines, one in each part of a split: the training part's
// texts leave such an article out, so that no test text is seen.
std::vector<std::string> texts_not_in(const std::vector<std::string>& texts, const std::vector<std::string>& excluded,
                                      std::size_t& dropped);

// Writes `texts` to `path`, one {"text": ...} line each, atomically (core/atomic_file.h: readers
// see the old file or the whole new one). Throws mg::Error naming the path when it cannot be
// written (e.g. its directory does not exist).
void write_text_jsonl(const std::string& path, const std::vector<std::string>& texts);

}  // namespace mg
