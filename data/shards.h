// Token shards: a corpus tokenised once into a binary file that training maps into memory.
//
// File format, version 1 (all integers little-endian):
//   offset  size  field
//        0     8  magic "MGTOK1\0\0"
//        8     4  u32 version (1)
//       12     4  u32 vocab_size (1..65535; every token id is < vocab_size)
//       16     8  u64 num_documents D
//       24     8  u64 num_tokens T
//       32     8  u64 tokenizer fingerprint (tokenizer_fingerprint(); 0 = unknown)
//       40     8  u64 checksum of the token and offset bytes (see shard_checksum)
//       48    16  zero
//       64   2*T  u16 token ids, documents back to back
//             pad zero bytes up to the next multiple of 8
//          8*(D+1) u64 document offsets: document d is tokens [off[d], off[d+1]); off[0] = 0,
//                  off[D] = T, and every document has at least one token
// The file size is exactly what the header implies. Documents hold their tokens only (no EOS):
// the batcher adds EOS or padding as its mode requires.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"

namespace mg {

class BpeTokenizer;
class DocumentReader;
struct CorpusStats;

// Unreadable, truncated, corrupt or mismatched shard files, and invalid shard contents; the
// message names the file.
class ShardError : public Error {
 public:
  using Error::Error;
};

inline constexpr std::int32_t kMaxShardVocab = 65535;
inline constexpr std::uint32_t kShardVersion = 1;

// A 64-bit hash of everything that decides token ids: the merges and the special tokens (and
// so the vocabulary size). Two tokenizers that encode differently have different fingerprints.
std::uint64_t tokenizer_fingerprint(const BpeTokenizer& tok);

// The checksum stored in the header, over the bytes of the token and offset sections.
std::uint64_t shard_checksum(const void* data, std::size_t bytes, std::uint64_t seed = 0);

// Streams documents into a new shard file. Nothing is visible at `path` until finish(): the
// bytes go to a unique temporary file beside it (core/atomic_file.h), which finish() completes,
// fsyncs and renames over `path`. Destroying an unfinished writer removes the temporary file.
class ShardWriter {
 public:
  // Throws ShardError if vocab_size is outside [1, 65535] or the temporary file cannot be
  // created.
  ShardWriter(std::string path, std::int32_t vocab_size, std::uint64_t fingerprint);
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  // Appends one document. Throws ShardError (naming the file and document index) for an empty
  // document or an id outside [0, vocab_size).
  void add_document(std::span<const std::int32_t> ids);
  // Completes the file as described above. Throws ShardError on any I/O failure (and then
  // leaves no temporary file behind).
  void finish();

  std::uint64_t num_documents() const { return offsets_.size() - 1; }
  std::uint64_t num_tokens() const { return offsets_.back(); }
  const std::string& path() const { return path_; }

 private:
  void flush_buffer();

  std::string path_;
  std::int32_t vocab_size_;
  std::uint64_t fingerprint_;
  std::optional<AtomicFile> file_;  // empty once finished, or after a failed write
  std::vector<std::uint64_t> offsets_{0};
  std::vector<std::uint16_t> buffer_;
  std::uint64_t checksum_h_ = 0, checksum_bytes_ = 0;  // running checksum of the data region
  bool finished_ = false;
};

// A read-only, memory-mapped shard.
class TokenShard {
 public:
  struct OpenOptions {
    // When set, the file's fingerprint must equal it (the tokenizer that will decode the
    // tokens must be the one that made them).
    std::optional<std::uint64_t> expect_fingerprint;
    // Recompute the checksum and check every id against vocab_size (one pass over the file).
    bool verify = true;
  };

  // Maps and validates `path`. Throws ShardError naming the file when it cannot be read, is
  // not a shard (wrong magic), has another version, is truncated or over-long, has an invalid
  // header, offset table, checksum or token id, or does not match expect_fingerprint.
  static TokenShard open(const std::string& path, OpenOptions options);
  static TokenShard open(const std::string& path) { return open(path, OpenOptions{}); }

  TokenShard(TokenShard&& other) noexcept;
  TokenShard& operator=(TokenShard&& other) noexcept;
  TokenShard(const TokenShard&) = delete;
  TokenShard& operator=(const TokenShard&) = delete;
  ~TokenShard();

  std::uint64_t num_documents() const { return num_documents_; }
  std::uint64_t num_tokens() const { return num_tokens_; }
  std::int32_t vocab_size() const { return vocab_size_; }
  std::uint64_t fingerprint() const { return fingerprint_; }
  const std::string& path() const { return path_; }

  std::span<const std::uint16_t> tokens() const { return {tokens_, num_tokens_}; }
  // num_documents() + 1 entries; see the file format.
  std::span<const std::uint64_t> offsets() const { return {offsets_, num_documents_ + 1}; }
  // The tokens of document d (d < num_documents()).
  std::span<const std::uint16_t> document(std::uint64_t d) const;

 private:
  TokenShard() = default;
  void release() noexcept;

  std::string path_;
  void* map_ = nullptr;
  std::size_t map_bytes_ = 0;
  const std::uint16_t* tokens_ = nullptr;
  const std::uint64_t* offsets_ = nullptr;
  std::uint64_t num_documents_ = 0, num_tokens_ = 0, fingerprint_ = 0;
  std::int32_t vocab_size_ = 0;
};

// Which documents form the validation split. The choice depends only on a document's index in
// the corpus (and, for `last`, the corpus length), never on its text or on threads, so the same
// corpus always splits the same way.
struct ValidationSplit {
  enum class Mode {
    hash,   // document i is validation iff is_validation_document(i, fraction)
    first,  // the first `count` documents (the paper's FineWeb split: take 50,000)
    last,   // the last `count` documents
  };
  Mode mode = Mode::hash;
  double fraction = 0.01;     // hash mode, in [0, 1]
  std::uint64_t count = 1000;  // first / last modes
};

// Hash-mode membership: a fixed 64-bit mix of `index` compared with fraction * 2^64.
bool is_validation_document(std::uint64_t index, double fraction);

struct TokenizeOptions {
  ValidationSplit split;
  // Read at most this many documents (0 = all); the paper tokenises the first 2,000,000
  // TinyStories stories.
  std::uint64_t max_documents = 0;
  // Documents encoded in parallel (OpenMP) per block; output order is the corpus order.
  std::size_t block_documents = 4096;
};

struct TokenizeReport {
  std::uint64_t train_documents = 0, train_tokens = 0;
  std::uint64_t validation_documents = 0, validation_tokens = 0;
  double seconds = 0;
};

// Reads every document of `reader`, encodes it with `tok` (special-token strings in the text
// are plain bytes), and writes the train and validation shards (each atomically). The reader's
// stats() describe what was read. Throws ShardError if tok.vocab_size() > 65535, CorpusError /
// JsonError from the reader, and ShardError for I/O failures (no partial shard is left behind).
TokenizeReport tokenize_corpus(DocumentReader& reader, const BpeTokenizer& tok,
                               const std::string& train_path, const std::string& validation_path,
                               const TokenizeOptions& options = {});

}  // namespace mg
