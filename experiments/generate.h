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

// Continues `prompt_ids` (at least one id). Returns only the new ids.
std::vector<int32_t> generate_ids(LanguageModel& model, const std::vector<int32_t>& prompt_ids,
                                  const GenerateOptions& opts, int32_t eos_id);
std::string generate_text(LanguageModel& model, const BpeTokenizer& tok, const std::string& prompt,
                          const GenerateOptions& opts);

}  // namespace mg
