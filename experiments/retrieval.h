#pragma once
// The retrieval pipeline (PAPER.md E): pools of candidate documents for each query, scoring
// them (top-1 accuracy and MRR) with any scorer, sentence embeddings from a language model's
// hidden states, and InfoNCE fine-tuning of the model as an embedder.
//
// Pool convention (PAPER E.4): a pool of size c holds the query's c - 1 candidate documents:
// its true document and c - 2 distractors (c counts the query, as the paper's "1 query vs 31
// candidates" at c = 32). Every method is scored on the pools make_pools returns for the same
// (number of documents, c, seed), so all are compared on identical pools.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "data/batcher.h"
#include "data/bpe_tokenizer.h"
#include "data/retrieval_pairs.h"
#include "nn/layers.h"
#include "nn/lm.h"

namespace mg {

// ---------------------------------------------------------------------------------------------
// Pools and metrics.

struct RetrievalPool {
  int64_t query = 0;                // index of the query (and of its true document)
  std::vector<int64_t> candidates;  // c - 1 document indices, distinct, `query` exactly once
  int64_t target = 0;               // candidates[target] == query
};

// One pool per query 0..n-1 (query i's true document is document i): c - 2 distractors drawn
// uniformly without replacement from the other n - 1 documents, the true document inserted at a
// uniform slot. Deterministic in (n, c, seed) on every platform. Requires c >= 2 and n >= c - 1.
std::vector<RetrievalPool> make_pools(int64_t n, int64_t c, uint64_t seed);

// Writes the scores of query q against `candidates` into out (same length). Called from several
// threads at once.
using PoolScorer = std::function<void(int64_t q, std::span<const int64_t> candidates, std::span<double> out)>;

struct RetrievalScore {
  int64_t pool_size = 0;  // c
  int64_t queries = 0;
  double top1 = 0;        // fraction of queries whose true document ranks first
  double mrr = 0;         // mean of 1 / rank
};

// Rank of the true document = 1 + the number of other candidates scoring at least as high (ties
// count against the true document, so a scorer that gives every candidate the same score is
// never right, and NaN scores never rank first).
int64_t true_rank(std::span<const double> scores, int64_t target);

// Scores every pool (in parallel) and averages top-1 and reciprocal rank over them.
RetrievalScore score_pools(const std::vector<RetrievalPool>& pools, int64_t pool_size, const PoolScorer& scorer);

// Scorer for embeddings queries [Nq, D], documents [Nd, D] (any float dtype or device; copied
// to the host and L2-normalised per row here): the cosine of each query with each candidate.
PoolScorer cosine_scorer(const Tensor& queries, const Tensor& documents);

// Scorer: TF-IDF fitted on `documents`, queries vectorised with it.
PoolScorer tfidf_scorer(const std::vector<std::string>& queries, const std::vector<std::string>& documents);

// ---------------------------------------------------------------------------------------------
// Embeddings.

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

// Differentiable embeddings of a padded batch: the model's last-block output (forward_embeddings
// with apply_head = false: no final norm, no lm_head) pooled per `position`: [B, D].
Tensor embed_batch(LanguageModel& model, const PaddedBatch& batch, EmbedPosition position);

// Embeddings [N, D] (no grad, f32 on CPU) of token sequences, batched by length to limit
// padding; `progress_label` non-empty prints a progress bar to stderr.
Tensor embed_sequences(LanguageModel& model, const std::vector<std::vector<int32_t>>& seqs, int32_t pad_id,
                       const EmbedOptions& options, const std::string& progress_label = "");

// ---------------------------------------------------------------------------------------------
// InfoNCE training (PAPER E.3).

struct InfoNceOptions {
  EmbedOptions embed;
  double temperature = 0.02;
  // Sequences per group: the query and its group_size - 1 candidates (its document and
  // group_size - 2 negatives drawn from the other training documents), as the paper's 32.
  int64_t group_size = 32;
  int64_t groups_per_step = 1;  // the paper's 4 GPUs x 1 group
  // > 0: in-batch negatives instead of groups: this many (query, document) pairs per step, each
  // query scored against every document of the step.
  int64_t in_batch = 0;
  int64_t steps = 0;  // 0: one epoch (every training query once)
  double lr = 1e-4;
  int64_t warmup_steps = 500;
  double weight_decay = 0;
  double grad_clip = 1.0;
  uint64_t seed = 0;
  int64_t log_every = 10;
};

struct InfoNceStats {
  int64_t steps = 0;
  double first_loss = 0, last_loss = 0;  // mean over the first / last min(log_every, steps) steps
  std::vector<double> losses;            // every step's loss
  double seconds = 0;
};

// Trains `model` in place as an embedder of queries[i] <-> documents[i] (token sequences).
// `on_log(step, loss)` is called every log_every steps when set.
InfoNceStats train_info_nce(LanguageModel& model, const std::vector<std::vector<int32_t>>& queries,
                            const std::vector<std::vector<int32_t>>& documents, int32_t pad_id,
                            const InfoNceOptions& options,
                            const std::function<void(int64_t, double)>& on_log = nullptr);

// One group's (or in-batch step's) loss for the given query/document indices: the grouped
// InfoNCE loss with documents[candidates[g][0]] the positive of query queries_idx[g].
Tensor info_nce_group_loss(LanguageModel& model, const std::vector<std::vector<int32_t>>& queries,
                           const std::vector<std::vector<int32_t>>& documents, int32_t pad_id,
                           std::span<const int64_t> query_idx, const std::vector<std::vector<int64_t>>& candidates,
                           const InfoNceOptions& options);

// ---------------------------------------------------------------------------------------------
// The frozen-embedding method of the paper's first version (PAPER E.2): a bidirectional mixer
// over the sequence [query, c - 1 candidates] of fixed embeddings scores each candidate.

// A.1's block with an UNMASKED token mixing Conv1d(c, c, 1) (+ bias) along the sample axis:
// y = x + W LN(x) + b;  out = y + FF(LN(y)).
class BidirectionalMixerBlock : public Module {
 public:
  BidirectionalMixerBlock(int64_t dim, int64_t samples, Generator& gen, TensorOptions opts = {});
  Tensor forward(const Tensor& x) const;  // [B, c, d] -> [B, c, d]
  LayerNorm patch_layernorm, seq_layernorm;
  FeedForward patch_ff;
  Tensor conv_weight, conv_bias;  // [c, c, 1], [c] (torch Conv1d layout and init)
};

class RetrievalMixer : public Module {
 public:
  RetrievalMixer(int64_t dim, int64_t depth, int64_t samples, Generator& gen, TensorOptions opts = {});
  // x [B, c, d] (row 0 the query) -> candidate scores [B, c - 1].
  Tensor forward(const Tensor& x) const;
  int64_t samples() const { return samples_; }
  ModuleList<BidirectionalMixerBlock> blocks;
  Linear head;  // Linear(d, 1)

 private:
  int64_t samples_;
};

struct FrozenRetrievalOptions {
  int64_t pool_size = 32;  // c: the query and c - 1 candidates
  int64_t depth = 8;
  int64_t batch_size = 32;
  int64_t epochs = 1;
  int64_t steps = 0;  // > 0 overrides epochs
  double lr = 1e-4;
  int64_t warmup_steps = 500;
  double grad_clip = 1.0;
  uint64_t seed = 0;
  int64_t log_every = 50;
};

struct FrozenRetrievalResult {
  std::vector<double> losses;  // per step
  double train_loss = 0;       // mean of the last log window
  double test_loss = 0;        // CE on the test pools (the paper's metric; chance ln(c - 1))
  RetrievalScore test;         // top-1 and MRR on the test pools
};

// Trains a RetrievalMixer on train embeddings (queries [N, d], documents [N, d]; pools resampled
// every epoch as E.2) and scores it on the test embeddings' pools make_pools(n_test, c,
// eval_seed), the same pools every other method is scored on.
FrozenRetrievalResult train_frozen_retrieval(RetrievalMixer& model, const Tensor& train_queries,
                                             const Tensor& train_documents, const Tensor& test_queries,
                                             const Tensor& test_documents, const FrozenRetrievalOptions& options,
                                             uint64_t eval_seed,
                                             const std::function<void(int64_t, double)>& on_log = nullptr);

// Mean CE and top-1/MRR of `model` on pools over embeddings (query i's document is row i).
std::pair<double, RetrievalScore> evaluate_frozen_retrieval(RetrievalMixer& model, const Tensor& queries,
                                                            const Tensor& documents,
                                                            const std::vector<RetrievalPool>& pools,
                                                            int64_t batch_size = 64);

// ---------------------------------------------------------------------------------------------
// Pair sets by name: "reuters" and "manpages" (installed by scripts/install_corpus.sh under
// default_corpus_root()) or a path to a JSON Lines file (read_jsonl_pairs).
std::vector<RetrievalPair> load_pairs(const std::string& spec);

// The `mixgrad retrieve train|eval|embed` subcommand (experiments/cmd_retrieve.cpp).
int run_retrieve(const std::vector<std::string>& args);

}  // namespace mg
