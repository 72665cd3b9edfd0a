#pragma once
// `mixgrad import --from pytorch|hf WEIGHTS.safetensors [--config config.json|CONFIG.yaml]
//  --tokenizer tokenizer.json|tokenizer.bpe --out DIR` (docs/interop.md): weights written by
// PyTorch / Hugging Face become a run directory that `mixgrad eval`, `generate`, `represent` and
// `retrieve` accept, as the Trainer writes one: checkpoint.safetensors (weights, no optimizer
// state; metadata: the run config, the model summary, the tokenizer's fingerprint), config.yaml
// and tokenizer.bpe.
#include <string>
#include <vector>

namespace mg {

// Every missing, unexpected or mis-shaped tensor is named in one error (Module::load_state_dict);
// a missing file, a bad config key or an unsupported tokenizer is an error too. DIR must not
// exist and is written all at once (experiments/interop_dir.h): complete or absent.
int run_import(const std::vector<std::string>& args);

}  // namespace mg
