#include "data/bpe_tokenizer.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>
#include <mutex>
#include <queue>
#include <sstream>

#include "core/atomic_file.h"
#include "core/read_file.h"

namespace mg {

namespace {

constexpr std::int32_t kBytes = BpeTokenizer::kNumByteTokens;

std::uint64_t pair_key(std::int32_t left, std::int32_t right) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) |
         static_cast<std::uint32_t>(right);
}
std::int32_t key_left(std::uint64_t key) { return static_cast<std::int32_t>(key >> 32); }
std::int32_t key_right(std::uint64_t key) { return static_cast<std::int32_t>(key & 0xffffffffu); }

// ---------------------------------------------------------------------------------------------
// Pre-tokenizer

enum ByteClass : std::uint8_t { kLetter, kDigit, kSpace, kOther };

constexpr std::array<std::uint8_t, 256> make_byte_classes() {
  std::array<std::uint8_t, 256> c{};
  for (int b = 0; b < 256; ++b) {
    if ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || b >= 0x80) {
      c[b] = kLetter;
    } else if (b >= '0' && b <= '9') {
      c[b] = kDigit;
    } else if (b == ' ' || b == '\t' || b == '\n' || b == '\v' || b == '\f' || b == '\r') {
      c[b] = kSpace;
    } else {
      c[b] = kOther;
    }
  }
  return c;
}
constexpr std::array<std::uint8_t, 256> kByteClass = make_byte_classes();

std::uint8_t byte_class(char c) { return kByteClass[static_cast<unsigned char>(c)]; }

// Length of an ASCII contraction ('s 't 'm 'd 're 've 'll) starting at text[i], or 0.
std::size_t contraction_length(std::string_view text, std::size_t i) {
  if (text[i] != '\'' || i + 1 >= text.size()) return 0;
  const char c1 = text[i + 1];
  if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
  if (i + 2 < text.size()) {
    const char c2 = text[i + 2];
    if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
  }
  return 0;
}

// Calls fn(chunk) for each pre-tokenizer chunk of text, in order (rules in the header).
template <class Fn>
void for_each_chunk(std::string_view text, Fn&& fn) {
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    if (const std::size_t len = contraction_length(text, i)) {
      fn(text.substr(i, len));
      i += len;
      continue;
    }
    std::size_t j = i;
    if (text[i] == ' ' && i + 1 < n && byte_class(text[i + 1]) != kSpace) j = i + 1;
    const std::uint8_t cls = byte_class(text[j]);
    std::size_t end = j + 1;
    if (cls != kSpace) {
      while (end < n && byte_class(text[end]) == cls) ++end;
    } else {
      while (end < n && byte_class(text[end]) == kSpace) ++end;
      // Leave the run's final ' ' to become the leading space of the following word, so
      // " word" gets the same tokens after a newline or indentation as after a single space.
      if (end < n && end - i > 1 && text[end - 1] == ' ') --end;
    }
    fn(text.substr(i, end - i));
    i = end;
  }
}

// Splits text at occurrences of the special strings: on_text(segment) for the (possibly
// empty) plain stretches, on_special(index) for each special occurrence.
template <class OnText, class OnSpecial>
void split_specials(std::string_view text, const std::vector<std::string>& specials,
                    OnText&& on_text, OnSpecial&& on_special) {
  std::vector<std::size_t> next(specials.size());
  for (std::size_t s = 0; s < specials.size(); ++s) next[s] = text.find(specials[s]);
  std::size_t from = 0;
  while (true) {
    std::size_t best = std::string_view::npos;
    std::size_t best_pos = std::string_view::npos;
    for (std::size_t s = 0; s < specials.size(); ++s) {
      if (next[s] < best_pos ||
          (next[s] == best_pos && next[s] != std::string_view::npos &&
           specials[s].size() > specials[best].size())) {
        best = s;
        best_pos = next[s];
      }
    }
    if (best == std::string_view::npos) {
      on_text(text.substr(from));
      return;
    }
    on_text(text.substr(from, best_pos - from));
    on_special(best);
    from = best_pos + specials[best].size();
    for (std::size_t s = 0; s < specials.size(); ++s) {
      if (next[s] != std::string_view::npos && next[s] < from) next[s] = text.find(specials[s], from);
    }
  }
}

void validate_specials(const BpeSpecialTokens& specials) {
  const std::vector<std::string> all = specials.all();
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (all[i].empty()) {
      throw TokenizerError("BPE special tokens: token " + std::to_string(i) +
                           " (eos, pad, then extra) is empty");
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (all[i] == all[j]) {
        throw TokenizerError("BPE special tokens: '" + all[i] + "' appears more than once");
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Text file format helpers

constexpr std::string_view kMagic = "mixgrad-bpe";
constexpr int kFormatVersion = 1;

std::string escape_bytes(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size());
  for (const char ch : bytes) {
    const auto b = static_cast<unsigned char>(ch);
    if (b == '\\') {
      out += "\\\\";
    } else if (b >= 0x21 && b <= 0x7e) {
      out += ch;
    } else {
      out += "\\x";
      out += kHex[b >> 4];
      out += kHex[b & 0xf];
    }
  }
  return out;
}

bool unescape_bytes(std::string_view text, std::string& out) {
  out.clear();
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (b < 0x21 || b > 0x7e) return false;
    if (b != '\\') {
      out += text[i];
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '\\') {
      out += '\\';
      i += 1;
    } else if (i + 3 < text.size() && text[i + 1] == 'x' && hex(text[i + 2]) >= 0 &&
               hex(text[i + 3]) >= 0) {
      out += static_cast<char>(hex(text[i + 2]) * 16 + hex(text[i + 3]));
      i += 3;
    } else {
      return false;
    }
  }
  return !out.empty();
}

// Reads the lines of a tokenizer file and reports errors as "path:line: message".
class LineReader {
 public:
  LineReader(std::string path, std::string text) : path_(std::move(path)), text_(std::move(text)) {}

  [[noreturn]] void fail(const std::string& message) const {
    throw TokenizerError("BPE tokenizer file " + path_ + ":" + std::to_string(line_no_) + ": " +
                         message);
  }

  // The next line split at single spaces; fails at end of file, naming what was expected.
  std::vector<std::string_view> next(const std::string& expected) {
    ++line_no_;
    if (pos_ >= text_.size()) fail("unexpected end of file (truncated?), expected " + expected);
    std::size_t eol = text_.find('\n', pos_);
    if (eol == std::string::npos) eol = text_.size();
    std::string_view line(text_.data() + pos_, eol - pos_);
    pos_ = eol + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::vector<std::string_view> fields;
    std::size_t start = 0;
    while (true) {
      const std::size_t sp = line.find(' ', start);
      fields.push_back(line.substr(start, sp == std::string_view::npos ? sp : sp - start));
      if (sp == std::string_view::npos) break;
      start = sp + 1;
    }
    for (const auto& f : fields) {
      if (f.empty()) fail("malformed line '" + std::string(line) + "', expected " + expected);
    }
    return fields;
  }

  bool at_end() const { return pos_ >= text_.size(); }
  std::size_t bytes_left() const { return at_end() ? 0 : text_.size() - pos_; }

  [[noreturn]] void fail_on_next_line(const std::string& message) {
    ++line_no_;
    fail(message);
  }

  std::int64_t parse_int(std::string_view field, std::int64_t lo, std::int64_t hi,
                         const std::string& what) const {
    std::int64_t v = 0;
    const auto [p, ec] = std::from_chars(field.data(), field.data() + field.size(), v);
    if (ec != std::errc() || p != field.data() + field.size()) {
      fail("expected an integer for " + what + ", got '" + std::string(field) + "'");
    }
    if (v < lo || v > hi) {
      fail(what + " " + std::to_string(v) + " out of range [" + std::to_string(lo) + ", " +
           std::to_string(hi) + "]");
    }
    return v;
  }

  // Parses "<keyword> <integer>".
  std::int64_t keyword_int(std::string_view keyword, std::int64_t lo, std::int64_t hi) {
    // Built with append: GCC 12's -Wrestrict misfires on `"'" + std::string(...)` at -O3.
    std::string expected;
    expected.append("'").append(keyword).append(" <integer>'");
    const auto f = next(expected);
    if (f.size() != 2 || f[0] != keyword) fail("expected " + expected);
    return parse_int(f[1], lo, hi, std::string(keyword));
  }

 private:
  std::string path_;
  std::string text_;
  std::size_t pos_ = 0;
  int line_no_ = 0;
};

}  // namespace

// -------------------------------------------------------------------------------------------------

std::vector<std::string> BpeSpecialTokens::all() const {
  std::vector<std::string> out{eos, pad};
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

std::vector<std::string_view> bpe_pretokenize(std::string_view text) {
  std::vector<std::string_view> chunks;
  for_each_chunk(text, [&](std::string_view c) { chunks.push_back(c); });
  return chunks;
}

namespace detail {

struct BpeChunkCache {
  // Cleared wholesale when full: cheaper than LRU bookkeeping, and the frequent chunks come
  // straight back.
  static constexpr std::size_t kMaxEntries = 1 << 18;
  static constexpr std::size_t kMaxChunkBytes = 128;
  std::mutex mutex;
  std::unordered_map<std::string, std::vector<std::int32_t>, BpeStringHash, std::equal_to<>> map;
};

std::vector<std::int32_t> bpe_merge_scan(const BpeTokenizer& tok, std::string_view chunk) {
  std::vector<std::int32_t> ids(chunk.begin(), chunk.end());
  for (auto& id : ids) id = static_cast<unsigned char>(id);
  while (ids.size() >= 2) {
    std::int32_t best = std::numeric_limits<std::int32_t>::max();
    for (std::size_t i = 0; i + 1 < ids.size(); ++i) {
      const std::int32_t m = tok.merged_id(ids[i], ids[i + 1]);
      if (m >= 0 && m < best) best = m;
    }
    if (best == std::numeric_limits<std::int32_t>::max()) break;
    const auto [a, b] = tok.merges()[static_cast<std::size_t>(best - kBytes)];
    std::size_t w = 0;
    for (std::size_t r = 0; r < ids.size();) {
      if (r + 1 < ids.size() && ids[r] == a && ids[r + 1] == b) {
        ids[w++] = best;
        r += 2;
      } else {
        ids[w++] = ids[r++];
      }
    }
    ids.resize(w);
  }
  return ids;
}

std::vector<std::int32_t> bpe_merge_heap(const BpeTokenizer& tok, std::string_view chunk) {
  // Doubly linked list over the byte positions; a min-heap of (merged id, left position).
  // Popping leftmost-first among equal ids reproduces the left-to-right pass of the scan
  // version, and any pair formed by a merge has a larger id than the merge that formed it,
  // so stale heap entries are recognised by re-looking up the pair at pop time.
  const auto n = static_cast<std::int32_t>(chunk.size());
  std::vector<std::int32_t> tok_id(chunk.size()), prev(chunk.size()), next(chunk.size());
  for (std::int32_t i = 0; i < n; ++i) {
    tok_id[i] = static_cast<unsigned char>(chunk[i]);
    prev[i] = i - 1;
    next[i] = i + 1;
  }
  using Entry = std::pair<std::int32_t, std::int32_t>;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap;
  auto push = [&](std::int32_t left) {
    const std::int32_t right = next[left];
    if (right >= n) return;
    const std::int32_t m = tok.merged_id(tok_id[left], tok_id[right]);
    if (m >= 0) heap.emplace(m, left);
  };
  for (std::int32_t i = 0; i + 1 < n; ++i) push(i);
  std::vector<bool> alive(chunk.size(), true);
  while (!heap.empty()) {
    const auto [m, left] = heap.top();
    heap.pop();
    if (!alive[left] || next[left] >= n) continue;
    const std::int32_t right = next[left];
    if (tok.merged_id(tok_id[left], tok_id[right]) != m) continue;
    tok_id[left] = m;
    alive[right] = false;
    next[left] = next[right];
    if (next[left] < n) prev[next[left]] = left;
    if (prev[left] >= 0) push(prev[left]);
    push(left);
  }
  std::vector<std::int32_t> ids;
  for (std::int32_t i = 0; i < n; i = next[i]) ids.push_back(tok_id[i]);
  return ids;
}

}  // namespace detail

// -------------------------------------------------------------------------------------------------
// BpeTokenizer

BpeTokenizer::BpeTokenizer() : BpeTokenizer({}, BpeSpecialTokens{}) {}

BpeTokenizer::BpeTokenizer(std::vector<std::pair<std::int32_t, std::int32_t>> merges,
                           BpeSpecialTokens specials)
    : merges_(std::move(merges)),
      specials_(std::move(specials)),
      cache_(std::make_shared<detail::BpeChunkCache>()) {
  validate_specials(specials_);
  special_strings_ = specials_.all();
  vocab_.reserve(kBytes + merges_.size() + special_strings_.size());
  for (int b = 0; b < kBytes; ++b) vocab_.emplace_back(1, static_cast<char>(b));
  ranks_.reserve(merges_.size());
  for (std::size_t k = 0; k < merges_.size(); ++k) {
    const auto [a, b] = merges_[k];
    const auto id = static_cast<std::int32_t>(kBytes + k);
    if (a < 0 || a >= id || b < 0 || b >= id) {
      throw TokenizerError("BPE merge " + std::to_string(k) + " (" + std::to_string(a) + ", " +
                           std::to_string(b) + ") refers to an id outside [0, " +
                           std::to_string(id) + ")");
    }
    if (!ranks_.emplace(pair_key(a, b), static_cast<std::int32_t>(k)).second) {
      throw TokenizerError("BPE merge " + std::to_string(k) + " (" + std::to_string(a) + ", " +
                           std::to_string(b) + ") duplicates an earlier merge");
    }
    vocab_.push_back(vocab_[a] + vocab_[b]);
  }
  for (const auto& s : special_strings_) vocab_.push_back(s);
}

BpeTokenizer BpeTokenizer::train(const std::vector<std::string>& texts, int vocab_size,
                                 BpeSpecialTokens specials) {
  return train(texts.begin(), texts.end(), vocab_size, std::move(specials));
}

std::int32_t BpeTokenizer::special_id(std::string_view token) const {
  for (std::size_t i = 0; i < special_strings_.size(); ++i) {
    if (special_strings_[i] == token) return first_special_id() + static_cast<std::int32_t>(i);
  }
  return -1;
}

const std::string& BpeTokenizer::token_bytes(std::int32_t id) const {
  if (id < 0 || id >= vocab_size()) {
    throw TokenizerError("BPE token id " + std::to_string(id) + " outside [0, " +
                         std::to_string(vocab_size()) + ")");
  }
  return vocab_[static_cast<std::size_t>(id)];
}

std::int32_t BpeTokenizer::merged_id(std::int32_t left, std::int32_t right) const {
  const auto it = ranks_.find(pair_key(left, right));
  return it == ranks_.end() ? -1 : kBytes + it->second;
}

void BpeTokenizer::encode_chunk(std::string_view chunk, std::vector<std::int32_t>& out) const {
  // Chunks above this length take the O(n log n) heap path; below it the rescan is faster.
  constexpr std::size_t kHeapThreshold = 64;
  if (chunk.size() == 1 || merges_.empty()) {
    for (const char c : chunk) out.push_back(static_cast<unsigned char>(c));
    return;
  }
  auto compute = [&] {
    return chunk.size() > kHeapThreshold ? detail::bpe_merge_heap(*this, chunk)
                                         : detail::bpe_merge_scan(*this, chunk);
  };
  if (chunk.size() > detail::BpeChunkCache::kMaxChunkBytes) {
    const auto ids = compute();
    out.insert(out.end(), ids.begin(), ids.end());
    return;
  }
  {
    std::lock_guard lock(cache_->mutex);
    const auto it = cache_->map.find(chunk);
    if (it != cache_->map.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  auto ids = compute();
  out.insert(out.end(), ids.begin(), ids.end());
  std::lock_guard lock(cache_->mutex);
  if (cache_->map.size() >= detail::BpeChunkCache::kMaxEntries) cache_->map.clear();
  cache_->map.emplace(std::string(chunk), std::move(ids));
}

void BpeTokenizer::encode_append(std::string_view text, std::vector<std::int32_t>& out,
                                 bool allow_special) const {
  auto plain = [&](std::string_view segment) {
    for_each_chunk(segment, [&](std::string_view chunk) { encode_chunk(chunk, out); });
  };
  if (!allow_special) {
    plain(text);
    return;
  }
  split_specials(text, special_strings_, plain, [&](std::size_t s) {
    out.push_back(first_special_id() + static_cast<std::int32_t>(s));
  });
}

std::vector<std::int32_t> BpeTokenizer::encode(std::string_view text, bool allow_special) const {
  std::vector<std::int32_t> out;
  out.reserve(text.size() / 3 + 1);
  encode_append(text, out, allow_special);
  return out;
}

std::string BpeTokenizer::decode(std::span<const std::int32_t> ids) const {
  std::string out;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const std::int32_t id = ids[i];
    if (id < 0 || id >= vocab_size()) {
      throw TokenizerError("BPE decode: token id " + std::to_string(id) + " at position " +
                           std::to_string(i) + " outside [0, " + std::to_string(vocab_size()) +
                           ")");
    }
    out += vocab_[static_cast<std::size_t>(id)];
  }
  return out;
}

void BpeTokenizer::save(const std::string& path) const {
  std::ostringstream os;
  os << kMagic << ' ' << kFormatVersion << '\n';
  os << "vocab_size " << vocab_size() << '\n';
  os << "merges " << num_merges() << '\n';
  os << "specials " << special_strings_.size() << '\n';
  for (std::size_t i = 0; i < special_strings_.size(); ++i) {
    const char* role = i == 0 ? "eos" : i == 1 ? "pad" : "extra";
    os << "special " << first_special_id() + static_cast<std::int32_t>(i) << ' ' << role << ' '
       << escape_bytes(special_strings_[i]) << '\n';
  }
  for (std::size_t k = 0; k < merges_.size(); ++k) {
    os << merges_[k].first << ' ' << merges_[k].second << ' '
       << escape_bytes(vocab_[kBytes + k]) << '\n';
  }
  os << "end\n";
  const std::string data = os.str();

  try {
    write_file_atomically(path, data);
  } catch (const AtomicFileError& e) {
    throw TokenizerError(std::string("BPE tokenizer: ") + e.what());
  }
}

BpeTokenizer BpeTokenizer::load(const std::string& path) {
  std::string text, error;
  if (!read_file_bytes(path, text, error)) throw TokenizerError("BPE tokenizer: " + error);
  LineReader r(path, std::move(text));

  {
    const std::string expected = "header '" + std::string(kMagic) + " " +
                                 std::to_string(kFormatVersion) + "'";
    const auto f = r.next(expected);
    if (f.size() != 2 || f[0] != kMagic) r.fail("not a mixgrad BPE file, expected " + expected);
    if (f[1] != std::to_string(kFormatVersion)) {
      r.fail("unsupported format version '" + std::string(f[1]) + "', expected " +
             std::to_string(kFormatVersion));
    }
  }
  constexpr std::int64_t kMaxId = std::numeric_limits<std::int32_t>::max();
  const std::int64_t vocab_size = r.keyword_int("vocab_size", kBytes + 2, kMaxId);
  const std::int64_t num_merges = r.keyword_int("merges", 0, vocab_size - kBytes - 2);
  const std::int64_t num_specials = r.keyword_int("specials", 2, vocab_size - kBytes);
  if (vocab_size != kBytes + num_merges + num_specials) {
    r.fail("vocab_size " + std::to_string(vocab_size) + " != 256 + merges " +
           std::to_string(num_merges) + " + specials " + std::to_string(num_specials));
  }

  BpeSpecialTokens specials;
  std::string bytes;
  for (std::int64_t i = 0; i < num_specials; ++i) {
    const std::string expected = "'special <id> <role> <bytes>' (" + std::to_string(i + 1) +
                                 " of " + std::to_string(num_specials) + ")";
    const auto f = r.next(expected);
    if (f.size() != 4 || f[0] != "special") r.fail("expected " + expected);
    const std::int64_t want_id = kBytes + num_merges + i;
    r.parse_int(f[1], want_id, want_id, "special token id");
    const std::string_view want_role = i == 0 ? "eos" : i == 1 ? "pad" : "extra";
    if (f[2] != want_role) {
      r.fail("special token role '" + std::string(f[2]) + "', expected '" +
             std::string(want_role) + "'");
    }
    if (!unescape_bytes(f[3], bytes)) r.fail("bad escaped byte string '" + std::string(f[3]) + "'");
    if (i == 0) {
      specials.eos = bytes;
    } else if (i == 1) {
      specials.pad = bytes;
    } else {
      specials.extra.push_back(bytes);
    }
  }
  try {
    validate_specials(specials);
  } catch (const TokenizerError& e) {
    r.fail(e.what());
  }

  // The counts come from the file: reserve no more than its remaining lines can hold (a merge
  // line takes at least 6 bytes), so a corrupt count fails at the line where the file ends
  // instead of allocating gigabytes first.
  const auto reservable = static_cast<std::size_t>(
      std::min<std::int64_t>(num_merges, static_cast<std::int64_t>(r.bytes_left() / 6)));
  std::vector<std::pair<std::int32_t, std::int32_t>> merges;
  merges.reserve(reservable);
  std::vector<std::string> vocab;
  vocab.reserve(kBytes + reservable);
  for (int b = 0; b < kBytes; ++b) vocab.emplace_back(1, static_cast<char>(b));
  for (std::int64_t k = 0; k < num_merges; ++k) {
    const std::string expected = "merge '<left> <right> <bytes>' (" + std::to_string(k + 1) +
                                 " of " + std::to_string(num_merges) + ")";
    const auto f = r.next(expected);
    if (f.size() != 3) r.fail("expected " + expected);
    const std::int64_t id = kBytes + k;
    const auto a = static_cast<std::int32_t>(r.parse_int(f[0], 0, id - 1, "left id"));
    const auto b = static_cast<std::int32_t>(r.parse_int(f[1], 0, id - 1, "right id"));
    if (!unescape_bytes(f[2], bytes)) r.fail("bad escaped byte string '" + std::string(f[2]) + "'");
    std::string joined = vocab[a] + vocab[b];
    if (bytes != joined) {
      r.fail("merge bytes '" + std::string(f[2]) + "' do not match tokens " + std::to_string(a) +
             " + " + std::to_string(b) + " = '" + escape_bytes(joined) + "'");
    }
    vocab.push_back(std::move(joined));
    merges.emplace_back(a, b);
  }
  {
    const auto f = r.next("'end'");
    if (f.size() != 1 || f[0] != "end") r.fail("expected 'end' after the last merge");
  }
  if (!r.at_end()) r.fail_on_next_line("unexpected content after 'end'");
  try {
    return BpeTokenizer(std::move(merges), std::move(specials));
  } catch (const TokenizerError& e) {
    // Only a duplicated merge can get here; line numbers are not tracked that far.
    throw TokenizerError("BPE tokenizer file " + path + ": " + e.what());
  }
}

// -------------------------------------------------------------------------------------------------
// BpeTrainer

BpeTrainer::BpeTrainer(BpeSpecialTokens specials)
    : specials_(std::move(specials)), special_strings_(specials_.all()) {
  validate_specials(specials_);
}

void BpeTrainer::add_document(std::string_view text) {
  auto count = [&](std::string_view chunk) {
    const auto it = chunk_counts_.find(chunk);
    if (it != chunk_counts_.end()) {
      ++it->second;
    } else {
      chunk_counts_.emplace(std::string(chunk), 1);
    }
  };
  split_specials(
      text, special_strings_, [&](std::string_view segment) { for_each_chunk(segment, count); },
      [](std::size_t) {});
}

BpeTokenizer BpeTrainer::train(int vocab_size) const {
  const auto base = static_cast<std::int64_t>(kBytes + special_strings_.size());
  if (vocab_size < base) {
    throw TokenizerError("BPE train: vocab_size " + std::to_string(vocab_size) +
                         " is smaller than the 256 byte tokens plus " +
                         std::to_string(special_strings_.size()) + " special tokens");
  }
  const auto target_merges = static_cast<std::size_t>(vocab_size - base);

  // Distinct chunks with their counts; single bytes have no pairs and never change.
  struct Word {
    std::vector<std::int32_t> ids;
    std::int64_t count;
  };
  std::vector<Word> words;
  words.reserve(chunk_counts_.size());
  for (const auto& [chunk, n] : chunk_counts_) {
    if (chunk.size() < 2) continue;
    Word w{std::vector<std::int32_t>(chunk.size()), static_cast<std::int64_t>(n)};
    for (std::size_t i = 0; i < chunk.size(); ++i) w.ids[i] = static_cast<unsigned char>(chunk[i]);
    words.push_back(std::move(w));
  }

  // pair -> occurrences weighted by chunk count, and pair -> words that may contain it. The
  // word lists are append-only (a word that lost the pair stays listed and is skipped when
  // scanned), which is cheaper than keeping them exact.
  std::unordered_map<std::uint64_t, std::int64_t> pair_count;
  std::unordered_map<std::uint64_t, std::vector<std::int32_t>> where;
  auto note_word = [&](std::uint64_t key, std::int32_t w) {
    auto& list = where[key];
    if (list.empty() || list.back() != w) list.push_back(w);
  };
  for (std::size_t w = 0; w < words.size(); ++w) {
    const auto& ids = words[w].ids;
    for (std::size_t i = 0; i + 1 < ids.size(); ++i) {
      const std::uint64_t key = pair_key(ids[i], ids[i + 1]);
      pair_count[key] += words[w].count;
      note_word(key, static_cast<std::int32_t>(w));
    }
  }

  // Max-heap on count, then lowest pair. Entries are never updated in place: a merge only
  // lowers the counts of existing pairs (new adjacencies always involve the new token, whose
  // pairs are pushed fresh), so an entry's count is an upper bound and is re-checked on pop.
  struct Entry {
    std::int64_t count;
    std::uint64_t key;
    bool operator<(const Entry& o) const { return count != o.count ? count < o.count : key > o.key; }
  };
  std::vector<Entry> initial;
  initial.reserve(pair_count.size());
  for (const auto& [key, c] : pair_count) initial.push_back({c, key});
  std::priority_queue<Entry> heap(std::less<Entry>{}, std::move(initial));

  std::vector<std::pair<std::int32_t, std::int32_t>> merges;
  merges.reserve(target_merges);
  std::vector<std::int32_t> seen(words.size(), -1);  // last merge that rewrote each word
  std::vector<std::uint64_t> touched;
  while (merges.size() < target_merges && !heap.empty()) {
    const Entry top = heap.top();
    heap.pop();
    const auto it = pair_count.find(top.key);
    if (it == pair_count.end() || it->second <= 0) continue;
    if (it->second != top.count) {
      heap.push({it->second, top.key});
      continue;
    }
    const std::uint64_t merged_key = top.key;
    const std::int32_t a = key_left(merged_key);
    const std::int32_t b = key_right(merged_key);
    const auto t = static_cast<std::int32_t>(kBytes + merges.size());
    const auto m = static_cast<std::int32_t>(merges.size());
    merges.emplace_back(a, b);
    pair_count.erase(it);
    const std::vector<std::int32_t> affected = std::move(where[merged_key]);
    where.erase(merged_key);

    touched.clear();
    for (const std::int32_t w : affected) {
      if (seen[w] == m) continue;
      seen[w] = m;
      auto& ids = words[w].ids;
      const std::int64_t c = words[w].count;
      auto dec = [&](std::int32_t l, std::int32_t r) {
        const std::uint64_t key = pair_key(l, r);
        if (key != merged_key) pair_count[key] -= c;
      };
      auto inc = [&](std::int32_t l, std::int32_t r) {
        const std::uint64_t key = pair_key(l, r);
        pair_count[key] += c;
        note_word(key, w);
        touched.push_back(key);
      };
      // One left-to-right pass, compacting in place. The neighbour pairs are adjusted as if
      // each occurrence were the last; when the next occurrence follows directly, its own
      // adjustment cancels the provisional (t, a) pair recorded here.
      std::size_t out = 0;
      const std::size_t n = ids.size();
      for (std::size_t r = 0; r < n;) {
        if (r + 1 < n && ids[r] == a && ids[r + 1] == b) {
          if (out > 0) {
            dec(ids[out - 1], a);
            inc(ids[out - 1], t);
          }
          if (r + 2 < n) {
            dec(b, ids[r + 2]);
            inc(t, ids[r + 2]);
          }
          ids[out++] = t;
          r += 2;
        } else {
          ids[out++] = ids[r++];
        }
      }
      ids.resize(out);
    }
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    for (const std::uint64_t key : touched) {
      const std::int64_t c = pair_count[key];
      if (c > 0) heap.push({c, key});
    }
  }
  return BpeTokenizer(std::move(merges), specials_);
}

}  // namespace mg
