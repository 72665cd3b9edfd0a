#pragma once
// config.json beside exported weights (docs/interop.md), both ways:
//   llama        Hugging Face LlamaConfig ("model_type": "llama")
//   gpt          Hugging Face OpenAIGPTConfig ("model_type": "openai-gpt"); needs ffn_mult 4 (HF's
//                MLP is fixed at 4 * n_embd)
//   masked_mixer ours: {"model_type": "mixgrad_masked_mixer", and the model: keys of a run config
//                (experiments/run_config.h) with their YAML names}
// Reading is strict: an unknown key, a wrong type, or an HF setting our models do not implement
// (grouped-query attention, rope_scaling, biases, another activation, ...) is an mg::Error naming
// the file and the key. HF bookkeeping keys (architectures, transformers_version, torch_dtype,
// token ids, dropout probabilities, use_cache, ...) are accepted and ignored.
#include <string>

#include "nn/model_config.h"

namespace mg {

// The config.json text (pretty-printed, deterministic). special ids go to HF's
// bos/eos/pad_token_id fields.
std::string model_config_json(const ModelConfig& c, int eos_id, int pad_id);

// Parses config.json text; `what` names it in errors.
ModelConfig parse_model_config_json(const std::string& text, const std::string& what);

// The model: section of a run config (YAML) for c, every key written out.
std::string model_config_yaml(const ModelConfig& c);

}  // namespace mg
