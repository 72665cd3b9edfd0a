#include "experiments/data_prep.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <sstream>

#include "core/atomic_file.h"
#include "core/hash.h"
#include "core/read_file.h"
#include "data/corpus_fingerprint.h"
#include "data/shards.h"
#include "train/run_lock.h"

namespace mg {

namespace fs = std::filesystem;

namespace {

std::string corpus_path(const CorpusSpec& c) {
  if (c.path.empty()) return c.format == "gutenberg" ? default_corpus_dir() : "";
  std::error_code ec;
  fs::path p = fs::absolute(c.path, ec);
  return ec ? c.path : p.lexically_normal().string();
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// The bytes of data.tokenizer (the caller checks it is set).
std::string given_tokenizer_bytes(const DataConfig& cfg) {
  MG_CHECK(fs::is_regular_file(cfg.tokenizer), "data.tokenizer '", cfg.tokenizer,
           "' does not exist (it names an existing tokenizer.bpe, e.g. a trained run's)");
  return read_file_or_throw<TokenizerError>(cfg.tokenizer);
}

}  // namespace

std::string data_cache_dir(const DataConfig& cfg) {
  std::ostringstream key;
  key << "v1|" << cfg.corpus.format << "|" << corpus_path(cfg.corpus) << "|" << cfg.corpus.field << "|"
      << cfg.corpus.separator << "|" << cfg.corpus.max_document_bytes << "|";
  for (const auto& e : cfg.corpus.extensions) key << e << ",";
  key << "|" << cfg.max_documents << "|" << cfg.vocab_size << "|" << int(cfg.split.mode) << "|" << cfg.split.fraction
      << "|" << cfg.split.count;
  // A given tokenizer decides the tokens by its content: keyed by the bytes, not the path, so a
  // tokenizer replaced at the same path gets a fresh cache. Absent from the key when unset, so
  // that the caches of configs without it keep their names.
  if (!cfg.tokenizer.empty()) {
    const std::string bytes = given_tokenizer_bytes(cfg);
    key << "|tokenizer " << corpus_content_hash(bytes.data(), bytes.size());
  }
  char hex[17];
  // The cache keys have always been hashed from 1469598103934665603, FNV-1a's offset basis with
  // its last digit lost; kept, so that existing caches stay valid.
  constexpr std::uint64_t kCacheKeyBasis = 1469598103934665603ULL;
  std::snprintf(hex, sizeof hex, "%016llx", (unsigned long long)fnv1a(key.str(), kCacheKeyBasis));
  std::string root = cfg.cache_dir.empty() ? default_corpus_root() + "/cache" : cfg.cache_dir;
  std::string stem = fs::path(corpus_path(cfg.corpus)).filename().string();
  return root + "/" + (stem.empty() ? cfg.corpus.format : stem) + "-v" + std::to_string(cfg.vocab_size) + "-" + hex;
}

PreparedData prepare_data(const DataConfig& cfg) {
  PreparedData out;
  out.dir = data_cache_dir(cfg);
  // A given tokenizer is checked before anything is written: its size must be the model's.
  std::string given_tokenizer;
  if (!cfg.tokenizer.empty()) {
    given_tokenizer = given_tokenizer_bytes(cfg);
    const BpeTokenizer given = BpeTokenizer::load(cfg.tokenizer);
    MG_CHECK(given.vocab_size() == cfg.vocab_size, "data.tokenizer '", cfg.tokenizer, "' has ", given.vocab_size(),
             " tokens, not data.vocab_size ", cfg.vocab_size, "; set data.vocab_size to ", given.vocab_size());
  }
  CorpusSpec spec = cfg.corpus;
  if (spec.format == "gutenberg" && spec.path.empty()) {
    spec.path = default_corpus_dir();
    MG_CHECK(fs::exists(spec.path), "the default corpus is not installed at '", spec.path,
             "': run scripts/install_corpus.sh (or set data.path)");
  }
  // The corpus is read first, so that a missing one leaves nothing behind.
  const CorpusFingerprint corpus_now = fingerprint_corpus(spec, out.dir);
  // One writer at a time: a second process (another run on the same data, another rank) waits,
  // then finds the cache built. The lock also removes what a killed builder left half-written.
  RunLock lock(out.dir, "building the data cache of " + spec.path, RunLock::Mode::wait);
  const std::string tok_path = out.dir + "/tokenizer.bpe", train_path = out.dir + "/train.mgtok",
                    valid_path = out.dir + "/validation.mgtok", fp_path = out.dir + "/corpus.fingerprint";

  // The files are valid only for the corpus content they were built from (the directory name
  // keys the settings and the corpus path only): a corpus replaced at the same path, or a cache
  // without a recorded fingerprint (built before fingerprints, or by a builder that was killed),
  // is rebuilt from scratch. The fingerprint is written last, once every file is complete.
  {
    std::optional<CorpusFingerprint> recorded;
    if (fs::exists(fp_path)) {
      try {
        recorded = CorpusFingerprint::parse(read_file_or_throw<CorpusError>(fp_path), fp_path);
      } catch (const CorpusError& e) {
        std::fprintf(stderr, "data: %s\n", e.what());  // treated as absent: the cache is rebuilt
      }
    }
    const bool have_any = fs::exists(tok_path) || fs::exists(train_path) || fs::exists(valid_path);
    if (!recorded || !recorded->same_content(corpus_now)) {
      if (have_any)
        std::fprintf(stderr, "data: rebuilding %s: %s\n", out.dir.c_str(),
                     recorded ? ("the corpus " + spec.path + " has changed since it was built: " +
                                 recorded->describe_change(corpus_now)).c_str()
                              : "it records no corpus fingerprint (built by an older mixgrad, or interrupted)");
      for (const std::string& f : {fp_path, tok_path, train_path, valid_path}) {
        std::error_code rec;
        fs::remove(f, rec);
        MG_CHECK(!rec, "data cache: cannot remove stale '", f, "': ", rec.message());
      }
    }
  }

  // A given tokenizer is copied into the cache (where the training run and `retrieve --config`
  // look for it); shards tokenized by anything else are removed with it.
  if (!given_tokenizer.empty()) {
    std::string cached;
    if (fs::exists(tok_path)) cached = read_file_or_throw<TokenizerError>(tok_path);
    if (cached != given_tokenizer) {
      for (const std::string& f : {fp_path, train_path, valid_path}) {
        std::error_code rec;
        fs::remove(f, rec);
        MG_CHECK(!rec, "data cache: cannot remove stale '", f, "': ", rec.message());
      }
      write_file_atomically(tok_path, given_tokenizer);
      std::fprintf(stderr, "data: using the tokenizer %s (%d tokens) -> %s\n", cfg.tokenizer.c_str(), cfg.vocab_size,
                   tok_path.c_str());
    }
  }
  if (!fs::exists(tok_path)) {
    auto t0 = std::chrono::steady_clock::now();
    auto reader = open_corpus(spec);
    BpeTrainer trainer;
    std::string doc;
    uint64_t index = 0, used = 0;
    // Validation documents stay out of the tokenizer's training text where the split is known
    // from the index alone ('last' needs the corpus length, so there all documents are used).
    while (reader->next(doc)) {
      if (cfg.max_documents && index >= cfg.max_documents) break;
      bool val = cfg.split.mode == ValidationSplit::Mode::hash    ? is_validation_document(index, cfg.split.fraction)
                 : cfg.split.mode == ValidationSplit::Mode::first ? index < cfg.split.count
                                                                  : false;
      if (!val) {
        trainer.add_document(doc);
        ++used;
      }
      ++index;
    }
    BpeTokenizer tok = trainer.train(cfg.vocab_size);
    // Refused rather than adapted: the model's output layer is sized by data.vocab_size, and
    // ids past the tokenizer's would be trained toward never and could not be decoded.
    MG_CHECK(tok.vocab_size() == cfg.vocab_size, "data: the corpus ", spec.path, " yields only ", tok.vocab_size(),
             " BPE tokens (", used, " documents leave no pair of tokens to merge), fewer than data.vocab_size ",
             cfg.vocab_size, "; set data.vocab_size to ", tok.vocab_size(), " or less, or use a larger corpus");
    tok.save(tok_path);
    std::fprintf(stderr, "data: trained a %d-token BPE on %llu documents in %.1fs -> %s\n", tok.vocab_size(),
                 (unsigned long long)used, seconds_since(t0), tok_path.c_str());
  }
  out.tokenizer = std::make_shared<BpeTokenizer>(BpeTokenizer::load(tok_path));
  // A cache built before the check above may hold a smaller tokenizer: refused the same way.
  MG_CHECK(out.tokenizer->vocab_size() == cfg.vocab_size, "tokenizer '", tok_path, "' has ",
           out.tokenizer->vocab_size(), " tokens, not data.vocab_size ", cfg.vocab_size, "; set data.vocab_size to ",
           std::min(out.tokenizer->vocab_size(), cfg.vocab_size), " or less, or use a larger corpus");

  const uint64_t fp = tokenizer_fingerprint(*out.tokenizer);
  if (!fs::exists(train_path) || !fs::exists(valid_path) || !fs::exists(fp_path)) {
    auto reader = open_corpus(spec);
    TokenizeOptions opts;
    opts.split = cfg.split;
    opts.max_documents = cfg.max_documents;
    TokenizeReport r = tokenize_corpus(*reader, *out.tokenizer, train_path, valid_path, opts);
    std::fprintf(stderr, "data: %s; train %llu docs / %llu tokens, validation %llu docs / %llu tokens (%.1fs)\n",
                 reader->stats().summary().c_str(), (unsigned long long)r.train_documents,
                 (unsigned long long)r.train_tokens, (unsigned long long)r.validation_documents,
                 (unsigned long long)r.validation_tokens, r.seconds);
    // A corpus changed while it was read gave files of neither version: record nothing.
    const CorpusFingerprint corpus_after = fingerprint_corpus(spec, out.dir);
    MG_CHECK(corpus_after.same_content(corpus_now), "data: the corpus ", spec.path,
             " changed while it was being tokenized (", corpus_now.describe_change(corpus_after),
             "); run again once it is complete");
    write_file_atomically(fp_path, corpus_now.serialize());
  }
  TokenShard::OpenOptions o;
  o.expect_fingerprint = fp;
  out.train = std::make_shared<const TokenShard>(TokenShard::open(train_path, o));
  out.validation = std::make_shared<const TokenShard>(TokenShard::open(valid_path, o));
  MG_CHECK(out.validation->num_documents() > 0, "data: the validation split of '", spec.path,
           "' is empty; raise data.validation.fraction or count");
  return out;
}

}  // namespace mg
