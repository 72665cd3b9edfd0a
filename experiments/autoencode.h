#pragma once
// `mixgrad autoencode`: training, evaluating and retrieving with the paper's autoencoders
// (docs/paper.md F; nn/autoencoder.h).
//
// An autoencoder run is an ordinary run config (experiments/run_config.h) with the top-level key
// `autoencoder: true`; model.kind picks the mixer (masked_mixer) or the transformer (llama)
// autoencoder, model.n_layers is the depth of EACH of encoder and decoder. Per-document batches
// must be left-padded (data.pad_side: left) so the encoder's last position -- the bottleneck z --
// holds the last real token (docs/paper.md C.4, F). Training reuses train_objective (experiments/
// trainer.h): the same files (metrics.csv, loss.png, checkpoint.safetensors, tokenizer.bpe,
// config.yaml, samples.txt), resume and Ctrl-C; the loss is the unshifted reconstruction CE,
// pads not scored.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/bpe_tokenizer.h"
#include "experiments/run_config.h"
#include "experiments/lm_run.h"
#include "nn/autoencoder.h"

namespace mg {

// Throws naming the problem unless rc is an autoencoder run this program can train: autoencoder
// true, model.kind masked_mixer or llama, left padding for per-document batches.
void check_autoencoder_config(const RunConfig& rc);

// The training objective of an autoencoder: reconstruction_loss of model->forward(inputs)
// against the labels, every non-padding position scored; the sample is the greedy
// reconstruction of the first validation document.
TrainObjective autoencoder_objective(std::shared_ptr<Autoencoder> model, const RunConfig& rc);

// Trains rc's autoencoder (check_autoencoder_config first).
TrainSummary train_autoencoder(const RunConfig& rc, const TrainOptions& opts);

struct AutoencoderRun {
  RunConfig rc;
  std::shared_ptr<Autoencoder> model;  // f32 on the CPU
  BpeTokenizer tok;
  std::string checkpoint;
};
// Loads run_dir/checkpoint.safetensors (config from its metadata) and run_dir/tokenizer.bpe.
AutoencoderRun load_autoencoder_run(const std::string& run_dir);

// Greedy reconstruction of token ids (at most n_ctx; the first n_ctx are used): the argmax of
// the logits at each real position of the left-padded input.
std::vector<int32_t> reconstruct(Autoencoder& model, const std::vector<int32_t>& ids, int32_t pad_id);

struct AutoencoderEval {
  double loss = 0;             // mean reconstruction CE (nats) over the scored positions
  double token_accuracy = 0;   // fraction of scored positions whose argmax is the input token
  // The lowest loss a decoder that gives every position of a sequence the same distribution can
  // reach, knowing the sequence's tokens: per sequence the entropy of its own token counts,
  // -sum_t ln(count(x_t) / len), averaged over the scored positions. The transformer
  // autoencoder's decoder is such a decoder (nn/autoencoder.h); the mixer's is not.
  double bag_of_tokens = 0;
  int64_t tokens = 0, batches = 0;
};
// Reconstruction loss and accuracy over the first max_batches (0: all) batches.
AutoencoderEval evaluate_autoencoder(Autoencoder& model, ValidationBatches& batches, int64_t max_batches);

// Bottleneck embeddings z [N, D] (f32, CPU, no grad) of token sequences, each left-padded to
// n_ctx as in training (sequences longer than n_ctx: first n_ctx tokens). Non-empty progress_label
// prints a progress bar.
Tensor autoencoder_embeddings(Autoencoder& model, const std::vector<std::vector<int32_t>>& seqs, int32_t pad_id,
                              int64_t batch_size, const std::string& progress_label = "");

}  // namespace mg
