#include "core/safetensors.h"
#include "core/utf8.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <set>

#include "core/backend.h"

namespace mg {

// The format stores little-endian bytes; we copy tensor memory verbatim.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace {

// A header bigger than this is certainly not a checkpoint's (the reference implementation's limit).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error("safetensors: " + path + ": " + what);
}

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

// Length of the UTF-8 sequence starting at s[i], or 0 when it is invalid (overlong forms,
// surrogates and code points past U+10FFFF are invalid, as RFC 3629 says).
size_t utf8_sequence_length(const std::string& s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) n = 2, cp = c & 0x1F;
  else if ((c & 0xF0) == 0xE0) n = 3, cp = c & 0x0F;
  else if ((c & 0xF8) == 0xF0) n = 4, cp = c & 0x07;
  else return 0;
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_sequence_length(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

// ---- a small, strict JSON parser (RFC 8259) for the header ----------------------------------

struct Json {
  enum class Kind { null, boolean, number, string, array, object };
  Kind kind = Kind::null;
  bool boolean = false;
  std::string text;  // a string's value, or a number's literal text
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> members;  // in document order; keys are unique
};

const char* kind_name(Json::Kind k) {
  switch (k) {
    case Json::Kind::null: return "null";
    case Json::Kind::boolean: return "a boolean";
    case Json::Kind::number: return "a number";
    case Json::Kind::string: return "a string";
    case Json::Kind::array: return "an array";
    case Json::Kind::object: return "an object";
  }
  return "?";
}

class JsonParser {
 public:
  JsonParser(const std::string& text, const std::string& path) : s_(text), path_(path) {}

  Json parse_document() {
    skip_ws();
    Json v = parse_value(0);
    skip_ws();
    if (pos_ != s_.size()) error("unexpected characters after the top-level value");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 64;

  [[noreturn]] void error(const std::string& what) const {
    fail(path_, "malformed JSON header at byte " + std::to_string(pos_) + ": " + what);
  }
  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[pos_]; }
  void skip_ws() {
    while (!at_end() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  void expect(char c) {
    if (peek() != c || at_end()) error(std::string("expected '") + c + "'" + found());
    ++pos_;
  }
  std::string found() const {
    if (at_end()) return ", found the end of the header";
    const unsigned char c = static_cast<unsigned char>(s_[pos_]);
    if (c >= 0x20 && c < 0x7f) return std::string(", found '") + char(c) + "'";
    return ", found byte " + std::to_string(int(c));
  }

  Json parse_value(int depth) {
    if (depth > kMaxDepth) error("nesting deeper than " + std::to_string(kMaxDepth));
    Json v;
    const char c = peek();
    if (at_end()) error("expected a value, found the end of the header");
    if (c == '{') {
      parse_object(v, depth);
    } else if (c == '[') {
      parse_array(v, depth);
    } else if (c == '"') {
      v.kind = Json::Kind::string;
      v.text = parse_string();
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      v.kind = Json::Kind::number;
      v.text = parse_number();
    } else if (literal("true")) {
      v.kind = Json::Kind::boolean;
      v.boolean = true;
    } else if (literal("false")) {
      v.kind = Json::Kind::boolean;
    } else if (literal("null")) {
      v.kind = Json::Kind::null;
    } else {
      error("expected a value" + found());
    }
    return v;
  }

  bool literal(const char* word) {
    const size_t n = std::strlen(word);
    if (s_.compare(pos_, n, word) != 0) return false;
    pos_ += n;
    return true;
  }

  void parse_object(Json& v, int depth) {
    v.kind = Json::Kind::object;
    expect('{');
    skip_ws();
    if (peek() == '}' && !at_end()) {
      ++pos_;
      return;
    }
    std::set<std::string> seen;
    for (;;) {
      skip_ws();
      if (peek() != '"' || at_end()) error("expected a quoted key" + found());
      const size_t key_pos = pos_;
      std::string key = parse_string();
      if (!seen.insert(key).second) {
        pos_ = key_pos;
        error("duplicate key " + quoted(key) + (depth == 0 ? " (a tensor name may appear only once)" : ""));
      }
      skip_ws();
      expect(':');
      skip_ws();
      Json member = parse_value(depth + 1);
      v.members.emplace_back(std::move(key), std::move(member));
      skip_ws();
      if (peek() == ',' && !at_end()) {
        ++pos_;
        continue;
      }
      expect('}');
      return;
    }
  }

  void parse_array(Json& v, int depth) {
    v.kind = Json::Kind::array;
    expect('[');
    skip_ws();
    if (peek() == ']' && !at_end()) {
      ++pos_;
      return;
    }
    for (;;) {
      skip_ws();
      v.items.push_back(parse_value(depth + 1));
      skip_ws();
      if (peek() == ',' && !at_end()) {
        ++pos_;
        continue;
      }
      expect(']');
      return;
    }
  }

  std::string parse_string() {
    expect('"');
    std::string out;
    for (;;) {
      if (at_end()) error("unterminated string");
      const unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c < 0x20) error("unescaped control character in a string");
      if (c == '\\') {
        ++pos_;
        const std::string err = decode_json_escape(s_, pos_, out);
        if (!err.empty()) error(err);
        continue;
      }
      const size_t n = utf8_sequence_length(s_, pos_);
      if (n == 0) error("invalid UTF-8 in a string");
      out.append(s_, pos_, n);
      pos_ += n;
    }
  }

  std::string parse_number() {
    const size_t start = pos_;
    const auto digit = [&] { return !at_end() && s_[pos_] >= '0' && s_[pos_] <= '9'; };
    if (peek() == '-') ++pos_;
    if (!digit()) error("expected a digit");
    if (s_[pos_] == '0') {
      ++pos_;
      if (digit()) error("leading zero in a number");
    } else {
      while (digit()) ++pos_;
    }
    if (peek() == '.' && !at_end()) {
      ++pos_;
      if (!digit()) error("expected a digit after '.'");
      while (digit()) ++pos_;
    }
    if ((peek() == 'e' || peek() == 'E') && !at_end()) {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!digit()) error("expected a digit in the exponent");
      while (digit()) ++pos_;
    }
    return s_.substr(start, pos_ - start);
  }

  const std::string& s_;
  const std::string& path_;
  size_t pos_ = 0;
};

// ---- header schema ------------------------------------------------------------------------

struct FileDType {
  const char* name;
  DType dtype;      // what the tensor becomes in memory
  size_t file_size;  // bytes per element in the file
};
constexpr FileDType kFileDTypes[] = {
    {"F32", DType::f32, 4}, {"F64", DType::f64, 8}, {"I32", DType::i32, 4},
    {"BF16", DType::bf16, 2}, {"I64", DType::i32, 8},
};

const char* file_dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::i32: return "I32";
    case DType::bf16: return "BF16";
  }
  return "?";
}

struct Entry {
  std::string name;
  const FileDType* dtype = nullptr;
  Shape shape;
  uint64_t begin = 0, end = 0;
};

// A non-negative JSON integer that fits int64 (shapes and offsets); `what` names it in errors.
uint64_t as_count(const Json& v, const std::string& path, const std::string& what) {
  if (v.kind != Json::Kind::number) fail(path, what + " must be a non-negative integer, found " + kind_name(v.kind));
  if (v.text.find_first_not_of("0123456789") != std::string::npos)
    fail(path, what + " must be a non-negative integer, found " + v.text);
  if (v.text.size() > 18) fail(path, what + " = " + v.text + " is too large");
  return std::stoull(v.text);
}

Entry parse_entry(const std::string& name, const Json& v, const std::string& path) {
  const std::string who = "tensor " + quoted(name);
  if (v.kind != Json::Kind::object) fail(path, who + ": expected an object, found " + kind_name(v.kind));
  Entry e;
  e.name = name;
  const Json *dtype = nullptr, *shape = nullptr, *offsets = nullptr;
  for (const auto& [key, val] : v.members) {
    if (key == "dtype") dtype = &val;
    else if (key == "shape") shape = &val;
    else if (key == "data_offsets") offsets = &val;
    else fail(path, who + ": unknown key " + quoted(key) + " (expected dtype, shape, data_offsets)");
  }
  if (!dtype || !shape || !offsets)
    fail(path, who + ": missing " + (!dtype ? "dtype" : !shape ? "shape" : "data_offsets"));

  if (dtype->kind != Json::Kind::string) fail(path, who + ": dtype must be a string, found " + kind_name(dtype->kind));
  for (const auto& d : kFileDTypes)
    if (dtype->text == d.name) e.dtype = &d;
  if (!e.dtype)
    fail(path, who + ": unknown or unsupported dtype " + quoted(dtype->text) + " (supported: F32, F64, I32, BF16, I64)");

  if (shape->kind != Json::Kind::array) fail(path, who + ": shape must be an array, found " + kind_name(shape->kind));
  if (shape->items.size() > size_t(kMaxDims))
    fail(path, who + ": shape has " + std::to_string(shape->items.size()) + " dims, at most " +
                   std::to_string(kMaxDims) + " supported");
  uint64_t count = 1;
  bool overflow = false;
  for (const Json& d : shape->items) {
    const uint64_t n = as_count(d, path, who + ": shape entry");
    e.shape.push_back(int64_t(n));
    if (n != 0 && count > std::numeric_limits<uint64_t>::max() / 8 / n) overflow = true;
    count *= n;
  }

  if (offsets->kind != Json::Kind::array || offsets->items.size() != 2)
    fail(path, who + ": data_offsets must be an array [begin, end]");
  e.begin = as_count(offsets->items[0], path, who + ": data_offsets begin");
  e.end = as_count(offsets->items[1], path, who + ": data_offsets end");
  if (e.end < e.begin)
    fail(path, who + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "] end before begin");
  if (overflow || e.end - e.begin != count * e.dtype->file_size)
    fail(path, who + ": shape " + shape_str(e.shape) + " of " + e.dtype->name + " needs " +
                   (overflow ? std::string("more bytes than fit in 64 bits")
                             : std::to_string(count * e.dtype->file_size) + " bytes") +
                   ", but data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "] hold " +
                   std::to_string(e.end - e.begin));
  return e;
}

// The data section must be covered exactly once: no tensor outside it, no overlaps, no holes.
void check_layout(std::vector<Entry> entries, uint64_t data_bytes, const std::string& path) {
  for (const Entry& e : entries)
    if (e.end > data_bytes)
      fail(path, "tensor " + quoted(e.name) + ": data_offsets [" + std::to_string(e.begin) + ", " +
                     std::to_string(e.end) + "] go beyond the data section (" + std::to_string(data_bytes) +
                     " bytes; file truncated?)");
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  uint64_t covered = 0;
  const Entry* prev = nullptr;
  for (const Entry& e : entries) {
    if (e.begin < covered)
      fail(path, "tensors " + quoted(prev->name) + " and " + quoted(e.name) + " overlap (data_offsets [" +
                     std::to_string(prev->begin) + ", " + std::to_string(prev->end) + "] and [" +
                     std::to_string(e.begin) + ", " + std::to_string(e.end) + "])");
    if (e.begin > covered)
      fail(path, "data bytes [" + std::to_string(covered) + ", " + std::to_string(e.begin) +
                     ") belong to no tensor");
    covered = e.end;
    prev = &e;
  }
  if (covered != data_bytes)
    fail(path, std::to_string(data_bytes - covered) + " bytes after the last tensor belong to no tensor");
}

// ---- POSIX file helpers --------------------------------------------------------------------

std::string errno_text() { return std::strerror(errno); }

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { close(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int close() {
    const int r = fd_ >= 0 ? ::close(fd_) : 0;
    fd_ = -1;
    return r;
  }

 private:
  int fd_;
};

void read_exact(int fd, void* dst, uint64_t n, uint64_t offset, const std::string& path) {
  auto* p = static_cast<char*>(dst);
  while (n > 0) {
    const ssize_t r = ::pread(fd, p, size_t(std::min<uint64_t>(n, 1u << 30)), off_t(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail(path, "read failed: " + errno_text());
    if (r == 0) fail(path, "file truncated (ended while reading tensor data)");
    p += r;
    n -= uint64_t(r);
    offset += uint64_t(r);
  }
}

void write_all(int fd, const void* src, size_t n, const std::string& tmp) {
  const auto* p = static_cast<const char*>(src);
  while (n > 0) {
    const ssize_t r = ::write(fd, p, std::min<size_t>(n, 1u << 30));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail(tmp, "write failed: " + errno_text());
    p += r;
    n -= size_t(r);
  }
}

void append_json_string(std::string& out, const std::string& s) {
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c < 0x20) {
      static const char* hex = "0123456789abcdef";
      out += "\\u00";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += ch;
    }
  }
  out += '"';
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

// ---- SafetensorsFile -----------------------------------------------------------------------

bool SafetensorsFile::contains(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return true;
  return false;
}

const Tensor& SafetensorsFile::get(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  // Suggest names within a few edits, or that contain / are contained in the one asked for.
  std::vector<std::pair<size_t, std::string>> near;
  const size_t limit = std::max<size_t>(3, name.size() / 3);
  for (const auto& [n, t] : tensors) {
    const size_t d = edit_distance(name, n);
    const bool related = !name.empty() && (n.find(name) != std::string::npos || name.find(n) != std::string::npos);
    if (d <= limit || related) near.emplace_back(d, n);
  }
  std::sort(near.begin(), near.end());
  std::string msg = "safetensors: " + (path.empty() ? std::string() : path + ": ") + "no tensor named " + quoted(name) + " (the file has " +
                    std::to_string(tensors.size()) + " tensors)";
  if (!near.empty()) {
    msg += "; closest:";
    for (size_t i = 0; i < near.size() && i < 5; ++i) msg += (i ? ", " : " ") + quoted(near[i].second);
  } else if (!tensors.empty()) {
    msg += "; first names:";
    for (size_t i = 0; i < tensors.size() && i < 5; ++i) msg += (i ? ", " : " ") + quoted(tensors[i].first);
  }
  throw Error(msg);
}

// ---- reading -------------------------------------------------------------------------------

SafetensorsFile load_safetensors(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) fail(path, "cannot open: " + errno_text());
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail(path, "cannot stat: " + errno_text());
  if (!S_ISREG(st.st_mode)) fail(path, "not a regular file");
  const uint64_t file_size = uint64_t(st.st_size);
  if (file_size < 8)
    fail(path, "file truncated: " + std::to_string(file_size) + " bytes, shorter than the 8-byte header length");

  uint64_t header_len = 0;
  read_exact(fd.get(), &header_len, 8, 0, path);
  if (header_len > file_size - 8)
    fail(path, "header length " + std::to_string(header_len) + " goes beyond the file (" +
                   std::to_string(file_size) + " bytes; truncated or not a safetensors file?)");
  if (header_len > kMaxHeaderBytes)
    fail(path, "header length " + std::to_string(header_len) + " exceeds the limit of " +
                   std::to_string(kMaxHeaderBytes) + " bytes");
  std::string header(size_t(header_len), '\0');
  read_exact(fd.get(), header.data(), header_len, 8, path);

  const Json root = JsonParser(header, path).parse_document();
  if (root.kind != Json::Kind::object) fail(path, "header must be a JSON object, found " + std::string(kind_name(root.kind)));

  SafetensorsFile file;
  file.path = path;
  std::vector<Entry> entries;
  for (const auto& [key, val] : root.members) {
    if (key == "__metadata__") {
      if (val.kind != Json::Kind::object)
        fail(path, "__metadata__ must be an object of strings, found " + std::string(kind_name(val.kind)));
      for (const auto& [mk, mv] : val.members) {
        if (mv.kind != Json::Kind::string)
          fail(path, "__metadata__ value for " + quoted(mk) + " must be a string, found " + kind_name(mv.kind));
        file.metadata[mk] = mv.text;
      }
      continue;
    }
    entries.push_back(parse_entry(key, val, path));
  }
  const uint64_t data_start = 8 + header_len;
  check_layout(entries, file_size - data_start, path);

  file.tensors.reserve(entries.size());
  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(e.shape, TensorOptions{e.dtype->dtype});
    const uint64_t nbytes = e.end - e.begin;
    if (nbytes > 0) {
      if (e.dtype->file_size == dtype_size(e.dtype->dtype)) {
        read_exact(fd.get(), t.raw_data(), nbytes, data_start + e.begin, path);
      } else {  // I64 -> i32
        std::vector<int64_t> wide(size_t(t.numel()));
        read_exact(fd.get(), wide.data(), nbytes, data_start + e.begin, path);
        auto* out = static_cast<int32_t*>(t.raw_data());
        for (size_t i = 0; i < wide.size(); ++i) {
          if (wide[i] < std::numeric_limits<int32_t>::min() || wide[i] > std::numeric_limits<int32_t>::max())
            fail(path, "tensor " + quoted(e.name) + ": I64 value " + std::to_string(wide[i]) + " at element " +
                           std::to_string(i) + " does not fit i32");
          out[i] = int32_t(wide[i]);
        }
      }
    }
    file.tensors.emplace_back(e.name, std::move(t));
  }
  return file;
}

// ---- writing -------------------------------------------------------------------------------

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Validate everything before touching the disk.
  std::set<std::string> names;
  for (const auto& [name, t] : tensors) {
    if (name.empty()) fail(path, "cannot save a tensor with an empty name");
    if (name == "__metadata__") fail(path, "\"__metadata__\" is reserved and cannot name a tensor");
    if (!valid_utf8(name)) fail(path, "tensor name " + quoted(name) + " is not valid UTF-8");
    if (!names.insert(name).second) fail(path, "duplicate tensor name " + quoted(name));
    if (!t.defined()) fail(path, "tensor " + quoted(name) + " is undefined");
  }
  for (const auto& [k, v] : metadata)
    if (!valid_utf8(k) || !valid_utf8(v)) fail(path, "metadata entry " + quoted(k) + " is not valid UTF-8");

  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      if (!first) header += ',';
      first = false;
      append_json_string(header, k);
      header += ':';
      append_json_string(header, v);
    }
    header += '}';
  }
  // The data goes widest dtype first (as the reference writer orders it), so every tensor starts
  // aligned to its element size and mmap-based readers can use it in place; the header keeps the
  // caller's order, which is the order load_safetensors returns.
  std::vector<size_t> data_order(tensors.size());
  for (size_t i = 0; i < data_order.size(); ++i) data_order[i] = i;
  std::stable_sort(data_order.begin(), data_order.end(), [&](size_t a, size_t b) {
    return dtype_size(tensors[a].second.dtype()) > dtype_size(tensors[b].second.dtype());
  });
  std::vector<uint64_t> begin(tensors.size());
  uint64_t offset = 0;
  for (size_t i : data_order) {
    begin[i] = offset;
    offset += uint64_t(tensors[i].second.numel()) * dtype_size(tensors[i].second.dtype());
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, t] = tensors[i];
    if (header.size() > 1) header += ',';
    append_json_string(header, name);
    header += ":{\"dtype\":\"";
    header += file_dtype_name(t.dtype());
    header += "\",\"shape\":[";
    for (size_t d = 0; d < t.shape().size(); ++d) header += (d ? "," : "") + std::to_string(t.shape()[d]);
    const uint64_t nbytes = uint64_t(t.numel()) * dtype_size(t.dtype());
    header += "],\"data_offsets\":[" + std::to_string(begin[i]) + "," + std::to_string(begin[i] + nbytes) + "]}";
  }
  header += '}';
  // Pad so the data starts 8-byte aligned, as the reference writer does.
  header.append((8 - header.size() % 8) % 8, ' ');
  const uint64_t header_len = header.size();

  const std::string tmp = path + ".tmp";
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) fail(path, "cannot create temporary file " + tmp + ": " + errno_text());
  try {
    write_all(fd.get(), &header_len, 8, tmp);
    write_all(fd.get(), header.data(), header.size(), tmp);
    std::vector<char> host;
    for (size_t i : data_order) {
      const Tensor& t = tensors[i].second;
      const size_t nbytes = size_t(t.numel()) * dtype_size(t.dtype());
      if (nbytes == 0) continue;
      const void* src = t.raw_data();
      if (!(t.device().is_cpu() && t.is_contiguous())) {
        Tensor dense = Tensor::empty(t.shape(), TensorOptions{}.with_dtype(t.dtype()).with_device(t.device()));
        Backend& be = backend_for(t.device());
        be.copy(t, dense);
        host.resize(nbytes);
        be.copy_to_host(host.data(), dense.raw_data(), nbytes);
        src = host.data();
      }
      write_all(fd.get(), src, nbytes, tmp);
    }
    if (::fsync(fd.get()) != 0) fail(tmp, "fsync failed: " + errno_text());
    if (fd.close() != 0) fail(tmp, "close failed: " + errno_text());
    if (::rename(tmp.c_str(), path.c_str()) != 0) fail(path, "cannot rename " + tmp + " over it: " + errno_text());
  } catch (...) {
    fd.close();
    ::unlink(tmp.c_str());
    throw;
  }
  // Make the rename itself durable; the file is complete either way, so this is best effort.
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() >= 0) ::fsync(dfd.get());
}

}  // namespace mg
