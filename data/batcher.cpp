#include "data/batcher.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/factories.h"
#include "core/philox.h"

namespace mg {

// ---------------------------------------------------------------------------------------------
// SampleSource

SampleSource::SampleSource(std::shared_ptr<const TokenShard> shard, const BatcherOptions& options)
    : shard_(std::move(shard)), opt_(options) {
  MG_CHECK(shard_ != nullptr, "batcher: null shard");
  const std::string& path = shard_->path();
  MG_CHECK(opt_.batch_size > 0, "batcher (", path, "): batch_size must be positive, got ", opt_.batch_size);
  MG_CHECK(opt_.n_ctx > 0, "batcher (", path, "): n_ctx must be positive, got ", opt_.n_ctx);
  const std::int32_t vocab = shard_->vocab_size();
  if (opt_.mode == BatchMode::per_document) {
    MG_CHECK(opt_.pad_id >= 0 && opt_.pad_id < vocab, "batcher (", path,
             "): per-document batches need a pad_id in [0, ", vocab, "), got ", opt_.pad_id);
    num_samples_ = shard_->num_documents();
    MG_CHECK(num_samples_ > 0, "batcher (", path, "): the shard has no documents");
  } else {
    MG_CHECK(opt_.eos_id >= 0 && opt_.eos_id < vocab, "batcher (", path,
             "): packed batches need an eos_id in [0, ", vocab, "), got ", opt_.eos_id);
    const std::uint64_t stream = shard_->num_tokens() + shard_->num_documents();
    num_samples_ = stream / std::uint64_t(opt_.n_ctx);
    MG_CHECK(num_samples_ > 0, "batcher (", path, "): ", stream,
             " packed tokens (documents + eos) do not fill one window of n_ctx = ", opt_.n_ctx);
  }
}

std::int64_t SampleSource::fill_row(std::uint64_t s, std::int32_t* row) const {
  const auto n = std::size_t(opt_.n_ctx);
  if (opt_.mode == BatchMode::per_document) {
    const auto doc = shard_->document(s);
    const std::size_t len = std::min(doc.size(), n);
    const std::size_t start = opt_.pad_side == PadSide::right ? 0 : n - len;
    std::fill(row, row + n, opt_.pad_id);
    std::copy(doc.begin(), doc.begin() + std::ptrdiff_t(len), row + start);
    return std::int64_t(len);
  }
  // Packed: document d occupies stream positions [off[d] + d, off[d+1] + d), then its eos.
  const auto off = shard_->offsets();
  const auto tokens = shard_->tokens();
  const std::uint64_t D = shard_->num_documents();
  std::uint64_t p = s * n;
  // Last document whose stream start is <= p.
  std::uint64_t lo = 0, hi = D;  // answer in [lo, hi)
  while (hi - lo > 1) {
    const std::uint64_t mid = lo + (hi - lo) / 2;
    if (off[mid] + mid <= p) lo = mid; else hi = mid;
  }
  std::uint64_t d = lo;
  std::size_t k = 0;
  while (k < n) {
    const std::uint64_t start = off[d] + d, end = off[d + 1] + d;  // eos at `end`
    if (p < end) {
      const std::size_t take = std::size_t(std::min<std::uint64_t>(end - p, n - k));
      const std::uint16_t* src = tokens.data() + off[d] + (p - start);
      std::copy(src, src + take, row + k);
      k += take;
      p += take;
    } else {
      row[k++] = opt_.eos_id;
      ++p;
      ++d;
    }
  }
  return std::int64_t(n);
}

Batch SampleSource::make_batch(const std::vector<std::uint64_t>& samples) const {
  MG_CHECK(!samples.empty(), "batcher: empty batch requested");
  const auto b = std::int64_t(samples.size());
  const auto n = std::size_t(opt_.n_ctx);
  std::vector<std::int32_t> inputs(std::size_t(b) * n), labels(std::size_t(b) * n);
  Batch batch;
  for (std::size_t r = 0; r < samples.size(); ++r) {
    MG_CHECK(samples[r] < num_samples_, "batcher: sample ", samples[r], " out of range (",
             num_samples_, " samples)");
    std::int32_t* in = inputs.data() + r * n;
    const std::int64_t real = fill_row(samples[r], in);
    batch.num_real += real;
    std::int32_t* lab = labels.data() + r * n;
    std::copy(in, in + n, lab);
    if (opt_.mode == BatchMode::per_document) {
      const auto pad = n - std::size_t(real);
      if (opt_.pad_side == PadSide::right) std::fill(lab + real, lab + n, kIgnoreIndex);
      else std::fill(lab, lab + pad, kIgnoreIndex);
    }
  }
  batch.inputs = from_vector(inputs, Shape{b, opt_.n_ctx});
  batch.labels = from_vector(labels, Shape{b, opt_.n_ctx});
  return batch;
}

// ---------------------------------------------------------------------------------------------
// Orders

std::vector<std::uint64_t> shuffled_order(std::uint64_t n, std::uint64_t seed, std::uint64_t epoch) {
  std::vector<std::uint64_t> order(n);
  std::iota(order.begin(), order.end(), std::uint64_t(0));
  // Fisher-Yates from the back; step i draws j uniform in [0, i] from 64 Philox bits
  // (multiply-shift: bias < n / 2^64).
  for (std::uint64_t i = n; i-- > 1;) {
    const philox::U4 r = philox::philox4x32_10(i, epoch, seed);
    const std::uint64_t bits = (std::uint64_t(r.x) << 32) | r.y;
    const auto j = std::uint64_t((unsigned __int128)bits * (i + 1) >> 64);
    std::swap(order[i], order[j]);
  }
  return order;
}

// ---------------------------------------------------------------------------------------------
// Batcher

Batcher::Batcher(std::shared_ptr<const TokenShard> shard, BatcherOptions options)
    : source_(std::move(shard), options) {
  pos_.seed = options.seed;
  MG_CHECK(source_.num_samples() >= std::uint64_t(options.batch_size), "batcher (",
           source_.shard().path(), "): ", source_.num_samples(),
           " samples are fewer than one batch of ", options.batch_size);
}

std::uint64_t Batcher::batches_per_epoch() const {
  return source_.num_samples() / std::uint64_t(source_.options().batch_size);
}

std::vector<std::uint64_t> Batcher::epoch_order(std::uint64_t epoch) const {
  if (!source_.options().shuffle) {
    std::vector<std::uint64_t> order(source_.num_samples());
    std::iota(order.begin(), order.end(), std::uint64_t(0));
    return order;
  }
  return shuffled_order(source_.num_samples(), pos_.seed, epoch);
}

void Batcher::set_position(const BatchPosition& p) {
  MG_CHECK(p.cursor <= source_.num_samples(), "batcher (", source_.shard().path(),
           "): saved cursor ", p.cursor, " is beyond the epoch's ", source_.num_samples(),
           " samples (was the position saved for another shard?)");
  if (p.seed != pos_.seed) order_epoch_ = ~std::uint64_t(0);
  pos_ = p;
  normalize();
}

void Batcher::normalize() {
  // A cursor with no full batch left in its epoch means the start of the next epoch.
  if (pos_.cursor + std::uint64_t(source_.options().batch_size) > source_.num_samples()) {
    ++pos_.epoch;
    pos_.cursor = 0;
  }
}

Batch Batcher::next() {
  const auto B = std::uint64_t(source_.options().batch_size);
  if (order_epoch_ != pos_.epoch) {
    order_ = epoch_order(pos_.epoch);
    order_epoch_ = pos_.epoch;
  }
  const std::vector<std::uint64_t> samples(order_.begin() + std::ptrdiff_t(pos_.cursor),
                                           order_.begin() + std::ptrdiff_t(pos_.cursor + B));
  pos_.cursor += B;
  normalize();
  return source_.make_batch(samples);
}

// ---------------------------------------------------------------------------------------------
// ValidationBatches

ValidationBatches::ValidationBatches(std::shared_ptr<const TokenShard> shard, BatcherOptions options)
    : source_(std::move(shard), options) {}

std::uint64_t ValidationBatches::num_batches() const {
  const auto B = std::uint64_t(source_.options().batch_size);
  return (source_.num_samples() + B - 1) / B;
}

bool ValidationBatches::next(Batch& batch) {
  if (cursor_ >= source_.num_samples()) return false;
  const auto B = std::uint64_t(source_.options().batch_size);
  const std::uint64_t end = std::min(cursor_ + B, source_.num_samples());
  std::vector<std::uint64_t> samples(end - cursor_);
  std::iota(samples.begin(), samples.end(), cursor_);
  cursor_ = end;
  batch = source_.make_batch(samples);
  return true;
}

// ---------------------------------------------------------------------------------------------

double unigram_entropy(const TokenShard& shard) {
  MG_CHECK(shard.num_tokens() > 0, "unigram_entropy (", shard.path(), "): the shard has no tokens");
  // Sized for every uint16 so that a shard opened without verification cannot index past it.
  std::vector<std::uint64_t> counts(std::size_t(1) << 16, 0);
  for (std::uint16_t t : shard.tokens()) ++counts[t];
  for (std::size_t v = std::size_t(shard.vocab_size()); v < counts.size(); ++v)
    MG_CHECK(counts[v] == 0, "unigram_entropy (", shard.path(), "): token id ", v,
             " >= vocab size ", shard.vocab_size());
  const double total = double(shard.num_tokens());
  double h = 0;
  for (std::uint64_t c : counts) {
    if (c == 0) continue;
    const double p = double(c) / total;
    h -= p * std::log(p);
  }
  return h;
}

}  // namespace mg
