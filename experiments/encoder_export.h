#pragma once
// `mixgrad autoencode encoder`: an autoencoder run's encoder written as a language-model
// checkpoint (nn/autoencoder_encoder.h), so that `mixgrad retrieve train|eval|embed|frozen
// --checkpoint DIR/checkpoint.safetensors` fine-tunes and scores it unchanged -- the paper's
// autoencoder-pretrained retrieval backbone (docs/paper.md E.3 step 3, F). Embed it at the
// position the autoencoder reads z from: `--position last --pad-side left`.
#include <cstdint>
#include <string>

#include "experiments/run_config.h"

namespace mg {

// The language-model run config (YAML text) of the encoder of autoencoder run config `ae`: its
// text with `autoencoder` removed, name "<name>_encoder" and out_dir `out_dir`, under a comment
// naming `source_run`. Its model and data sections are the autoencoder's, so the model is
// make_model(ae.model) and `--config` finds the same tokenizer in the data cache.
std::string encoder_lm_config_yaml(const RunConfig& ae, const std::string& source_run, const std::string& out_dir);

struct EncoderExport {
  RunConfig rc;            // the language model's run config (parsed from out_dir/config.yaml's text)
  std::string checkpoint;  // out_dir/checkpoint.safetensors
  int64_t num_parameters = 0;
  std::string source_step;  // the autoencoder checkpoint's training step ("" when it records none)
};

// Writes out_dir (which must not exist; its parent must) all at once: checkpoint.safetensors (the
// language model, metadata: config, model, tokenizer.fingerprint, autoencoder.source_run,
// autoencoder.source_checkpoint, autoencoder.source_step), tokenizer.bpe (the run's, copied) and
// config.yaml. run_dir must be an autoencoder run (`mixgrad autoencode train`): a missing
// checkpoint, a language-model run, or a tokenizer.bpe other than the one the run was trained
// with throws one mg::Error naming the problem, and nothing is written.
EncoderExport export_autoencoder_encoder(const std::string& run_dir, const std::string& out_dir);

}  // namespace mg
