#pragma once
// Sentence embeddings from a language model's hidden states (docs/paper.md E): tokenizing and
// padding texts, pooling a position's hidden state, and embedding whole sets of texts.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "data/batcher.h"
#include "data/bpe_tokenizer.h"
#include "nn/lm.h"

namespace mg {

enum class EmbedPosition {
  last,         // the last real token
  second_last,  // the one before it (the paper code's default embedding_index -2); the last
                // token when the text has only one
  mean,         // mean over the real tokens
};
EmbedPosition parse_embed_position(const std::string& s);  // "last", "second-last" / "-2", "mean"
const char* embed_position_name(EmbedPosition p);

struct EmbedOptions {
  EmbedPosition position = EmbedPosition::second_last;
  PadSide pad_side = PadSide::right;
  // Pad every batch to the model's n_ctx (as the paper: padding='max_length') instead of to its
  // longest text. With right padding a causal model's outputs at real tokens do not depend on
  // the padding, so the two give the same embeddings and the short form is just faster; with
  // left padding the padding shifts every token's position, so only padding to n_ctx makes a
  // text's embedding independent of the other texts in its batch (the default for left).
  bool pad_to_ctx = false;
  int64_t batch_size = 16;
};

// Token ids of each text (no special tokens), truncated to its first n_ctx tokens. Throws naming
// the text's index when a text gives no tokens.
std::vector<std::vector<int32_t>> tokenize_texts(const BpeTokenizer& tok, const std::vector<std::string>& texts,
                                                 int64_t n_ctx);

struct PaddedBatch {
  Tensor ids;                    // [B, T] i32
  std::vector<int64_t> lengths;  // real tokens per row (1..T)
  PadSide side = PadSide::right;
};

// Rows `rows` of seqs padded with pad_id to T (0: the longest of them) on `side`.
PaddedBatch pad_batch(const std::vector<std::vector<int32_t>>& seqs, std::span<const int64_t> rows, int32_t pad_id,
                      PadSide side, int64_t T = 0);

// The embedding of each row of hidden states [B, T, D] of a padded batch: [B, D].
// Differentiable in hidden.
Tensor pool_hidden(const Tensor& hidden, const PaddedBatch& batch, EmbedPosition position);

// Differentiable embeddings of a padded batch: the model's last-block output after its final norm
// where it has one (Llama's RMSNorm, as HF's last hidden state; the mixer and GPT-1 have none),
// without lm_head, pooled per `position`: [B, D] (docs/paper.md E.2, E.3).
Tensor embed_batch(LanguageModel& model, const PaddedBatch& batch, EmbedPosition position);

// Embeddings [N, D] (no grad, f32 on CPU) of token sequences, batched by length to limit
// padding; `progress_label` non-empty prints a progress bar to stderr.
Tensor embed_sequences(LanguageModel& model, const std::vector<std::vector<int32_t>>& seqs, int32_t pad_id,
                       const EmbedOptions& options, const std::string& progress_label = "");

}  // namespace mg
