// Fuzzes TokenShard::open (data/shards.h), which maps the file: any bytes must open as a valid
// shard (offsets increasing, ids below the vocab size) or raise mg::Error.
#include "data/shards.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = mg::fuzz::write_file("in.tokens", mg::fuzz::as_text(data, size));
  for (const bool verify : {true, false}) {
    try {
      const mg::TokenShard shard = mg::TokenShard::open(path, {.expect_fingerprint = std::nullopt, .verify = verify});
      uint64_t tokens = 0;
      for (uint64_t d = 0; d < shard.num_documents(); ++d) {
        const auto doc = shard.document(d);
        if (doc.empty()) mg::fuzz::violated("empty document");
        for (const uint16_t id : doc)
          if (verify && id >= shard.vocab_size()) mg::fuzz::violated("token id >= vocab size");
        tokens += doc.size();
      }
      if (tokens != shard.num_tokens()) mg::fuzz::violated("documents do not cover the tokens");
    } catch (const mg::Error&) {
    }
  }
  return 0;
}
