// data/: byte-level BPE tokenizer (pre-tokenizer, training, encode/decode, file format).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "data/bpe_tokenizer.h"
#include "tests/temp_dir.h"

namespace {

using mg::BpeSpecialTokens;
using mg::BpeTokenizer;
using mg::TokenizerError;

// Deterministic pseudo-English: Zipf-ish word choice from a fixed list, with punctuation,
// numbers, newlines and some UTF-8, so training has realistic repeated structure.
std::vector<std::string> make_corpus(int num_docs, int words_per_doc, std::uint64_t seed) {
  static const char* const kWords[] = {
      "the", "a", "and", "to", "of", "was", "she", "he", "it", "in", "said", "little", "big",
      "dog", "cat", "tree", "happy", "played", "with", "friend", "mom", "day", "sun", "ball",
      "they", "wanted", "saw", "very", "went", "park", "Lily", "Tom", "café", "naïve", "日本",
      "don't", "it's", "we're", "time", "once", "upon", "there", "were", "two", "birds"};
  constexpr std::size_t kNumWords = sizeof(kWords) / sizeof(kWords[0]);
  std::uint64_t s = seed;
  auto next = [&] {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<std::uint32_t>(s >> 33);
  };
  std::vector<std::string> docs;
  for (int d = 0; d < num_docs; ++d) {
    std::string doc;
    for (int w = 0; w < words_per_doc; ++w) {
      // Squaring a uniform draw favours low indices, giving a skewed word frequency.
      const double u = (next() % 10000) / 10000.0;
      const auto idx = static_cast<std::size_t>(u * u * kNumWords);
      if (w > 0) doc += ' ';
      doc += kWords[idx];
      const std::uint32_t r = next() % 100;
      if (r < 8) doc += '.';
      else if (r < 12) doc += ',';
      else if (r < 14) doc += "\n";
      else if (r < 16) doc += " " + std::to_string(next() % 1000);
    }
    docs.push_back(std::move(doc));
  }
  return docs;
}

std::string all_bytes() {
  std::string s;
  for (int b = 0; b < 256; ++b) s += static_cast<char>(b);
  return s;
}

std::vector<std::string> to_strings(const std::vector<std::string_view>& v) {
  return {v.begin(), v.end()};
}

using mg::test::read_file;
using mg::test::TempDir;
using mg::test::write_file;

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

// The message of the TokenizerError that load() throws, or "" if it does not throw.
std::string load_error(const std::string& path) {
  try {
    BpeTokenizer::load(path);
  } catch (const TokenizerError& e) {
    return e.what();
  }
  return "";
}

const BpeTokenizer& trained_tokenizer() {
  static const BpeTokenizer tok = BpeTokenizer::train(make_corpus(200, 200, 7), 600);
  return tok;
}

}  // namespace

TEST_CASE("bpe_pretokenize splits words, numbers, punctuation and whitespace") {
  using V = std::vector<std::string>;
  CHECK(to_strings(mg::bpe_pretokenize("Hello world, it's 2024!  ok\n\n  x\ty")) ==
        V{"Hello", " world", ",", " it", "'s", " 2024", "!", " ", " ok", "\n\n ", " x", "\t", "y"});
  CHECK(to_strings(mg::bpe_pretokenize("don't we'll  ")) == V{"don", "'t", " we", "'ll", "  "});
  CHECK(to_strings(mg::bpe_pretokenize(" !!?x")) == V{" !!?", "x"});
  // Bytes >= 0x80 count as letters, so UTF-8 words stay whole.
  CHECK(to_strings(mg::bpe_pretokenize("café 日本語")) == V{"café", " 日本語"});
  CHECK(mg::bpe_pretokenize("").empty());

  // Concatenation of the chunks is always the input, whatever the bytes.
  const std::string bytes = all_bytes() + "  \n x" + all_bytes();
  std::string joined;
  for (const auto c : mg::bpe_pretokenize(bytes)) {
    CHECK(!c.empty());
    joined += c;
  }
  CHECK(joined == bytes);
}

TEST_CASE("bpe default tokenizer is bytes plus eos and pad") {
  const BpeTokenizer tok;
  CHECK(tok.vocab_size() == 258);
  CHECK(tok.num_merges() == 0);
  CHECK(tok.eos_id() == 256);
  CHECK(tok.pad_id() == 257);
  CHECK(tok.token_bytes(tok.eos_id()) == "<|endoftext|>");
  CHECK(tok.token_bytes(65) == "A");
  CHECK(tok.encode("hi") == std::vector<std::int32_t>{'h', 'i'});
  CHECK_THROWS_AS(tok.token_bytes(258), TokenizerError);
  CHECK_THROWS_AS(tok.token_bytes(-1), TokenizerError);
  CHECK_THROWS_AS(tok.token_bytes(-1), mg::Error);
}

TEST_CASE("bpe round trips arbitrary bytes exactly") {
  const BpeTokenizer& tok = trained_tokenizer();
  const std::vector<std::string> samples = {
      "",
      "Once upon a time there were two birds. They played in the park!",
      "The dog said: \"it's a big ball\", and 42 cats ran.\n\n\tindented   spaces  ",
      "naïve café — 日本語のテキスト 🙂 Ünïcödé",
      std::string("\xff\xfe\x80 abc \xc3 \xe2\x82 trailing\xf0", 23),
      std::string("nul\0inside\0\0", 12),
      all_bytes(),
      std::string(5000, ' ') + std::string(3000, 'a') + std::string(700, '='),
  };
  for (const auto& s : samples) {
    const auto ids = tok.encode(s);
    CHECK(tok.decode(ids) == s);
    for (const auto id : ids) CHECK(!tok.is_special(id));
  }
  CHECK(tok.encode("").empty());
  CHECK(tok.decode(std::vector<std::int32_t>{}).empty());
  // Training text compresses: far fewer tokens than bytes.
  const std::string text = make_corpus(1, 300, 99)[0];
  CHECK(tok.encode(text).size() * 2 < text.size());
}

TEST_CASE("bpe decode rejects out-of-range ids, naming the position") {
  const BpeTokenizer& tok = trained_tokenizer();
  try {
    tok.decode(std::vector<std::int32_t>{1, 2, tok.vocab_size()});
    FAIL("decode accepted an out-of-range id");
  } catch (const TokenizerError& e) {
    CHECK(std::string(e.what()).find("position 2") != std::string::npos);
  }
  CHECK_THROWS_AS(tok.decode(std::vector<std::int32_t>{-1}), TokenizerError);
}

TEST_CASE("bpe special tokens are recognised only when allowed") {
  BpeSpecialTokens specials;
  specials.extra = {"<|sep|>", "<|sep|>x"};
  const BpeTokenizer tok = BpeTokenizer::train(make_corpus(50, 100, 3), 400, specials);
  CHECK(tok.vocab_size() == 400);
  CHECK(tok.eos_id() == 396);
  CHECK(tok.pad_id() == 397);
  CHECK(tok.special_id("<|endoftext|>") == tok.eos_id());
  CHECK(tok.special_id("<|pad|>") == tok.pad_id());
  CHECK(tok.special_id("<|sep|>") == 398);
  CHECK(tok.special_id("<|sep|>x") == 399);
  CHECK(tok.special_id("nope") == -1);
  CHECK(tok.token_bytes(tok.pad_id()) == "<|pad|>");

  const std::string text = "the dog<|endoftext|>a cat<|pad|><|pad|><|sep|>x<|sep|>";
  const auto with = tok.encode(text, /*allow_special=*/true);
  CHECK(std::count(with.begin(), with.end(), tok.eos_id()) == 1);
  CHECK(std::count(with.begin(), with.end(), tok.pad_id()) == 2);
  // The longest special wins where two start at the same byte.
  CHECK(std::count(with.begin(), with.end(), 399) == 1);
  CHECK(std::count(with.begin(), with.end(), 398) == 1);
  CHECK(tok.decode(with) == text);
  const std::vector<std::int32_t> only = tok.encode("<|endoftext|>", true);
  CHECK(only == std::vector<std::int32_t>{tok.eos_id()});

  const auto without = tok.encode(text, /*allow_special=*/false);
  for (const auto id : without) CHECK(!tok.is_special(id));
  CHECK(tok.decode(without) == text);

  // Special strings in training text are cut out, so no merge spans "<|" or "|>".
  for (std::int32_t id = 256; id < tok.eos_id(); ++id) {
    CHECK(tok.token_bytes(id).find('|') == std::string::npos);
  }
  BpeSpecialTokens dup;
  dup.pad = dup.eos;
  CHECK_THROWS_AS(BpeTokenizer({}, dup), TokenizerError);
  BpeSpecialTokens empty;
  empty.extra = {""};
  CHECK_THROWS_AS(BpeTokenizer({}, empty), TokenizerError);
}

TEST_CASE("bpe training merges the most frequent pair first and breaks ties by lowest ids") {
  // Chunks: "ab" x1, " ab" x3, " cd" x1. Pair counts: (a,b)=4, (' ',a)=3, (' ',c)=1, (c,d)=1.
  const BpeTokenizer tok = BpeTokenizer::train(std::vector<std::string>{"ab ab ab ab cd"}, 300);
  using M = std::vector<std::pair<std::int32_t, std::int32_t>>;
  CHECK(tok.merges() == M{{'a', 'b'}, {' ', 256}, {' ', 'c'}, {258, 'd'}});
  CHECK(tok.token_bytes(257) == " ab");
  CHECK(tok.token_bytes(259) == " cd");
  // No pair is left after four merges, so training stops short of 300.
  CHECK(tok.vocab_size() == 256 + 4 + 2);
  CHECK(tok.eos_id() == 260);
  CHECK(tok.encode("ab ab cd") == std::vector<std::int32_t>{256, 257, 259});
  CHECK(tok.merged_id('a', 'b') == 256);
  CHECK(tok.merged_id('b', 'a') == -1);

  const BpeTokenizer one = BpeTokenizer::train(std::vector<std::string>{"ab ab ab ab cd"}, 259);
  CHECK(one.merges() == M{{'a', 'b'}});
  CHECK(one.vocab_size() == 259);

  // Overlapping runs merge left to right, as encode does: "aaaaa" -> (aa)(aa)a, leaving
  // pairs (aa,aa) and (aa,a) with one occurrence each; the tie goes to the lower ids.
  const BpeTokenizer runs = BpeTokenizer::train(std::vector<std::string>{"aaaaa"}, 300);
  CHECK(runs.merges() == M{{'a', 'a'}, {256, 'a'}, {256, 257}});
  CHECK(runs.encode("aaaaa") == std::vector<std::int32_t>{258});
  CHECK(runs.encode("aaa") == std::vector<std::int32_t>{257});
  CHECK(runs.encode("aaaa") == std::vector<std::int32_t>{256, 256});

  CHECK_THROWS_AS(BpeTokenizer::train(std::vector<std::string>{"abc"}, 257), TokenizerError);
}

TEST_CASE("bpe training reaches the requested vocab size and is deterministic") {
  const auto corpus = make_corpus(300, 150, 11);
  const BpeTokenizer a = BpeTokenizer::train(corpus, 700);
  CHECK(a.vocab_size() == 700);
  CHECK(a.num_merges() == 700 - 256 - 2);
  CHECK(a.eos_id() == 698);
  CHECK(a.pad_id() == 699);

  const BpeTokenizer b = BpeTokenizer::train(corpus, 700);
  CHECK(a.merges() == b.merges());

  // Document order does not matter; neither does feeding through the streaming trainer.
  auto reversed = corpus;
  std::reverse(reversed.begin(), reversed.end());
  mg::BpeTrainer trainer;
  for (const auto& doc : reversed) trainer.add_document(doc);
  CHECK(trainer.unique_chunks() > 0);
  CHECK(trainer.train(700).merges() == a.merges());

  // Token byte strings are the concatenation of their merge parts.
  for (std::int32_t k = 0; k < a.num_merges(); ++k) {
    const auto [l, r] = a.merges()[k];
    CHECK(a.token_bytes(256 + k) == a.token_bytes(l) + a.token_bytes(r));
  }
}

TEST_CASE("bpe incremental training matches a naive full-recount trainer") {
  // The reference recounts every pair before each merge: slow, but obviously right.
  auto corpus = make_corpus(120, 120, 17);
  corpus.push_back("aaaaaaa abababab ====== \n\n\n   x");
  std::map<std::string, std::int64_t> chunk_counts;
  for (const auto& doc : corpus) {
    for (const auto c : mg::bpe_pretokenize(doc)) ++chunk_counts[std::string(c)];
  }
  std::vector<std::pair<std::vector<std::int32_t>, std::int64_t>> words;
  for (const auto& [chunk, n] : chunk_counts) {
    std::vector<std::int32_t> ids;
    for (const char ch : chunk) ids.push_back(static_cast<unsigned char>(ch));
    words.emplace_back(std::move(ids), n);
  }
  const int vocab = 900;
  std::vector<std::pair<std::int32_t, std::int32_t>> expected;
  while (static_cast<int>(expected.size()) < vocab - 258) {
    std::map<std::pair<std::int32_t, std::int32_t>, std::int64_t> counts;
    for (const auto& [ids, n] : words) {
      for (std::size_t i = 0; i + 1 < ids.size(); ++i) counts[{ids[i], ids[i + 1]}] += n;
    }
    if (counts.empty()) break;
    auto best = counts.begin();  // map order: ties resolve to the lowest pair
    for (auto it = counts.begin(); it != counts.end(); ++it) {
      if (it->second > best->second) best = it;
    }
    const auto [a, b] = best->first;
    const auto t = static_cast<std::int32_t>(256 + expected.size());
    expected.emplace_back(a, b);
    for (auto& [ids, n] : words) {
      std::vector<std::int32_t> merged;
      for (std::size_t i = 0; i < ids.size();) {
        if (i + 1 < ids.size() && ids[i] == a && ids[i + 1] == b) {
          merged.push_back(t);
          i += 2;
        } else {
          merged.push_back(ids[i++]);
        }
      }
      ids = std::move(merged);
    }
  }
  // This corpus runs out of pairs before 900, so the early stop is compared too.
  CHECK(expected.size() < static_cast<std::size_t>(vocab - 258));
  CHECK(expected.size() > 300);
  CHECK(BpeTokenizer::train(corpus, vocab).merges() == expected);
  expected.resize(200);
  CHECK(BpeTokenizer::train(corpus, 258 + 200).merges() == expected);
}

TEST_CASE("bpe encoding of training words matches the trained segmentation") {
  // With vocab large enough to exhaust all pairs, each distinct training word is one token.
  const BpeTokenizer tok =
      BpeTokenizer::train(std::vector<std::string>{"the cat sat on the mat, the end."}, 1000);
  for (const auto chunk : mg::bpe_pretokenize("the cat sat on the mat, the end.")) {
    const auto ids = tok.encode(chunk);
    REQUIRE(ids.size() == 1);
    CHECK(tok.token_bytes(ids[0]) == chunk);
  }
}

TEST_CASE("bpe scan and heap merge strategies agree") {
  std::vector<std::string> corpus = make_corpus(100, 100, 5);
  corpus.push_back(std::string(300, '=') + " " + std::string(257, 'a') + " abababababababab");
  const BpeTokenizer tok = BpeTokenizer::train(corpus, 800);
  std::vector<std::string> chunks = {std::string(1000, '='), std::string(999, 'a'),
                                     "abababababababababab", std::string(130, ' ')};
  std::string all;
  for (const auto& doc : corpus) all += doc;
  for (const auto c : mg::bpe_pretokenize(all)) chunks.emplace_back(c);
  for (const auto& c : chunks) {
    CHECK(mg::detail::bpe_merge_scan(tok, c) == mg::detail::bpe_merge_heap(tok, c));
  }
}

TEST_CASE("bpe encode is consistent across the cache, copies and threads") {
  const BpeTokenizer& tok = trained_tokenizer();
  const std::string text = make_corpus(1, 2000, 123)[0];
  const auto first = tok.encode(text);
  CHECK(tok.encode(text) == first);  // now served from the cache
  const BpeTokenizer copy = tok;
  CHECK(copy.encode(text) == first);

  std::vector<std::int32_t> appended = {7};
  tok.encode_append(text, appended);
  CHECK(appended.size() == first.size() + 1);
  CHECK(std::equal(first.begin(), first.end(), appended.begin() + 1));

  const BpeTokenizer fresh(tok.merges(), tok.special_tokens());
  std::vector<std::vector<std::int32_t>> results(4);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < results.size(); ++t) {
    threads.emplace_back([&, t] { results[t] = fresh.encode(text); });
  }
  for (auto& th : threads) th.join();
  for (const auto& r : results) CHECK(r == first);
}

TEST_CASE("bpe save/load round trips and writes atomically") {
  TempDir dir;
  BpeSpecialTokens specials;
  specials.extra = {"<|user|>", "back\\slash x"};
  const BpeTokenizer tok = BpeTokenizer::train(make_corpus(100, 150, 21), 520, specials);
  const std::string path = dir.file("tok.bpe");
  tok.save(path);
  CHECK(std::filesystem::exists(path));
  CHECK(mg::test::atomic_temp_files(path).empty());

  const auto lines = split_lines(read_file(path));
  REQUIRE(lines.size() == static_cast<std::size_t>(4 + 4 + tok.num_merges() + 1));
  CHECK(lines[0] == "mixgrad-bpe 1");
  CHECK(lines[1] == "vocab_size 520");
  CHECK(lines[2] == "merges " + std::to_string(tok.num_merges()));
  CHECK(lines[3] == "specials 4");
  CHECK(lines[4] == "special " + std::to_string(tok.eos_id()) + " eos <|endoftext|>");
  CHECK(lines[7] == "special 519 extra back\\\\slash\\x20x");
  CHECK(lines.back() == "end");

  const BpeTokenizer loaded = BpeTokenizer::load(path);
  CHECK(loaded.merges() == tok.merges());
  CHECK(loaded.special_tokens() == tok.special_tokens());
  CHECK(loaded.vocab_size() == tok.vocab_size());
  const std::string text = make_corpus(1, 500, 77)[0] + "<|user|>日本\xff back\\slash x";
  CHECK(loaded.encode(text, true) == tok.encode(text, true));
  CHECK(loaded.encode(text) == tok.encode(text));
  for (std::int32_t id = 0; id < tok.vocab_size(); ++id) {
    CHECK(loaded.token_bytes(id) == tok.token_bytes(id));
  }

  // Saving over an existing file replaces it.
  const BpeTokenizer small;
  small.save(path);
  CHECK(BpeTokenizer::load(path).vocab_size() == 258);
  CHECK(mg::test::atomic_temp_files(path).empty());

  // An unwritable destination fails with the path and leaves nothing behind.
  const std::string bad = dir.file("no/such/dir/tok.bpe");
  try {
    tok.save(bad);
    FAIL("save into a missing directory succeeded");
  } catch (const TokenizerError& e) {
    CHECK(std::string(e.what()).find("no/such/dir") != std::string::npos);
  }
  CHECK(mg::test::atomic_temp_files(bad).empty());
}

TEST_CASE("bpe load rejects corrupt, truncated and wrong-version files with file and line") {
  TempDir dir;
  const BpeTokenizer tok = BpeTokenizer::train(make_corpus(50, 100, 8), 300);
  const std::string good_path = dir.file("good.bpe");
  tok.save(good_path);
  const auto good = split_lines(read_file(good_path));
  const std::string path = dir.file("bad.bpe");

  auto expect_error = [&](const std::vector<std::string>& lines, int line_no,
                          const std::string& fragment) {
    write_file(path, join_lines(lines));
    const std::string msg = load_error(path);
    CAPTURE(msg);
    CHECK(msg.find(path + ":" + std::to_string(line_no) + ":") != std::string::npos);
    CHECK(msg.find(fragment) != std::string::npos);
  };
  // The good file with line i (0-based) replaced by `text`.
  auto with_line = [&](size_t i, const std::string& text) {
    auto l = good;
    l[i] = text;
    return l;
  };

  expect_error(with_line(0, "mixgrad-bpe 2"), 1, "version");
  expect_error(with_line(0, "something-else 1"), 1, "not a mixgrad BPE file");
  {
    auto l = good;
    l.resize(l.size() - 3);  // lose the last two merges and "end"
    expect_error(l, static_cast<int>(l.size()) + 1, "end of file");
  }
  {
    auto l = good;
    l.pop_back();  // all merges present, "end" missing
    expect_error(l, static_cast<int>(l.size()) + 1, "end of file");
  }
  expect_error(with_line(1, "vocab_size 301"), 4, "vocab_size 301");
  expect_error(with_line(1, "vocab_size x1"), 2, "integer");
  // Merge 1 may use id 256, but its bytes are wrong; then a forward reference.
  expect_error(with_line(8, "256 97 \\x00a"), 9, "do not match");
  expect_error(with_line(8, "300 97 zz"), 9, "left id 300");
  expect_error(with_line(10, "97  98 ab"), 11, "malformed");
  expect_error(with_line(10, "97 98 a\\q"), 11, "escaped");
  expect_error(with_line(5, "special " + std::to_string(tok.pad_id()) + " eos <|pad|>"), 6, "role");
  {
    auto l = good;
    l.push_back("junk");
    expect_error(l, static_cast<int>(l.size()), "after 'end'");
  }
  {
    // Counts that add up (2^31 - 1 tokens) with special ids to match, in a file that ends after
    // 42 merges: the reader must fail at the 'end' line, not reserve 2^31 merges first
    // (std::bad_alloc, or a sanitizer's allocation report).
    auto l = good;
    REQUIRE(l[4].rfind("special 298 eos ", 0) == 0);
    REQUIRE(l[5].rfind("special 299 pad ", 0) == 0);
    l[1] = "vocab_size 2147483647";
    l[2] = "merges 2147483389";
    l[4] = "special 2147483645" + l[4].substr(11);
    l[5] = "special 2147483646" + l[5].substr(11);
    expect_error(l, static_cast<int>(l.size()), "expected merge '<left> <right> <bytes>' (43 of 2147483389)");
  }
  expect_error({}, 1, "end of file");

  const std::string missing = dir.file("missing.bpe");
  CHECK(load_error(missing).find(missing) != std::string::npos);
  CHECK(BpeTokenizer::load(good_path).merges() == tok.merges());
}
