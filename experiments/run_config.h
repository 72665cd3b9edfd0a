#pragma once
// The configuration of one training run, read from YAML (experiments/configs/*.yaml). Every key
// has a default here; an unknown key, a wrong type or a bad value is an error naming the key.
//
//   name: mixer_quick          # run name (default: the config file's stem)
//   out_dir: runs/mixer_quick  # where logs, figures and checkpoints go
//   autoencoder: false         # true: the model is the autoencoder of model.kind (docs/paper.md F),
//                              # trained by `mixgrad autoencode train`, not `mixgrad train`
//   model:  {kind, vocab_size, d_model, n_layers, n_ctx, n_heads, ffn_mult, mixer_form,
//            mixer_expansion, mixer_heads, mixer_kernel, tie_weights, norm_eps, rope_theta, init_std}
//   data:   {format, path, field, separator, max_document_bytes, max_documents, vocab_size,
//            tokenizer, cache_dir, validation: {mode, fraction, count}, batching, pad_side}
//            tokenizer: path to an existing tokenizer.bpe (e.g. another run's) to tokenize this
//            corpus with instead of training one on it; its size must equal vocab_size
//   train:  {batch_size, grad_accum_steps, steps, lr, warmup_steps, decay, min_lr, weight_decay,
//            beta1, beta2, eps, grad_clip, eval_every, eval_batches, log_every, checkpoint_every,
//            seed, threads, device, precision, deterministic, time_limit_minutes, reduce_bucket_mb,
//            reduce_overlap}
//            (train/train_settings.h: meanings and defaults)
//            precision: f32 (default) or bf16 (autocast, core/autocast.h: bf16 matmuls with f32
//            accumulation, f32 master weights and AdamW state); deterministic: true makes the run
//            bitwise reproducible on one GPU (core/determinism.h; CPU runs always are) and makes
//            N MPI ranks bitwise one process with N accumulation steps (docs/distributed.md)
#include <cstdint>
#include <string>

#include "data/batcher.h"
#include "data/corpus.h"
#include "data/shards.h"
#include "nn/lr_schedule.h"
#include "nn/model_config.h"
#include "train/train_settings.h"

namespace mg {

struct DataConfig {
  CorpusSpec corpus;
  std::uint64_t max_documents = 0;  // 0 = all
  int vocab_size = 4096;            // tokenizer size (model.vocab_size follows it)
  // An existing tokenizer.bpe to use instead of training one on the corpus (empty: train one).
  // A relative path is taken from the working directory, as data.path is.
  std::string tokenizer;
  std::string cache_dir;            // tokenizer + shards; default: <corpora root>/cache
  ValidationSplit split;
  BatchMode batching = BatchMode::per_document;
  PadSide pad_side = PadSide::right;
};


struct RunConfig {
  std::string name;
  std::string out_dir;
  bool autoencoder = false;  // model is nn/autoencoder.h's autoencoder of model.kind
  ModelConfig model;
  DataConfig data;
  TrainSettings train;
  std::string source_yaml;  // the file's text, stored in checkpoints
};

RunConfig load_run_config(const std::string& path);
// Parses YAML text (file_label names it in errors).
RunConfig parse_run_config(const std::string& yaml_text, const std::string& file_label);
// Throws mg::Error naming `source` and `command` when rc describes an autoencoder: commands that
// need a language model call it right after reading a config, so an autoencoder run gets one clear
// message instead of "tensor missing from the checkpoint".
void require_language_model(const RunConfig& rc, const std::string& source, const std::string& command);

}  // namespace mg
