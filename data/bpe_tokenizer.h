// Byte-level BPE tokenizer in the GPT-2 style, trained from scratch.
//
// Token ids:
//   [0, 256)                 the 256 single bytes (id == byte value), so every byte string
//                            is encodable and decode(encode(s)) == s exactly.
//   [256, 256 + num_merges)  one token per learned merge, in merge (rank) order: the token
//                            created by the k-th merge has id 256 + k.
//   [256 + num_merges, vocab_size)
//                            the special tokens, in the order eos, pad, extra[0], ...
// Special ids therefore come after the learned vocabulary rather than at fixed slots; read
// them through eos_id() / pad_id() / special_id() instead of hard-coding numbers.
//
// Pre-tokenisation (merges never cross chunk boundaries) is a hand-written simplification of
// GPT-2's regex, working on bytes. Byte classes: letters are ASCII A-Z a-z plus every byte
// >= 0x80 (so UTF-8 words in any script, and invalid UTF-8, stay inside one chunk); digits
// are 0-9; whitespace is ' ' \t \n \v \f \r; everything else is "other". At each position the
// first rule that applies produces the next chunk:
//   1. an ASCII contraction: 's 't 'm 'd 're 've 'll (case-sensitive, as in GPT-2);
//   2. an optional single ' ' followed by a maximal run of letters, or of digits, or of
//      "other" bytes;
//   3. a maximal whitespace run; if it is followed by a non-space and ends in ' ' (and is
//      longer than one byte), that last ' ' is left for rule 2 to attach to the next word.
// Unlike GPT-2, a whitespace run such as "  \t" before a word stays one chunk instead of
// being split before its last byte. The concatenation of the chunks is always the input.

#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/error.h"

namespace mg {

// Thrown for invalid arguments (bad vocab size, unknown token id, bad special tokens) and for
// unreadable, unwritable or malformed tokenizer files; the message names the problem and,
// for files, "path:line". A mg::Error, so callers catching the library's error type see it.
class TokenizerError : public Error {
 public:
  using Error::Error;
};

// The special-token strings. eos and pad are required, non-empty and distinct from each other
// and from every extra token.
struct BpeSpecialTokens {
  std::string eos = "<|endoftext|>";
  std::string pad = "<|pad|>";
  std::vector<std::string> extra;

  // eos, pad, then extra: the order in which they receive ids.
  std::vector<std::string> all() const;
  bool operator==(const BpeSpecialTokens&) const = default;
};

// The pre-tokenizer's chunks of `text`, as views into it (see the rules at the top of this
// file). Their concatenation equals `text`; an empty text gives no chunks.
std::vector<std::string_view> bpe_pretokenize(std::string_view text);

namespace detail {
struct BpeStringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};
struct BpeChunkCache;
}  // namespace detail

class BpeTokenizer {
 public:
  static constexpr std::int32_t kNumByteTokens = 256;

  // Bytes only (no merges) with the default special tokens: vocab_size() == 258.
  BpeTokenizer();

  // From an explicit merge list: merges[k] = (left, right) creates token 256 + k, and both
  // ids must be < 256 + k. Throws TokenizerError on an invalid merge or special-token set.
  BpeTokenizer(std::vector<std::pair<std::int32_t, std::int32_t>> merges,
               BpeSpecialTokens specials);

  // Trains on `texts` (each one document; see BpeTrainer for the details and guarantees).
  static BpeTokenizer train(const std::vector<std::string>& texts, int vocab_size,
                            BpeSpecialTokens specials = {});
  // Same, over any range of documents whose elements convert to std::string_view; the range
  // is read once, front to back, so a single-pass input iterator is enough.
  template <std::input_iterator It, std::sentinel_for<It> S>
  static BpeTokenizer train(It first, S last, int vocab_size, BpeSpecialTokens specials = {});

  // Reads a file written by save(). Throws TokenizerError naming the file and the offending
  // line if it cannot be opened or is truncated, corrupt, or of another format version.
  static BpeTokenizer load(const std::string& path);

  // Writes the text format below to `path` atomically (core/atomic_file.h: a unique temporary
  // file beside it, fsync'ed, then renamed over `path`), so readers see the old file or the whole
  // new one. Throws TokenizerError (naming the path) on any I/O failure, leaving no temporary
  // file behind.
  //
  // Format, version 1 (ASCII, '\n'-terminated lines, fields separated by one space):
  //   mixgrad-bpe 1
  //   vocab_size <N>                  N == 256 + M + K
  //   merges <M>
  //   specials <K>
  //   special <id> <role> <bytes>     K lines in id order; role is eos, pad or extra
  //   <left> <right> <bytes>          M lines; line k creates token 256 + k
  //   end
  // <bytes> is the token's byte string with 0x21..0x7e written as-is except '\', which is
  // written "\\", and every other byte written "\xHH" (so " the" is "\x20the"). For merges
  // it is redundant (the concatenation of left and right) and load() checks it.
  void save(const std::string& path) const;

  // Token ids for `text`: pre-tokenise, then within each chunk apply merges lowest rank
  // first (leftmost first among equal ranks). With allow_special, every occurrence of a
  // special-token string becomes its special id (the longest one wins where several start at
  // the same byte); otherwise such strings are ordinary bytes. Results of repeated chunks are
  // cached internally; encode is safe to call concurrently on the same object.
  std::vector<std::int32_t> encode(std::string_view text, bool allow_special = false) const;
  // As encode, appending to `out` (lets a data pipeline reuse one buffer).
  void encode_append(std::string_view text, std::vector<std::int32_t>& out,
                     bool allow_special = false) const;

  // Concatenated bytes of the tokens (special tokens decode to their strings). Throws
  // TokenizerError naming the position of any id outside [0, vocab_size()).
  std::string decode(std::span<const std::int32_t> ids) const;

  std::int32_t vocab_size() const { return static_cast<std::int32_t>(vocab_.size()); }
  std::int32_t num_merges() const { return static_cast<std::int32_t>(merges_.size()); }
  std::int32_t eos_id() const { return first_special_id(); }
  std::int32_t pad_id() const { return first_special_id() + 1; }
  // The id of a special-token string, or -1 when it is not one.
  std::int32_t special_id(std::string_view token) const;
  bool is_special(std::int32_t id) const { return id >= first_special_id() && id < vocab_size(); }
  // The bytes a token stands for. Throws TokenizerError if id is out of range.
  const std::string& token_bytes(std::int32_t id) const;
  // The id created by merging (left, right), or -1 when that pair is not a merge.
  std::int32_t merged_id(std::int32_t left, std::int32_t right) const;

  const std::vector<std::pair<std::int32_t, std::int32_t>>& merges() const { return merges_; }
  const BpeSpecialTokens& special_tokens() const { return specials_; }

 private:
  std::int32_t first_special_id() const { return kNumByteTokens + num_merges(); }
  void encode_chunk(std::string_view chunk, std::vector<std::int32_t>& out) const;

  std::vector<std::pair<std::int32_t, std::int32_t>> merges_;
  BpeSpecialTokens specials_;
  std::vector<std::string> vocab_;                         // id -> bytes
  std::unordered_map<std::uint64_t, std::int32_t> ranks_;  // (left << 32 | right) -> rank
  std::vector<std::string> special_strings_;               // specials_.all()
  // Shared between copies: the cache is a pure function of the merges, which copies share.
  std::shared_ptr<detail::BpeChunkCache> cache_;
};

// Streaming trainer: feed documents one at a time, then train. Only the chunk frequency table
// is kept, so the corpus never has to be in memory at once.
class BpeTrainer {
 public:
  explicit BpeTrainer(BpeSpecialTokens specials = {});

  // Counts the pre-tokenizer chunks of one document. Occurrences of the special-token strings
  // are cut out first, so they are never learned as merges and never join their neighbours.
  void add_document(std::string_view text);

  // Number of distinct chunks seen so far.
  std::size_t unique_chunks() const { return chunk_counts_.size(); }

  // Learns merges, repeatedly merging the most frequent adjacent pair (counted over chunk
  // occurrences); ties go to the lowest (left id, right id). Stops when the vocabulary
  // (256 bytes + merges + special tokens) reaches vocab_size, or earlier when no adjacent pair
  // is left in any chunk; in that case the result's vocab_size() is smaller than asked. The
  // result depends only on the multiset of chunks, not on document order. Throws
  // TokenizerError if vocab_size < 256 + number of special tokens. The trainer is unchanged
  // and can be fed more documents and trained again.
  BpeTokenizer train(int vocab_size) const;

 private:
  BpeSpecialTokens specials_;
  std::vector<std::string> special_strings_;
  std::unordered_map<std::string, std::uint64_t, detail::BpeStringHash, std::equal_to<>>
      chunk_counts_;
};

template <std::input_iterator It, std::sentinel_for<It> S>
BpeTokenizer BpeTokenizer::train(It first, S last, int vocab_size, BpeSpecialTokens specials) {
  BpeTrainer trainer(std::move(specials));
  for (; first != last; ++first) trainer.add_document(std::string_view(*first));
  return trainer.train(vocab_size);
}

namespace detail {
// The two per-chunk merge strategies encode() picks between by chunk length (a rescan per
// merge for short chunks, a heap over a linked list for long ones); exposed so tests can
// check that they agree. Neither uses the cache nor special tokens.
std::vector<std::int32_t> bpe_merge_scan(const BpeTokenizer& tok, std::string_view chunk);
std::vector<std::int32_t> bpe_merge_heap(const BpeTokenizer& tok, std::string_view chunk);
}  // namespace detail

}  // namespace mg
