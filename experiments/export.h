#pragma once
// `mixgrad export --checkpoint P --to pytorch|hf OUT_DIR` (docs/interop.md): a trained run's model
// as plain safetensors that PyTorch loads with a strict load_state_dict, plus config.json,
// tokenizer.json (Hugging Face) and config.yaml (the run's own config, for `mixgrad import`).
#include <string>
#include <vector>

namespace mg {

// Writes OUT_DIR/{model.safetensors, config.json, tokenizer.json, config.yaml}. OUT_DIR must not
// exist; everything is written into a temporary directory beside it that is renamed into place
// at the end (removed on any error), so OUT_DIR is either complete or absent.
int run_export(const std::vector<std::string>& args);

}  // namespace mg
