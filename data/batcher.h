// Batches of token ids from a shard, as i32 tensors [B, n_ctx] on the CPU.
//
// Two ways to turn documents into fixed-length samples:
//   per_document  (the paper's TinyStories mode, docs/paper.md C.2/C.4) sample i is document i: its
//                 first n_ctx tokens, padded with pad_id up to n_ctx. Right padding (default)
//                 puts the tokens at [0, len); left padding at [n_ctx - len, n_ctx), so the last
//                 real token sits at n_ctx - 1 (docs/paper.md I.2: the paper's side is uncertain).
//   packed        every document followed by eos_id, concatenated in shard order, cut into
//                 consecutive windows of n_ctx tokens; the incomplete last window is dropped.
//
// Each Batch also carries labels: the inputs with every padding position replaced by
// kIgnoreIndex, unshifted (the loss shifts: CE(logits[:, :-1], labels[:, 1:]), docs/paper.md A.8), so
// padding is never scored. Padding is found by position, not by id, so a document that
// contains pad_id keeps it scored. Packed batches have no padding.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/tensor.h"
#include "data/shards.h"

namespace mg {

inline constexpr std::int32_t kIgnoreIndex = -100;

enum class BatchMode { per_document, packed };
enum class PadSide { right, left };

struct BatcherOptions {
  std::int64_t batch_size = 8;
  std::int64_t n_ctx = 512;
  BatchMode mode = BatchMode::per_document;
  PadSide pad_side = PadSide::right;
  std::int32_t pad_id = -1;  // required (in [0, vocab)) for per_document
  std::int32_t eos_id = -1;  // required (in [0, vocab)) for packed
  // Training order: a fresh permutation of the samples each epoch (false: shard order).
  bool shuffle = true;
  std::uint64_t seed = 0;
};

struct Batch {
  Tensor inputs;              // i32 [b, n_ctx]
  Tensor labels;              // i32 [b, n_ctx]: inputs, with kIgnoreIndex at padding
  std::int64_t num_real = 0;  // non-padding positions in the batch
};

// Where a training batcher stands: the next batch is samples [cursor, cursor + B) of epoch
// `epoch`'s order, which is a function of (seed, epoch) alone. Saving it and calling
// set_position() later reproduces the same batches exactly. A batcher keeps it normalised:
// once fewer than B samples are left in an epoch the position moves to (epoch + 1, 0).
struct BatchPosition {
  std::uint64_t epoch = 0;
  std::uint64_t cursor = 0;  // samples already taken in this epoch
  std::uint64_t seed = 0;
  bool operator==(const BatchPosition&) const = default;
};

// Turns sample indices into padded rows; shared by the training and validation iterators.
class SampleSource {
 public:
  // Throws Error if the options are invalid for the shard (non-positive sizes, missing or
  // out-of-range pad/eos id) or the shard has no complete sample.
  SampleSource(std::shared_ptr<const TokenShard> shard, const BatcherOptions& options);

  std::uint64_t num_samples() const { return num_samples_; }
  // Builds the batch of the given samples (any count >= 1).
  Batch make_batch(const std::vector<std::uint64_t>& samples) const;
  // Writes sample s into row[0, n_ctx) and returns its number of real (non-pad) positions.
  std::int64_t fill_row(std::uint64_t s, std::int32_t* row) const;

  const BatcherOptions& options() const { return opt_; }
  const TokenShard& shard() const { return *shard_; }

 private:
  std::shared_ptr<const TokenShard> shard_;
  BatcherOptions opt_;
  std::uint64_t num_samples_ = 0;
};

// Endless training batches: epoch after epoch, each in its own order; every batch is full
// (the last batch_size-incomplete part of an epoch's order is skipped, differently each epoch
// when shuffling).
class Batcher {
 public:
  Batcher(std::shared_ptr<const TokenShard> shard, BatcherOptions options);

  Batch next();

  BatchPosition position() const { return pos_; }
  // Resumes at `p` (its seed replaces options().seed), normalised as above. Throws Error if
  // p.cursor is beyond the epoch.
  void set_position(const BatchPosition& p);

  std::uint64_t samples_per_epoch() const { return source_.num_samples(); }
  std::uint64_t batches_per_epoch() const;
  // The sample order of an epoch under the current seed (a permutation of [0, samples)).
  std::vector<std::uint64_t> epoch_order(std::uint64_t epoch) const;
  const BatcherOptions& options() const { return source_.options(); }

 private:
  void normalize();

  SampleSource source_;
  BatchPosition pos_;
  std::vector<std::uint64_t> order_;  // order of pos_.epoch
  std::uint64_t order_epoch_ = ~std::uint64_t(0);
};

// One pass over every sample in shard order, unshuffled, for evaluation: always the same
// batches; the last one may hold fewer than batch_size rows.
class ValidationBatches {
 public:
  ValidationBatches(std::shared_ptr<const TokenShard> shard, BatcherOptions options);

  // Stores the next batch and returns true, or returns false after the last one.
  bool next(Batch& batch);
  void reset() { cursor_ = 0; }
  std::uint64_t num_samples() const { return source_.num_samples(); }
  std::uint64_t num_batches() const;

 private:
  SampleSource source_;
  std::uint64_t cursor_ = 0;
};

// The permutation of [0, n) used for (seed, epoch): Fisher-Yates driven by Philox4x32-10.
std::vector<std::uint64_t> shuffled_order(std::uint64_t n, std::uint64_t seed, std::uint64_t epoch);

// Cross-entropy in nats of the shard's tokens under their own unigram distribution,
// -sum_v p_v ln p_v: the loss of a model that ignores context. A language model should get
// below it. Throws Error for an empty shard.
double unigram_entropy(const TokenShard& shard);

}  // namespace mg
