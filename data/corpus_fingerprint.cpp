#include "data/corpus_fingerprint.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/hash.h"

namespace mg {

namespace fs = std::filesystem;

namespace {

// corpus_content_hash, fed in pieces: whole 8-byte words go through FNV-1a's step as one unit,
// a partial word waits in `tail` for the next piece.
class ContentHasher {
 public:
  void update(const unsigned char* p, std::size_t n) {
    total_ += n;
    while (n > 0 && tail_len_ > 0) {
      tail_[tail_len_++] = *p++;
      --n;
      if (tail_len_ == 8) {
        word(tail_);
        tail_len_ = 0;
      }
    }
    for (; n >= 8; p += 8, n -= 8) word(p);
    while (n > 0) {
      tail_[tail_len_++] = *p++;
      --n;
    }
  }
  std::uint64_t finish() const {
    std::uint64_t h = h_;
    for (std::size_t i = 0; i < tail_len_; ++i) h = (h ^ tail_[i]) * kFnv1aPrime;
    return splitmix64(h ^ splitmix64(total_));
  }

 private:
  void word(const unsigned char* p) {
    std::uint64_t w = 0;
    for (int i = 7; i >= 0; --i) w = (w << 8) | p[i];  // little-endian on every host
    h_ = (h_ ^ w) * kFnv1aPrime;
  }
  std::uint64_t h_ = kFnv1aOffset, total_ = 0;
  unsigned char tail_[8] = {};
  std::size_t tail_len_ = 0;
};

CorpusFileState read_file_state(const fs::path& path, const std::string& name) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw CorpusError("corpus file '" + path.string() + "': cannot stat: " + std::strerror(errno));
  CorpusFileState s;
  s.name = name;
  s.mtime_ns = std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CorpusError("corpus file '" + path.string() + "': cannot open for reading");
  ContentHasher h;
  std::vector<char> buf(std::size_t(1) << 20);
  std::uint64_t size = 0;
  while (in) {
    in.read(buf.data(), std::streamsize(buf.size()));
    const std::streamsize got = in.gcount();
    if (got <= 0) break;
    h.update(reinterpret_cast<const unsigned char*>(buf.data()), std::size_t(got));
    size += std::uint64_t(got);
  }
  if (in.bad()) throw CorpusError("corpus file '" + path.string() + "': read error");
  s.size = size;  // the bytes read, so size and hash always describe the same contents
  s.hash = h.finish();
  return s;
}

bool has_extension(const std::string& name, const std::vector<std::string>& exts) {
  if (exts.empty()) return true;
  return std::any_of(exts.begin(), exts.end(), [&](const std::string& e) { return name.ends_with(e); });
}

}  // namespace

std::uint64_t corpus_content_hash(const void* data, std::size_t n) {
  ContentHasher h;
  h.update(static_cast<const unsigned char*>(data), n);
  return h.finish();
}

bool CorpusFingerprint::same_content(const CorpusFingerprint& o) const {
  if (files.size() != o.files.size()) return false;
  for (std::size_t i = 0; i < files.size(); ++i)
    if (files[i].name != o.files[i].name || files[i].size != o.files[i].size || files[i].hash != o.files[i].hash)
      return false;
  return true;
}

std::string CorpusFingerprint::describe_change(const CorpusFingerprint& now) const {
  std::vector<std::string> parts;
  std::size_t added = 0, removed = 0;
  for (const auto& f : now.files)
    if (std::none_of(files.begin(), files.end(), [&](const CorpusFileState& o) { return o.name == f.name; })) ++added;
  for (const auto& f : files) {
    auto it = std::find_if(now.files.begin(), now.files.end(), [&](const CorpusFileState& o) { return o.name == f.name; });
    if (it == now.files.end()) {
      ++removed;
    } else if (it->size != f.size || it->hash != f.hash) {
      if (parts.size() < 3)
        parts.push_back((f.name.empty() ? std::string("the file") : f.name) + " changed (" + std::to_string(f.size) +
                        " -> " + std::to_string(it->size) + " bytes" + (it->size == f.size ? ", other content" : "") + ")");
      else if (parts.size() == 3)
        parts.push_back("...");
    }
  }
  if (added) parts.push_back(std::to_string(added) + " file(s) added");
  if (removed) parts.push_back(std::to_string(removed) + " file(s) removed");
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out.empty() ? "unchanged" : out;
}

std::string CorpusFingerprint::serialize() const {
  std::ostringstream o;
  o << "mixgrad-corpus-fingerprint 1\n" << files.size() << "\n";
  for (const auto& f : files) {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", (unsigned long long)f.hash);
    // The name last: it may hold spaces, never a newline (checked by fingerprint_corpus).
    o << f.size << " " << f.mtime_ns << " " << hex << " " << f.name << "\n";
  }
  return o.str();
}

CorpusFingerprint CorpusFingerprint::parse(const std::string& text, const std::string& where) {
  std::istringstream in(text);
  std::string line;
  auto bad = [&](const std::string& why) { return CorpusError(where + ": not a corpus fingerprint: " + why); };
  if (!std::getline(in, line) || line != "mixgrad-corpus-fingerprint 1") throw bad("wrong first line");
  if (!std::getline(in, line)) throw bad("no file count");
  std::size_t count = 0;
  try {
    std::size_t pos = 0;
    count = std::stoull(line, &pos);
    if (pos != line.size()) throw bad("bad file count '" + line + "'");
  } catch (const std::logic_error&) {
    throw bad("bad file count '" + line + "'");
  }
  if (count > text.size()) throw bad("file count " + line + " larger than the file");
  CorpusFingerprint fp;
  for (std::size_t i = 0; i < count; ++i) {
    if (!std::getline(in, line)) throw bad("line " + std::to_string(i + 3) + " missing");
    CorpusFileState s;
    char hex[17] = {0};
    unsigned long long size = 0;
    long long mtime = 0;
    int name_at = -1;
    if (std::sscanf(line.c_str(), "%llu %lld %16[0-9a-f] %n", &size, &mtime, hex, &name_at) != 3 || name_at < 0 ||
        std::strlen(hex) != 16)
      throw bad("malformed line " + std::to_string(i + 3));
    s.size = size;
    s.mtime_ns = mtime;
    s.hash = std::strtoull(hex, nullptr, 16);
    s.name = line.substr(std::size_t(name_at));
    fp.files.push_back(std::move(s));
  }
  if (std::getline(in, line)) throw bad("trailing content");
  return fp;
}

CorpusFingerprint fingerprint_corpus(const CorpusSpec& spec, const std::string& exclude_dir) {
  const std::string& root = spec.path;
  std::error_code ec;
  const fs::file_status st = fs::status(root, ec);
  // Worded as the corpus readers word it.
  if (ec || !fs::exists(st)) throw CorpusError(root + ": cannot open: No such file or directory");
  CorpusFingerprint fp;
  if (!fs::is_directory(st)) {
    fp.files.push_back(read_file_state(root, ""));
    return fp;
  }
  const std::vector<std::string> exts =
      spec.format == "gutenberg" ? std::vector<std::string>{".txt"} : spec.format == "dir" ? spec.extensions
                                                                                           : std::vector<std::string>{};
  const fs::path skip = exclude_dir.empty() ? fs::path() : fs::weakly_canonical(exclude_dir, ec);
  std::vector<std::pair<std::string, fs::path>> found;
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec), end;
  if (ec) throw CorpusError("corpus '" + root + "': cannot list: " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) throw CorpusError("corpus '" + root + "': cannot list: " + ec.message());
    std::error_code e2;
    if (it->is_directory(e2)) {
      if (!skip.empty() && fs::weakly_canonical(it->path(), e2) == skip) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(e2)) continue;
    const std::string rel = it->path().lexically_relative(root).generic_string();
    if (!has_extension(rel, exts) || rel.find('\n') != std::string::npos) continue;
    found.emplace_back(rel, it->path());
  }
  std::sort(found.begin(), found.end());
  for (const auto& [rel, path] : found) fp.files.push_back(read_file_state(path, rel));
  return fp;
}

}  // namespace mg
