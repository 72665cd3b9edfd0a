// data/hf_tokenizer_json: Hugging Face tokenizer.json both ways, against ids written by HF's
// JavaScript tokenizers (tests/golden/make_hf_tokenizer_fixtures.mjs, fixtures in
// tests/golden/hf_tokenizer/), and the round trip on the default corpus.
//
// MG_WRITE_HF_FIXTURES=1 rewrites tests/golden/hf_tokenizer/ours.tokenizer.json from the current
// code (then rerun the node script, which reads it).
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "core/json.h"
#include "data/bpe_tokenizer.h"
#include "data/corpus.h"
#include "data/hf_tokenizer_json.h"
#include "data/shards.h"
#include "tests/temp_dir.h"

namespace {

using namespace mg;

const std::string kDir = std::string(MG_SOURCE_DIR) + "/tests/golden/hf_tokenizer/";

// The tokenizer the fixtures call "ours": trained on train.txt, 48 merges + 2 specials.
BpeTokenizer ours() {
  return BpeTokenizer::train(std::vector<std::string>{test::read_file(kDir + "train.txt")}, 256 + 48 + 2);
}

struct Fixtures {
  std::vector<std::string> texts;
  std::vector<std::vector<std::int32_t>> theirs, ours;
};

Fixtures fixtures() {
  const JsonValue j = read_json_file(kDir + "fixtures.json");
  Fixtures f;
  for (const auto& t : j.find("texts")->array) f.texts.push_back(t.string);
  auto ids = [&](const char* key) {
    std::vector<std::vector<std::int32_t>> out;
    for (const auto& row : j.find(key)->array) {
      std::vector<std::int32_t> r;
      for (const auto& v : row.array) r.push_back(std::int32_t(v.number));
      out.push_back(r);
    }
    return out;
  };
  f.theirs = ids("theirs_ids");
  f.ours = ids("ours_ids");
  REQUIRE(f.theirs.size() == f.texts.size());
  REQUIRE(f.ours.size() == f.texts.size());
  return f;
}

std::vector<std::string> chunks(const std::vector<std::string_view>& v) { return {v.begin(), v.end()}; }

std::string expect_error(const std::string& json) {
  try {
    parse_hf_tokenizer_json(json, "t.json");
  } catch (const TokenizerError& e) {
    return e.what();
  }
  FAIL("no error for: " << json.substr(0, 200));
  return "";
}

}  // namespace

TEST_SUITE("hf_tokenizer") {

TEST_CASE("GPT-2 pre-tokenizer cuts as the regex does") {
  CHECK(chunks(gpt2_pretokenize("Hello world's  end")) ==
        std::vector<std::string>{"Hello", " world", "'s", " ", " end"});
  CHECK(chunks(gpt2_pretokenize("a\t\tb  \n")) == std::vector<std::string>{"a", "\t", "\t", "b", "  \n"});
  CHECK(chunks(gpt2_pretokenize("x² 日本 “q”")) == std::vector<std::string>{"x", "²", " 日本", " “", "q", "”"});
  CHECK(chunks(gpt2_pretokenize("no\u00a0break")) == std::vector<std::string>{"no", "\u00a0", "break"});
  // Ours keeps "\t\t" and the non-ASCII characters as letters: that is the difference.
  CHECK(chunks(bpe_pretokenize("a\t\tb")) == std::vector<std::string>{"a", "\t\t", "b"});
  CHECK(chunks(bpe_pretokenize("x²")) == std::vector<std::string>{"x²"});
  CHECK(gpt2_pretokenize("").empty());
}

TEST_CASE("our tokenizer.json is the committed one and HF's JavaScript library gives our ids with it") {
  const BpeTokenizer tok = ours();
  const std::string json = hf_tokenizer_json(tok);
  if (std::getenv("MG_WRITE_HF_FIXTURES")) test::write_file(kDir + "ours.tokenizer.json", json);
  // Otherwise the node script's input would not be what this code writes.
  REQUIRE(json == test::read_file(kDir + "ours.tokenizer.json"));
  const Fixtures f = fixtures();
  for (std::size_t i = 0; i < f.texts.size(); ++i) {
    INFO("text ", i, ": ", f.texts[i]);
    CHECK(tok.encode(f.texts[i], true) == f.ours[i]);
  }
  const HfTokenizer back = parse_hf_tokenizer_json(json, "ours");
  CHECK(back.same_as_bpe());
  CHECK(back.pretokenizer_difference().empty());
  CHECK(tokenizer_fingerprint(back.bpe) == tokenizer_fingerprint(tok));
  CHECK(hf_tokenizer_json(back.bpe) == json);
  for (std::size_t i = 0; i < f.texts.size(); ++i) CHECK(back.encode(f.texts[i]) == f.ours[i]);
}

TEST_CASE("a tokenizer.json in the HF trainer's layout encodes to the library's ids here") {
  const HfTokenizer theirs = load_hf_tokenizer_json(kDir + "theirs.tokenizer.json");
  CHECK(theirs.pretokenizer == HfPretokenizer::gpt2);
  CHECK_FALSE(theirs.same_as_bpe());
  CHECK_FALSE(theirs.pretokenizer_difference().empty());
  CHECK(theirs.bpe.special_tokens().eos == "<|endoftext|>");
  CHECK(theirs.bpe.special_tokens().pad == "<|pad|>");
  CHECK(theirs.hf_ids[size_t(theirs.bpe.eos_id())] == 0);  // the trainer puts specials first
  const Fixtures f = fixtures();
  bool cut_differs = false;
  for (std::size_t i = 0; i < f.texts.size(); ++i) {
    INFO("text ", i, ": ", f.texts[i]);
    CHECK(theirs.encode(f.texts[i]) == f.theirs[i]);
    CHECK(theirs.decode(f.theirs[i]) == f.texts[i]);
    cut_differs |= chunks(gpt2_pretokenize(f.texts[i])) != chunks(bpe_pretokenize(f.texts[i]));
  }
  // The texts exercise the places where GPT-2's regex and our pre-tokenizer cut differently.
  CHECK(cut_differs);
}

TEST_CASE("ignore_merges: a chunk that is a whole vocabulary entry is that token") {
  // 256 "bc", 257 "ab", 258 "ab"+"c": plain BPE takes "bc" first and never reaches "abc".
  const BpeTokenizer tok({{'b', 'c'}, {'a', 'b'}, {257, 'c'}}, BpeSpecialTokens{});
  CHECK(tok.encode("abc") == std::vector<std::int32_t>{'a', 256});
  std::string json = hf_tokenizer_json(tok);
  const HfTokenizer plain = parse_hf_tokenizer_json(json, "plain");
  CHECK(plain.encode("abc") == std::vector<std::int32_t>{'a', 256});
  json.replace(json.find("\"ignore_merges\": false"), 22, "\"ignore_merges\": true");
  const HfTokenizer im = parse_hf_tokenizer_json(json, "ignore_merges");
  CHECK(im.ignore_merges);
  CHECK_FALSE(im.same_as_bpe());
  CHECK(im.encode("abc x") == std::vector<std::int32_t>{258, ' ', 'x'});
}

TEST_CASE("bad tokenizer.json files get one clear error") {
  const std::string good = hf_tokenizer_json(ours());
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    const auto p = s.find(from);
    REQUIRE(p != std::string::npos);
    return s.replace(p, from.size(), to);
  };
  CHECK(expect_error(with("\"type\": \"BPE\"", "\"type\": \"WordPiece\"")).find("only BPE") != std::string::npos);
  CHECK(expect_error(with("\"normalizer\": null", "\"normalizer\": {\"type\": \"NFC\"}")).find("normalizer") !=
        std::string::npos);
  CHECK(expect_error(with("\"special\": true", "\"special\": false")).find("not special") != std::string::npos);
  CHECK(expect_error(with("\"use_regex\": false}]", "\"use_regex\": true}]")).find("use_regex") != std::string::npos);
  CHECK(expect_error(with("\"!\": 33", "\"!!\": 33")).find("lacks the byte token '!'") != std::string::npos);
  CHECK(expect_error(good.substr(0, good.size() / 2)).find("t.json") != std::string::npos);
  try {
    load_hf_tokenizer_json("/nonexistent/tokenizer.json");
    FAIL("no error");
  } catch (const TokenizerError& e) {
    CHECK(std::string(e.what()).find("/nonexistent/tokenizer.json") != std::string::npos);
  }
}

TEST_CASE("round trip on the default corpus: tokenizer.bpe -> tokenizer.json -> back gives the same ids") {
  const std::string dir = default_corpus_dir();
  if (!std::filesystem::exists(dir)) {
    MESSAGE("skipped: the default corpus is not installed at ", dir, " (scripts/install_corpus.sh)");
    return;
  }
  CorpusSpec spec;
  spec.format = "gutenberg";
  spec.path = dir;
  auto reader = open_corpus(spec);
  std::vector<std::string> docs;
  std::size_t bytes = 0;
  std::string doc;
  while (bytes < 400000 && reader->next(doc)) {
    bytes += doc.size();
    docs.push_back(doc);
  }
  REQUIRE(bytes > 0);
  const BpeTokenizer tok = BpeTokenizer::train(docs, 1024);
  test::TempDir tmp("mg_hf_tok");
  const std::string path = (tmp.path / "tokenizer.json").string();
  save_hf_tokenizer_json(path, tok);
  const HfTokenizer back = load_hf_tokenizer_json(path);
  REQUIRE(back.same_as_bpe());
  CHECK(tokenizer_fingerprint(back.bpe) == tokenizer_fingerprint(tok));
  std::size_t tokens = 0;
  for (const std::string& d : docs) {
    const auto a = tok.encode(d), b = back.encode(d);
    REQUIRE(a == b);
    tokens += a.size();
  }
  MESSAGE("default corpus: ", docs.size(), " documents, ", bytes, " bytes, ", tokens, " tokens, identical ids");
}

}  // TEST_SUITE
