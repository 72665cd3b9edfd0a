#include "core/safetensors.h"

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

#include "core/atomic_file.h"
#include "core/backend.h"
#include "core/json.h"
#include "core/utf8.h"

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

// The header is strict JSON with valid UTF-8 strings and no repeated key (a repeated tensor name
// would make the file mean two things).
JsonValue parse_header(const std::string& header, const std::string& path) {
  try {
    return parse_json_value(header, JsonOptions{.max_depth = 64, .strict_utf8 = true, .unique_keys = true});
  } catch (const JsonSyntaxError& e) {
    const bool tensor_name = e.duplicate_key() && e.depth() == 1;
    fail(path, "malformed JSON header at byte " + std::to_string(e.offset()) + ": " + e.problem() +
                   (tensor_name ? " (a tensor name may appear only once)" : ""));
  }
}

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
uint64_t as_count(const JsonValue& v, const std::string& path, const std::string& what) {
  if (v.kind != JsonValue::Kind::number)
    fail(path, what + " must be a non-negative integer, found " + v.kind_phrase());
  if (v.string.find_first_not_of("0123456789") != std::string::npos)
    fail(path, what + " must be a non-negative integer, found " + v.string);
  if (v.string.size() > 18) fail(path, what + " = " + v.string + " is too large");
  return std::stoull(v.string);
}

Entry parse_entry(const std::string& name, const JsonValue& v, const std::string& path) {
  const std::string who = "tensor " + quoted(name);
  if (v.kind != JsonValue::Kind::object) fail(path, who + ": expected an object, found " + v.kind_phrase());
  Entry e;
  e.name = name;
  const JsonValue *dtype = nullptr, *shape = nullptr, *offsets = nullptr;
  for (const auto& [key, val] : v.object) {
    if (key == "dtype") dtype = &val;
    else if (key == "shape") shape = &val;
    else if (key == "data_offsets") offsets = &val;
    else fail(path, who + ": unknown key " + quoted(key) + " (expected dtype, shape, data_offsets)");
  }
  if (!dtype || !shape || !offsets)
    fail(path, who + ": missing " + (!dtype ? "dtype" : !shape ? "shape" : "data_offsets"));

  if (dtype->kind != JsonValue::Kind::string)
    fail(path, who + ": dtype must be a string, found " + dtype->kind_phrase());
  for (const auto& d : kFileDTypes)
    if (dtype->string == d.name) e.dtype = &d;
  if (!e.dtype)
    fail(path, who + ": unknown or unsupported dtype " + quoted(dtype->string) + " (supported: F32, F64, I32, BF16, I64)");

  if (shape->kind != JsonValue::Kind::array)
    fail(path, who + ": shape must be an array, found " + shape->kind_phrase());
  if (shape->array.size() > size_t(kMaxDims))
    fail(path, who + ": shape has " + std::to_string(shape->array.size()) + " dims, at most " +
                   std::to_string(kMaxDims) + " supported");
  uint64_t count = 1;
  bool overflow = false;
  for (const JsonValue& d : shape->array) {
    const uint64_t n = as_count(d, path, who + ": shape entry");
    e.shape.push_back(int64_t(n));
    if (n != 0 && count > std::numeric_limits<uint64_t>::max() / 8 / n) overflow = true;
    count *= n;
  }
  // A zero-size dim makes the byte count 0 whatever the other dims are, but the tensor built from
  // the shape still needs strides that fit int64.
  try {
    (void)contiguous_strides(e.shape);
  } catch (const Error& err) {
    fail(path, who + ": " + err.what());
  }

  if (offsets->kind != JsonValue::Kind::array || offsets->array.size() != 2)
    fail(path, who + ": data_offsets must be an array [begin, end]");
  e.begin = as_count(offsets->array[0], path, who + ": data_offsets begin");
  e.end = as_count(offsets->array[1], path, who + ": data_offsets end");
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

  const JsonValue root = parse_header(header, path);
  if (root.kind != JsonValue::Kind::object) fail(path, "header must be a JSON object, found " + root.kind_phrase());

  SafetensorsFile file;
  file.path = path;
  std::vector<Entry> entries;
  for (const auto& [key, val] : root.object) {
    if (key == "__metadata__") {
      if (val.kind != JsonValue::Kind::object)
        fail(path, "__metadata__ must be an object of strings, found " + val.kind_phrase());
      for (const auto& [mk, mv] : val.object) {
        if (mv.kind != JsonValue::Kind::string)
          fail(path, "__metadata__ value for " + quoted(mk) + " must be a string, found " + mv.kind_phrase());
        file.metadata[mk] = mv.string;
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

  try {
    AtomicFile file(path);
    file.write(&header_len, 8);
    file.write(header);
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
      file.write(src, nbytes);
    }
    file.commit();
  } catch (const AtomicFileError& e) {
    throw Error(std::string("safetensors: ") + e.what());
  }
}

}  // namespace mg
