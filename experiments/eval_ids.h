#pragma once
// `mixgrad eval --checkpoint P --ids IDS.safetensors`: the causal-LM loss of one fixed batch of
// token ids, without the run's data (so weights imported with their own tokenizer can be scored,
// and other code can score the very same batch; docs/interop.md).
#include <string>

#include "data/bpe_tokenizer.h"
#include "nn/lm.h"

namespace mg {

// IDS.safetensors holds "ids" [B, T] (I32 or I64), 2 <= T <= n_ctx, every id < vocab size.
// Prints "loss <nats, 9 decimals> over <N> tokens ..." : the mean of lm_loss (nn/lm.h) with the
// tokenizer's pad id ignored as a target. Returns the exit code.
int eval_ids_file(LanguageModel& model, const BpeTokenizer& tok, const std::string& path);

// Checkpoint metadata key `mixgrad import` sets when the run config came from a config.json, so
// the run has no data of its own.
inline constexpr const char* kImportedWithoutData = "imported.without_data";
// Throws mg::Error telling to use --ids when the checkpoint is such an import (plain eval would
// otherwise score the default corpus with a tokenizer trained there, not the imported one).
void require_run_data(const std::string& checkpoint);

}  // namespace mg
