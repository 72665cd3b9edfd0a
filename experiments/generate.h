#pragma once
// Text generation from a language model: the model re-reads the whole window for every new token
// (the paper's procedure, docs/paper.md A.9: the masked mixer has no incremental form).
#include <cstdint>
#include <string>
#include <vector>

#include "data/bpe_tokenizer.h"
#include "nn/lm.h"

namespace mg {

struct GenerateOptions {
  int64_t max_new_tokens = 50;
  double temperature = 0;  // 0 = greedy
  int64_t top_k = 0;       // 0 = all tokens
  uint64_t seed = 0;
  bool stop_at_eos = true;
};

// The ids a model may output but generation must never emit: the tokenizer's special tokens
// other than eos (pad, extras: they mark batching, not text), and every id the model has beyond
// the tokenizer's vocabulary (decode would refuse them). eos stays: it ends the text.
std::vector<int32_t> unsampled_ids(const BpeTokenizer& tok, int64_t model_vocab_size);

// Continues `prompt_ids` (at least one id). Returns only the new ids, none of them in `never`:
// those logits are left out before the greedy choice or the top-k/temperature sampling (the
// distribution is renormalised over the rest). Throws mg::Error if `never` leaves no id.
std::vector<int32_t> generate_ids(LanguageModel& model, const std::vector<int32_t>& prompt_ids,
                                  const GenerateOptions& opts, int32_t eos_id, const std::vector<int32_t>& never = {});
// Encodes `prompt`, generates (never emitting unsampled_ids(tok, V)) and decodes the new tokens.
std::string generate_text(LanguageModel& model, const BpeTokenizer& tok, const std::string& prompt,
                          const GenerateOptions& opts);

}  // namespace mg
