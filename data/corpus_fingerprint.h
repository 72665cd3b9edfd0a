#pragma once
// What a data cache was built from: the corpus files' names, sizes, modification times and
// content hashes. A cache is valid for a corpus only while its recorded fingerprint has the same
// content as the corpus's current one, so replacing the corpus at the same path is noticed
// however the new file's size and time compare.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/corpus.h"

namespace mg {

struct CorpusFileState {
  std::string name;         // relative to the corpus path ("" for a single-file corpus)
  std::uint64_t size = 0;   // bytes
  std::int64_t mtime_ns = 0;  // last modification, ns since the epoch (recorded, not compared)
  std::uint64_t hash = 0;   // corpus_content_hash of the bytes
  bool operator==(const CorpusFileState&) const = default;
};

struct CorpusFingerprint {
  std::vector<CorpusFileState> files;  // in byte-wise name order

  // Same names, sizes and content hashes. The modification times are left out: a copy or a
  // `touch` that keeps the bytes keeps the tokens, so it keeps the cache.
  bool same_content(const CorpusFingerprint& other) const;
  // "corpus.txt: 1234 -> 1240 bytes, content changed", or "3 files added, 1 removed...", for
  // messages: how `now` differs from this recorded fingerprint.
  std::string describe_change(const CorpusFingerprint& now) const;

  // A small text file, one line per file; parse() throws CorpusError naming `where` on a
  // malformed one.
  std::string serialize() const;
  static CorpusFingerprint parse(const std::string& text, const std::string& where);
};

// A fixed 64-bit hash of bytes (FNV-1a over little-endian 8-byte words, then the tail bytes and
// the length, finished with splitmix64): about 8x the speed of byte-wise FNV-1a, so that a
// multi-gigabyte corpus costs a second or two per run. Stored in cache files: never change it.
std::uint64_t corpus_content_hash(const void* data, std::size_t n);

// Reads every file the corpus of `spec` consists of and fingerprints it: a file path is one file;
// a directory ("dir", "gutenberg") is every regular file under it with one of the spec's
// extensions (".txt" for gutenberg), recursively, skipping `exclude_dir` (a cache kept inside
// the corpus). Throws CorpusError naming a path that is missing or cannot be read.
CorpusFingerprint fingerprint_corpus(const CorpusSpec& spec, const std::string& exclude_dir = "");

}  // namespace mg
