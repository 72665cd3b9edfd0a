#pragma once
// Turns a DataConfig into a tokenizer and train/validation shards, building each only when its
// cached file is missing. The cache directory is keyed by everything that decides the tokens
// (corpus spec, document limit, vocabulary size, validation split, and the content of a given
// tokenizer, data.tokenizer, which is then used instead of training one), so changing any of them
// never reuses stale files; its corpus.fingerprint (data/corpus_fingerprint.h) records the
// corpus content it was built from, and a cache whose corpus has changed since (or that records
// none) is rebuilt. The directory is locked while in use (train/run_lock.h, wait mode): a second
// process waits for the first, then reuses what it built.
#include <memory>
#include <string>

#include "data/bpe_tokenizer.h"
#include "experiments/run_config.h"

namespace mg {

struct PreparedData {
  std::shared_ptr<BpeTokenizer> tokenizer;
  std::shared_ptr<const TokenShard> train, validation;
  std::string dir;  // the cache directory holding tokenizer.bpe, train.mgtok, validation.mgtok
};

// Prints what it builds to stderr. Throws mg::Error (CorpusError, ShardError, TokenizerError)
// naming the file at fault, and mg::Error when the corpus yields fewer BPE tokens than
// cfg.vocab_size (refused, never adapted: the message names the size to set instead), or when
// cfg.tokenizer is set and is missing, malformed or not of cfg.vocab_size tokens (checked before
// anything is written).
PreparedData prepare_data(const DataConfig& cfg);

// The cache directory prepare_data uses for cfg. Reads cfg.tokenizer when set (throws mg::Error
// naming it when it does not exist).
std::string data_cache_dir(const DataConfig& cfg);

}  // namespace mg
