#include "experiments/data_prep.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "core/hash.h"
#include "data/shards.h"

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

}  // namespace

std::string data_cache_dir(const DataConfig& cfg) {
  std::ostringstream key;
  key << "v1|" << cfg.corpus.format << "|" << corpus_path(cfg.corpus) << "|" << cfg.corpus.field << "|"
      << cfg.corpus.separator << "|" << cfg.corpus.max_document_bytes << "|";
  for (const auto& e : cfg.corpus.extensions) key << e << ",";
  key << "|" << cfg.max_documents << "|" << cfg.vocab_size << "|" << int(cfg.split.mode) << "|" << cfg.split.fraction
      << "|" << cfg.split.count;
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
  std::error_code ec;
  fs::create_directories(out.dir, ec);
  MG_CHECK(!ec, "data cache: cannot create directory '", out.dir, "': ", ec.message());
  const std::string tok_path = out.dir + "/tokenizer.bpe", train_path = out.dir + "/train.mgtok",
                    valid_path = out.dir + "/validation.mgtok";
  CorpusSpec spec = cfg.corpus;
  if (spec.format == "gutenberg" && spec.path.empty()) {
    spec.path = default_corpus_dir();
    MG_CHECK(fs::exists(spec.path), "the default corpus is not installed at '", spec.path,
             "': run scripts/install_corpus.sh (or set data.path)");
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
    tok.save(tok_path);
    std::fprintf(stderr, "data: trained a %d-token BPE on %llu documents in %.1fs -> %s\n", tok.vocab_size(),
                 (unsigned long long)used, seconds_since(t0), tok_path.c_str());
  }
  out.tokenizer = std::make_shared<BpeTokenizer>(BpeTokenizer::load(tok_path));
  MG_CHECK(out.tokenizer->vocab_size() <= cfg.vocab_size, "tokenizer '", tok_path, "' has ",
           out.tokenizer->vocab_size(), " tokens, more than data.vocab_size ", cfg.vocab_size);

  const uint64_t fp = tokenizer_fingerprint(*out.tokenizer);
  if (!fs::exists(train_path) || !fs::exists(valid_path)) {
    auto reader = open_corpus(spec);
    TokenizeOptions opts;
    opts.split = cfg.split;
    opts.max_documents = cfg.max_documents;
    TokenizeReport r = tokenize_corpus(*reader, *out.tokenizer, train_path, valid_path, opts);
    std::fprintf(stderr, "data: %s; train %llu docs / %llu tokens, validation %llu docs / %llu tokens (%.1fs)\n",
                 reader->stats().summary().c_str(), (unsigned long long)r.train_documents,
                 (unsigned long long)r.train_tokens, (unsigned long long)r.validation_documents,
                 (unsigned long long)r.validation_tokens, r.seconds);
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
