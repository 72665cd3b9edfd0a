#include "data/shards.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <deque>
#include <exception>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/hash.h"
#include "data/bpe_tokenizer.h"
#include "data/corpus.h"

namespace mg {

static_assert(std::endian::native == std::endian::little,
              "shard files are little-endian and read by mapping them directly");

namespace {

constexpr char kMagic[8] = {'M', 'G', 'T', 'O', 'K', '1', '\0', '\0'};
constexpr std::size_t kHeaderBytes = 64;

struct RawHeader {
  char magic[8];
  std::uint32_t version;
  std::uint32_t vocab_size;
  std::uint64_t num_documents;
  std::uint64_t num_tokens;
  std::uint64_t fingerprint;
  std::uint64_t checksum;
  std::uint8_t zero[16];
};
static_assert(sizeof(RawHeader) == kHeaderBytes);

// Bytes of the token section including its padding to a multiple of 8.
std::uint64_t padded_token_bytes(std::uint64_t num_tokens) { return (2 * num_tokens + 7) / 8 * 8; }

// A word-at-a-time hash in the style of one xxHash64 lane: cheap enough to verify a
// gigabyte-sized shard on open, and sensitive to every bit and to word order.
constexpr std::uint64_t kP1 = 0x9E3779B185EBCA87ULL, kP2 = 0xC2B2AE3D27D4EB4FULL,
                        kP4 = 0x85EBCA77C2B2AE63ULL;

class Hasher {
 public:
  explicit Hasher(std::uint64_t seed) : h_(seed + kP4) {}
  Hasher(std::uint64_t h, std::uint64_t bytes) : h_(h), bytes_(bytes) {}  // resume a saved state
  std::uint64_t state() const { return h_; }
  std::uint64_t hashed_bytes() const { return bytes_; }
  void words(const std::uint64_t* w, std::size_t n) {
    std::uint64_t h = h_;
    for (std::size_t i = 0; i < n; ++i) {
      h ^= std::rotl(w[i] * kP2, 31) * kP1;
      h = std::rotl(h, 27) * kP1 + kP4;
    }
    h_ = h;
    bytes_ += 8 * n;
  }
  void bytes(const void* data, std::size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    const std::size_t full = n / 8;
    if (reinterpret_cast<std::uintptr_t>(p) % alignof(std::uint64_t) == 0) {
      words(reinterpret_cast<const std::uint64_t*>(p), full);
    } else {
      for (std::size_t i = 0; i < full; ++i) {
        std::uint64_t w;
        std::memcpy(&w, p + 8 * i, 8);
        words(&w, 1);
      }
    }
    if (n % 8) {
      std::uint64_t w = 0;
      std::memcpy(&w, p + 8 * full, n % 8);
      words(&w, 1);
      bytes_ -= 8 - n % 8;
    }
  }
  std::uint64_t digest() const {
    std::uint64_t h = h_ ^ bytes_;
    h ^= h >> 33;
    h *= kP2;
    h ^= h >> 29;
    h *= 0x165667B19E3779F9ULL;
    h ^= h >> 32;
    return h;
  }

 private:
  std::uint64_t h_;
  std::uint64_t bytes_ = 0;
};

[[noreturn]] void throw_io(const std::string& what, const std::string& path, int err) {
  throw ShardError(detail::concat(path, ": cannot ", what, ": ", std::strerror(err)));
}

// Runs f on the writer's file; a failure (which has removed the temporary file) drops the file
// and becomes a ShardError.
template <class F>
void file_io(std::optional<AtomicFile>& file, F&& f) {
  try {
    f(*file);
  } catch (const AtomicFileError& e) {
    file.reset();
    throw ShardError(e.what());
  }
}

}  // namespace

std::uint64_t tokenizer_fingerprint(const BpeTokenizer& tok) {
  std::uint64_t h = fnv1a("mixgrad-bpe");
  const std::int32_t vocab = tok.vocab_size();
  h = fnv1a(&vocab, sizeof vocab, h);
  for (const auto& [l, r] : tok.merges()) {
    h = fnv1a(&l, sizeof l, h);
    h = fnv1a(&r, sizeof r, h);
  }
  for (const std::string& s : tok.special_tokens().all()) {
    const std::uint64_t n = s.size();
    h = fnv1a(&n, sizeof n, h);
    h = fnv1a(s, h);
  }
  return h == 0 ? 1 : h;  // 0 means "unknown" in the file format
}

std::uint64_t shard_checksum(const void* data, std::size_t bytes, std::uint64_t seed) {
  Hasher h(seed);
  h.bytes(data, bytes);
  return h.digest();
}

// ---------------------------------------------------------------------------------------------
// ShardWriter

namespace {
constexpr std::size_t kFlushTokens = std::size_t(1) << 20;  // multiple of 4: whole hash words
}

ShardWriter::ShardWriter(std::string path, std::int32_t vocab_size, std::uint64_t fingerprint)
    : path_(std::move(path)), vocab_size_(vocab_size), fingerprint_(fingerprint) {
  if (vocab_size < 1 || vocab_size > kMaxShardVocab)
    throw ShardError(detail::concat(path_, ": vocab size ", vocab_size,
                                    " does not fit a shard (token ids are uint16; at most ",
                                    kMaxShardVocab, ")"));
  const Hasher h(0);
  checksum_h_ = h.state();
  try {
    file_.emplace(path_);
  } catch (const AtomicFileError& e) {
    throw ShardError(e.what());
  }
  const char zeros[kHeaderBytes] = {};
  file_io(file_, [&](AtomicFile& f) { f.write(zeros, kHeaderBytes); });  // the real header is written by finish()
  buffer_.reserve(kFlushTokens);
}

ShardWriter::~ShardWriter() = default;  // an unfinished file_ removes its temporary file

void ShardWriter::add_document(std::span<const std::int32_t> ids) {
  MG_CHECK(!finished_ && file_, path_, ": add_document on a finished or failed ShardWriter");
  const std::uint64_t doc = num_documents();
  if (ids.empty()) throw ShardError(detail::concat(path_, ": document ", doc, " is empty"));
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const std::int32_t id = ids[i];
    if (id < 0 || id >= vocab_size_)
      throw ShardError(detail::concat(path_, ": document ", doc, " token ", i, " has id ", id,
                                      ", outside [0, ", vocab_size_, ")"));
  }
  for (std::int32_t id : ids) {
    buffer_.push_back(static_cast<std::uint16_t>(id));
    if (buffer_.size() == kFlushTokens) flush_buffer();
  }
  offsets_.push_back(offsets_.back() + ids.size());
}

void ShardWriter::flush_buffer() {
  // Every flush but the last holds kFlushTokens tokens and the last is padded, so the hash
  // always sees whole 8-byte words, exactly as the reader does.
  Hasher h(checksum_h_, checksum_bytes_);
  h.bytes(buffer_.data(), buffer_.size() * 2);
  checksum_h_ = h.state();
  checksum_bytes_ = h.hashed_bytes();
  file_io(file_, [&](AtomicFile& f) { f.write(buffer_.data(), buffer_.size() * 2); });
  buffer_.clear();
}

void ShardWriter::finish() {
  MG_CHECK(!finished_ && file_, path_, ": finish on a finished or failed ShardWriter");
  while (buffer_.size() % 4) buffer_.push_back(0);  // pad the token section to 8 bytes
  flush_buffer();
  Hasher h(checksum_h_, checksum_bytes_);
  h.words(offsets_.data(), offsets_.size());

  RawHeader hdr{};
  std::memcpy(hdr.magic, kMagic, 8);
  hdr.version = kShardVersion;
  hdr.vocab_size = std::uint32_t(vocab_size_);
  hdr.num_documents = num_documents();
  hdr.num_tokens = num_tokens();
  hdr.fingerprint = fingerprint_;
  hdr.checksum = h.digest();
  file_io(file_, [&](AtomicFile& f) {
    f.write(offsets_.data(), offsets_.size() * 8);
    f.write_at(0, &hdr, sizeof hdr);
    f.commit();
  });
  file_.reset();
  finished_ = true;
}

// ---------------------------------------------------------------------------------------------
// TokenShard

TokenShard::TokenShard(TokenShard&& o) noexcept { *this = std::move(o); }

TokenShard& TokenShard::operator=(TokenShard&& o) noexcept {
  if (this != &o) {
    release();
    path_ = std::move(o.path_);
    map_ = std::exchange(o.map_, nullptr);
    map_bytes_ = std::exchange(o.map_bytes_, 0);
    tokens_ = std::exchange(o.tokens_, nullptr);
    offsets_ = std::exchange(o.offsets_, nullptr);
    num_documents_ = std::exchange(o.num_documents_, 0);
    num_tokens_ = std::exchange(o.num_tokens_, 0);
    fingerprint_ = o.fingerprint_;
    vocab_size_ = o.vocab_size_;
  }
  return *this;
}

TokenShard::~TokenShard() { release(); }

void TokenShard::release() noexcept {
  if (map_ != nullptr) ::munmap(map_, map_bytes_);
  map_ = nullptr;
  map_bytes_ = 0;
}

std::span<const std::uint16_t> TokenShard::document(std::uint64_t d) const {
  MG_CHECK(d < num_documents_, path_, ": document ", d, " out of range (", num_documents_,
           " documents)");
  return {tokens_ + offsets_[d], std::size_t(offsets_[d + 1] - offsets_[d])};
}

TokenShard TokenShard::open(const std::string& path, OpenOptions options) {
  auto bad = [&](const auto&... parts) {
    return ShardError(detail::concat(path, ": ", parts...));
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_io("open", path, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw_io("stat", path, err);
  }
  const auto size = std::uint64_t(st.st_size);
  if (size < kHeaderBytes) {
    ::close(fd);
    throw bad("truncated: ", size, " bytes, smaller than the ", kHeaderBytes, "-byte shard header");
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_err = errno;
  ::close(fd);
  if (map == MAP_FAILED) throw_io("map", path, map_err);

  TokenShard shard;
  shard.path_ = path;
  shard.map_ = map;
  shard.map_bytes_ = size;  // from here on the destructor unmaps on any throw

  RawHeader hdr;
  std::memcpy(&hdr, map, sizeof hdr);
  if (std::memcmp(hdr.magic, kMagic, 8) != 0) throw bad("not a token shard (wrong magic)");
  if (hdr.version != kShardVersion)
    throw bad("shard format version ", hdr.version, ", this build reads version ", kShardVersion);
  if (hdr.vocab_size < 1 || hdr.vocab_size > std::uint32_t(kMaxShardVocab))
    throw bad("corrupt header: vocab size ", hdr.vocab_size);
  // Bound the counts before computing sizes so the arithmetic cannot overflow.
  if (hdr.num_tokens > size || hdr.num_documents > size)
    throw bad("corrupt header or truncated file: ", hdr.num_documents, " documents and ",
              hdr.num_tokens, " tokens cannot fit in ", size, " bytes");
  const std::uint64_t expect =
      kHeaderBytes + padded_token_bytes(hdr.num_tokens) + 8 * (hdr.num_documents + 1);
  if (size < expect)
    throw bad("truncated: ", size, " bytes, the header implies ", expect);
  if (size > expect)
    throw bad("corrupt: ", size, " bytes, the header implies ", expect, " (trailing data)");
  for (std::uint8_t z : hdr.zero)
    if (z != 0) throw bad("corrupt header: reserved bytes are not zero");
  if (options.expect_fingerprint && hdr.fingerprint != *options.expect_fingerprint)
    throw bad("tokenizer mismatch: the shard was written with tokenizer fingerprint ",
              hdr.fingerprint, ", expected ", *options.expect_fingerprint,
              " (re-tokenise the corpus with this tokenizer)");

  const auto* base = static_cast<const unsigned char*>(map);
  shard.tokens_ = reinterpret_cast<const std::uint16_t*>(base + kHeaderBytes);
  shard.offsets_ = reinterpret_cast<const std::uint64_t*>(
      base + kHeaderBytes + padded_token_bytes(hdr.num_tokens));
  shard.num_documents_ = hdr.num_documents;
  shard.num_tokens_ = hdr.num_tokens;
  shard.fingerprint_ = hdr.fingerprint;
  shard.vocab_size_ = std::int32_t(hdr.vocab_size);

  const std::uint64_t* off = shard.offsets_;
  if (off[0] != 0) throw bad("corrupt offset table: first offset is ", off[0], ", expected 0");
  for (std::uint64_t d = 0; d < hdr.num_documents; ++d)
    if (off[d + 1] <= off[d])
      throw bad("corrupt offset table: document ", d, " spans [", off[d], ", ", off[d + 1], ")");
  if (off[hdr.num_documents] != hdr.num_tokens)
    throw bad("corrupt offset table: last offset ", off[hdr.num_documents], ", expected ",
              hdr.num_tokens);

  if (options.verify) {
    Hasher h(0);
    h.words(reinterpret_cast<const std::uint64_t*>(base + kHeaderBytes), (size - kHeaderBytes) / 8);
    if (h.digest() != hdr.checksum) throw bad("corrupt: checksum mismatch");
    std::uint16_t max_id = 0;
    const std::uint16_t* t = shard.tokens_;
    for (std::uint64_t i = 0; i < hdr.num_tokens; ++i) max_id = std::max(max_id, t[i]);
    if (hdr.num_tokens > 0 && max_id >= hdr.vocab_size)
      throw bad("corrupt: token id ", max_id, " >= vocab size ", hdr.vocab_size);
  }
  return shard;
}

// ---------------------------------------------------------------------------------------------
// Tokenising a corpus

bool is_validation_document(std::uint64_t index, double fraction) {
  if (!(fraction > 0)) return false;
  if (fraction >= 1) return true;
  // splitmix64 is a fixed bijection, so membership depends on the index alone.
  return double(splitmix64(index)) < fraction * 18446744073709551616.0;
}

TokenizeReport tokenize_corpus(DocumentReader& reader, const BpeTokenizer& tok,
                               const std::string& train_path, const std::string& validation_path,
                               const TokenizeOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  if (tok.vocab_size() > kMaxShardVocab)
    throw ShardError(detail::concat(train_path, ": tokenizer vocab size ", tok.vocab_size(),
                                    " does not fit uint16 shards (at most ", kMaxShardVocab, ")"));
  const ValidationSplit& split = options.split;
  if (split.mode == ValidationSplit::Mode::hash && !(split.fraction >= 0 && split.fraction <= 1))
    throw ShardError(detail::concat("tokenize_corpus: validation fraction ", split.fraction,
                                    " is outside [0, 1]"));
  if (train_path == validation_path)
    throw ShardError(detail::concat("tokenize_corpus: train and validation paths are both ", train_path));
  const std::size_t block = std::max<std::size_t>(1, options.block_documents);

  const std::uint64_t fp = tokenizer_fingerprint(tok);
  ShardWriter train(train_path, tok.vocab_size(), fp);
  ShardWriter val(validation_path, tok.vocab_size(), fp);
  std::deque<std::vector<std::int32_t>> tail;  // `last` mode: documents not yet known to be train

  auto route = [&](std::uint64_t index, std::vector<std::int32_t>&& ids) {
    switch (split.mode) {
      case ValidationSplit::Mode::hash:
        (is_validation_document(index, split.fraction) ? val : train).add_document(ids);
        break;
      case ValidationSplit::Mode::first:
        (index < split.count ? val : train).add_document(ids);
        break;
      case ValidationSplit::Mode::last:
        tail.push_back(std::move(ids));
        if (tail.size() > split.count) {
          train.add_document(tail.front());
          tail.pop_front();
        }
        break;
    }
  };

  std::vector<std::string> docs;
  std::vector<std::vector<std::int32_t>> encoded;
  std::uint64_t index = 0;
  std::string doc;
  for (;;) {
    docs.clear();
    while (docs.size() < block &&
           (options.max_documents == 0 || index + docs.size() < options.max_documents) &&
           reader.next(doc))
      docs.push_back(std::move(doc));
    if (docs.empty()) break;
    encoded.resize(docs.size());
    std::exception_ptr error;
    const auto n = std::int64_t(docs.size());
#pragma omp parallel for schedule(dynamic, 8)
    for (std::int64_t i = 0; i < n; ++i) {
      try {
        encoded[std::size_t(i)].clear();
        tok.encode_append(docs[std::size_t(i)], encoded[std::size_t(i)]);
      } catch (...) {
#pragma omp critical(mg_tokenize_error)
        if (!error) error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
    for (std::size_t i = 0; i < docs.size(); ++i) route(index + i, std::move(encoded[i]));
    index += docs.size();
  }
  for (auto& ids : tail) val.add_document(ids);
  tail.clear();

  TokenizeReport report;
  report.train_documents = train.num_documents();
  report.train_tokens = train.num_tokens();
  report.validation_documents = val.num_documents();
  report.validation_tokens = val.num_tokens();
  train.finish();
  val.finish();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace mg
