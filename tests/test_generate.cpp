// Text generation (experiments/generate.h): pad and the other non-text special tokens, and ids
// past the tokenizer's vocabulary, are never emitted, however much the model favours them.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/factories.h"
#include "experiments/generate.h"
#include "ops/ops.h"

using namespace mg;

namespace {

// A "model" whose next-token logits are fixed: `logits[id]` at every position.
class FixedLogitsModel : public LanguageModel {
 public:
  explicit FixedLogitsModel(std::vector<float> logits)
      : LanguageModel(make_config(int64_t(logits.size())), ModelKind::masked_mixer, "FixedLogitsModel"),
        logits_(std::move(logits)),
        embedding_(zeros({int64_t(logits_.size()), 4})) {}
  Tensor forward_embeddings(const Tensor& emb, int, bool) override {
    const int64_t B = emb.size(0), T = emb.size(1), V = int64_t(logits_.size());
    std::vector<float> all;
    for (int64_t i = 0; i < B * T; ++i) all.insert(all.end(), logits_.begin(), logits_.end());
    return from_vector(all, {B, T, V});
  }
  const Tensor& token_embedding_weight() const override { return embedding_; }

 private:
  static ModelConfig make_config(int64_t V) {
    ModelConfig c;
    c.vocab_size = V;
    c.d_model = 4;
    c.n_layers = 1;
    c.n_ctx = 8;
    return c;
  }
  std::vector<float> logits_;
  Tensor embedding_;
};

// Byte-level tokenizer (no merges) with one extra special token: ids 0..255 bytes, 256 eos,
// 257 pad, 258 "<|sep|>".
BpeTokenizer tokenizer() {
  BpeSpecialTokens sp;
  sp.extra = {"<|sep|>"};
  return BpeTokenizer({}, sp);
}

}  // namespace

TEST_CASE("unsampled_ids: pad, extra specials and ids past the tokenizer, never eos") {
  const BpeTokenizer tok = tokenizer();
  REQUIRE(tok.vocab_size() == 259);
  const std::vector<int32_t> never = unsampled_ids(tok, 262);
  CHECK(never == std::vector<int32_t>{tok.pad_id(), 258, 259, 260, 261});
  CHECK(std::find(never.begin(), never.end(), tok.eos_id()) == never.end());
}

TEST_CASE("generate: greedy and sampled text never holds <|pad|> or other non-text tokens") {
  const BpeTokenizer tok = tokenizer();
  // The model's favourites, best first: id 261 (past the tokenizer), pad, <|sep|>, then 'a' and 'b'.
  std::vector<float> logits(262, -5.0f);
  logits[261] = 9;
  logits[size_t(tok.pad_id())] = 8;
  logits[258] = 7;
  logits['a'] = 3;
  logits['b'] = 2.5f;
  FixedLogitsModel model(logits);

  GenerateOptions greedy;
  greedy.max_new_tokens = 6;
  CHECK(generate_text(model, tok, "x", greedy) == "aaaaaa");

  // Sampling: every emitted id is a text id, for many seeds, with and without top-k.
  for (int64_t top_k : {0, 3}) {
    for (uint64_t seed = 0; seed < 20; ++seed) {
      GenerateOptions o;
      o.max_new_tokens = 8;
      o.temperature = 1.0;
      o.top_k = top_k;
      o.seed = seed;
      o.stop_at_eos = false;
      const std::vector<int32_t> ids =
          generate_ids(model, tok.encode("x"), o, tok.eos_id(), unsampled_ids(tok, model.config().vocab_size));
      CHECK(ids.size() == 8);
      for (int32_t id : ids) {
        CHECK(id < tok.vocab_size());
        CHECK(id != tok.pad_id());
        CHECK(id != 258);
      }
      CHECK_NOTHROW(tok.decode(ids));
    }
  }
  // With top-k 2 only 'a' and 'b' remain, and both occur.
  std::string all;
  for (uint64_t seed = 0; seed < 10; ++seed) {
    GenerateOptions o;
    o.max_new_tokens = 8;
    o.temperature = 1.0;
    o.top_k = 2;
    o.seed = seed;
    all += generate_text(model, tok, "x", o);
  }
  CHECK(all.find_first_not_of("ab") == std::string::npos);
  CHECK(all.find('a') != std::string::npos);
  CHECK(all.find('b') != std::string::npos);
}

TEST_CASE("generate: without exclusions the model's favourite is emitted (the masking is what protects)") {
  const BpeTokenizer tok = tokenizer();
  std::vector<float> logits(259, -5.0f);
  logits[size_t(tok.pad_id())] = 8;
  logits['a'] = 3;
  FixedLogitsModel model(logits);
  GenerateOptions greedy;
  greedy.max_new_tokens = 2;
  CHECK(generate_ids(model, tok.encode("x"), greedy, tok.eos_id()) == std::vector<int32_t>{tok.pad_id(), tok.pad_id()});
  CHECK(generate_ids(model, tok.encode("x"), greedy, tok.eos_id(), {tok.pad_id()}) == std::vector<int32_t>{'a', 'a'});
  // Excluding every id is an error, not a silent choice.
  std::vector<int32_t> every(259);
  for (int32_t i = 0; i < 259; ++i) every[size_t(i)] = i;
  CHECK_THROWS_AS(generate_ids(model, tok.encode("x"), greedy, tok.eos_id(), every), Error);
}
