// data/: token shard files (round trip, atomic writes, every corruption the reader must catch)
// and tokenising a corpus into train/validation shards with a fixed split.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <omp.h>
#include <unistd.h>

#include "tests/temp_dir.h"
#include "tests/test_helpers.h"
#include "data/bpe_tokenizer.h"
#include "data/corpus.h"
#include "data/shards.h"

namespace {

namespace fs = std::filesystem;
using namespace mg;

using test::error_of;
using test::read_file;
using test::TempDir;
using test::write_file;

const std::vector<std::vector<std::int32_t>> kDocs = {
    {1, 2, 3}, {4}, {5, 6, 7, 8, 9}, {999, 0, 999}, {7, 7}};

std::string write_sample_shard(const std::string& path, std::uint64_t fp = 42) {
  ShardWriter w(path, 1000, fp);
  for (const auto& d : kDocs) w.add_document(d);
  w.finish();
  return path;
}

// Deterministic varied documents for tokenising.
std::vector<std::string> make_docs(int n) {
  static const char* const kWords[] = {"the", "cat", "sat", "on", "a", "mat", "and", "dog",
                                       "ran", "to", "park", "Lily", "saw", "big", "red", "ball"};
  std::vector<std::string> docs;
  std::uint64_t s = 7;
  for (int i = 0; i < n; ++i) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    const int len = 3 + int((s >> 33) % 40);
    std::string d = "doc" + std::to_string(i);
    for (int w = 0; w < len; ++w) {
      s = s * 6364136223846793005ULL + 1442695040888963407ULL;
      d += ' ';
      d += kWords[(s >> 40) % 16];
    }
    docs.push_back(d + ".");
  }
  return docs;
}

std::string joined(const std::vector<std::string>& docs) {
  std::string s;
  for (const auto& d : docs) s += d + "<|endoftext|>";
  return s;
}

}  // namespace

TEST_SUITE("shards") {

TEST_CASE("round trip: header, tokens, documents, offsets") {
  TempDir dir;
  const std::string path = write_sample_shard(dir.file("a.bin"));
  const TokenShard s = TokenShard::open(path);
  CHECK(s.path() == path);
  CHECK(s.vocab_size() == 1000);
  CHECK(s.fingerprint() == 42);
  CHECK(s.num_documents() == kDocs.size());
  CHECK(s.num_tokens() == 14);
  const std::vector<std::uint64_t> offsets(s.offsets().begin(), s.offsets().end());
  CHECK(offsets == std::vector<std::uint64_t>{0, 3, 4, 9, 12, 14});
  for (std::size_t d = 0; d < kDocs.size(); ++d) {
    const auto doc = s.document(d);
    CHECK(std::vector<std::int32_t>(doc.begin(), doc.end()) == kDocs[d]);
  }
  CHECK_THROWS_AS(s.document(kDocs.size()), Error);
  // 64-byte header + 14 tokens (28 bytes padded to 32) + 6 offsets.
  CHECK(fs::file_size(path) == 64 + 32 + 6 * 8);
  CHECK(read_file(path).substr(0, 8) == std::string("MGTOK1\0\0", 8));

  // An empty shard is valid too, and a moved shard keeps its mapping.
  const std::string empty = dir.file("empty.bin");
  {
    ShardWriter w(empty, 5, 0);
    w.finish();
  }
  TokenShard e = TokenShard::open(empty);
  CHECK(e.num_documents() == 0);
  CHECK(e.num_tokens() == 0);
  TokenShard moved = std::move(e);
  CHECK(moved.offsets().size() == 1);
  TokenShard m2 = TokenShard::open(path);
  m2 = std::move(moved);
  CHECK(m2.num_documents() == 0);
}

TEST_CASE("large shards span several write buffers") {
  TempDir dir;
  const std::string path = dir.file("big.bin");
  std::vector<std::vector<std::int32_t>> docs;
  std::uint64_t s = 1;
  {
    ShardWriter w(path, 65535, 7);
    for (int d = 0; d < 300; ++d) {
      s = s * 6364136223846793005ULL + 1442695040888963407ULL;
      std::vector<std::int32_t> doc(1 + (s >> 33) % 9000);
      for (auto& t : doc) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        t = std::int32_t((s >> 33) % 65535);
      }
      w.add_document(doc);
      docs.push_back(std::move(doc));
    }
    w.finish();
  }
  const TokenShard sh = TokenShard::open(path);
  REQUIRE(sh.num_documents() == docs.size());
  for (std::size_t d = 0; d < docs.size(); ++d) {
    const auto doc = sh.document(d);
    REQUIRE(std::vector<std::int32_t>(doc.begin(), doc.end()) == docs[d]);
  }
  CHECK(sh.num_tokens() > (std::uint64_t(1) << 20));  // more than one writer flush
}

TEST_CASE("writer is atomic and rejects bad input") {
  TempDir dir;
  const std::string path = dir.file("s.bin");
  write_file(path, "old contents");
  {
    ShardWriter w(path, 10, 1);
    w.add_document(std::vector<std::int32_t>{1, 2});
    CHECK(test::atomic_temp_files(path).size() == 1);
    CHECK(read_file(path) == "old contents");  // untouched until finish()
  }  // abandoned
  CHECK(test::atomic_temp_files(path).empty());
  CHECK(read_file(path) == "old contents");

  ShardWriter w(path, 10, 1);
  CHECK(error_of<ShardError>([&] { w.add_document(std::vector<std::int32_t>{1, 10}); }) ==
        path + ": document 0 token 1 has id 10, outside [0, 10)");
  CHECK(error_of<ShardError>([&] { w.add_document(std::vector<std::int32_t>{-1}); }).find("has id -1") !=
        std::string::npos);
  CHECK(error_of<ShardError>([&] { w.add_document(std::vector<std::int32_t>{}); }) ==
        path + ": document 0 is empty");
  w.add_document(std::vector<std::int32_t>{9});
  w.finish();
  CHECK(test::atomic_temp_files(path).empty());
  CHECK(TokenShard::open(path).num_tokens() == 1);

  CHECK(error_of<ShardError>([&] { ShardWriter(dir.file("v.bin"), 65536, 0); }).find("vocab size 65536") !=
        std::string::npos);
  CHECK_THROWS_AS(ShardWriter(dir.file("v.bin"), 0, 0), ShardError);
  CHECK_NOTHROW(ShardWriter(dir.file("v.bin"), 65535, 0));
  CHECK(error_of<ShardError>([&] { ShardWriter(dir.file("no/such/dir/x.bin"), 10, 0); })
            .find("cannot create") != std::string::npos);
}

TEST_CASE("reader rejects every kind of corruption, naming the file") {
  TempDir dir;
  const std::string good = read_file(write_sample_shard(dir.file("good.bin")));
  const std::string path = dir.file("bad.bin");
  auto expect_error = [&](const std::string& bytes, const std::string& what) {
    write_file(path, bytes);
    const std::string msg = error_of<ShardError>([&] { TokenShard::open(path); });
    CHECK_MESSAGE(msg.find(path + ": ") == 0, msg);
    CHECK_MESSAGE(msg.find(what) != std::string::npos, msg);
  };
  auto patched = [&](std::size_t offset, const void* data, std::size_t n) {
    std::string b = good;
    std::memcpy(b.data() + offset, data, n);
    return b;
  };
  auto u64 = [](std::uint64_t v) { return v; };

  expect_error("", "truncated");
  expect_error(good.substr(0, 63), "truncated");
  expect_error(good.substr(0, good.size() - 1), "truncated");
  expect_error(good.substr(0, 64 + 10), "truncated");
  expect_error(good + std::string(8, '\0'), "trailing data");
  expect_error(patched(0, "MGTOK2", 6), "wrong magic");
  expect_error(std::string(200, 'x'), "wrong magic");
  const std::uint32_t v2 = 2;
  expect_error(patched(8, &v2, 4), "version 2");
  const std::uint32_t big_vocab = 70000, zero_vocab = 0;
  expect_error(patched(12, &big_vocab, 4), "vocab size 70000");
  expect_error(patched(12, &zero_vocab, 4), "vocab size 0");
  const std::uint64_t many = u64(1) << 40;
  expect_error(patched(16, &many, 8), "cannot fit");  // num_documents
  expect_error(patched(24, &many, 8), "cannot fit");  // num_tokens
  const std::uint64_t six = 6;  // one document more: sizes no longer add up
  expect_error(patched(16, &six, 8), "truncated");
  const std::uint8_t one = 1;
  expect_error(patched(50, &one, 1), "reserved bytes");
  // A flipped token bit: only the checksum can tell.
  std::string flipped = good;
  flipped[64 + 4] ^= 0x01;
  expect_error(flipped, "checksum mismatch");
  // Offset table damage (the structural checks run before the checksum).
  const std::size_t off_at = 64 + 32;
  const std::uint64_t seven = 7, two = 2, thirteen = 13;
  expect_error(patched(off_at, &seven, 8), "first offset is 7");
  expect_error(patched(off_at + 2 * 8, &two, 8), "document 1 spans [3, 2)");
  expect_error(patched(off_at + 5 * 8, &thirteen, 8), "last offset 13");
  // A token id >= vocab with a matching checksum (a writer bug, not bit rot).
  {
    std::string b = good;
    const std::uint16_t id = 1000;
    std::memcpy(b.data() + 64, &id, 2);
    const std::uint64_t sum = shard_checksum(b.data() + 64, b.size() - 64);
    std::memcpy(b.data() + 40, &sum, 8);
    expect_error(b, "token id 1000 >= vocab size 1000");
  }
  // Missing file.
  const std::string missing = dir.file("missing.bin");
  CHECK(error_of<ShardError>([&] { TokenShard::open(missing); }).find(missing + ": cannot open") == 0);
  // verify = false skips the full pass but keeps the structural checks.
  write_file(path, flipped);
  CHECK_NOTHROW(TokenShard::open(path, {std::nullopt, false}));
  write_file(path, good.substr(0, good.size() - 8));
  CHECK_THROWS_AS(TokenShard::open(path, {std::nullopt, false}), ShardError);
}

TEST_CASE("tokenizer fingerprints and mismatch detection") {
  TempDir dir;
  const auto docs = make_docs(50);
  const BpeTokenizer a = BpeTokenizer::train(docs, 300);
  const BpeTokenizer b = BpeTokenizer::train(docs, 301);
  BpeSpecialTokens other_specials;
  other_specials.pad = "<|padding|>";
  const BpeTokenizer c(a.merges(), other_specials);
  CHECK(tokenizer_fingerprint(a) == tokenizer_fingerprint(BpeTokenizer(a)));
  a.save(dir.file("a.tok"));
  CHECK(tokenizer_fingerprint(a) == tokenizer_fingerprint(BpeTokenizer::load(dir.file("a.tok"))));
  CHECK(tokenizer_fingerprint(a) != tokenizer_fingerprint(b));
  CHECK(tokenizer_fingerprint(a) != tokenizer_fingerprint(c));
  CHECK(tokenizer_fingerprint(a) != 0);

  const std::string path = write_sample_shard(dir.file("s.bin"), tokenizer_fingerprint(a));
  CHECK_NOTHROW(TokenShard::open(path, {tokenizer_fingerprint(a), true}));
  CHECK(error_of<ShardError>([&] { TokenShard::open(path, {tokenizer_fingerprint(b), true}); })
            .find("tokenizer mismatch") != std::string::npos);
}

TEST_CASE("validation membership by hash is fixed and has the asked fraction") {
  int in = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) in += is_validation_document(std::uint64_t(i), 0.05);
  // Binomial(200000, 0.05): sd ~ 97.
  CHECK(in > 10000 - 500);
  CHECK(in < 10000 + 500);
  for (std::uint64_t i = 0; i < 1000; ++i) {
    CHECK(!is_validation_document(i, 0.0));
    CHECK(is_validation_document(i, 1.0));
    // Monotone in the fraction: a bigger split contains the smaller one.
    if (is_validation_document(i, 0.01)) CHECK(is_validation_document(i, 0.02));
  }
}

TEST_CASE("tokenize_corpus: hash split, order, round trip, determinism across threads") {
  TempDir dir;
  const auto docs = make_docs(600);
  const BpeTokenizer tok = BpeTokenizer::train(docs, 400);
  std::ofstream(dir.file("c.txt"), std::ios::binary) << joined(docs);

  TokenizeOptions opt;
  opt.split.fraction = 0.1;
  opt.block_documents = 37;  // many blocks, one not full
  auto reader = open_separated_text(dir.file("c.txt"));
  const TokenizeReport rep = tokenize_corpus(*reader, tok, dir.file("train.bin"), dir.file("val.bin"), opt);
  CHECK(reader->stats().documents == docs.size());

  std::vector<std::string> expect_train, expect_val;
  for (std::size_t i = 0; i < docs.size(); ++i)
    (is_validation_document(i, 0.1) ? expect_val : expect_train).push_back(docs[i]);
  REQUIRE(!expect_val.empty());
  const TokenShard train = TokenShard::open(dir.file("train.bin"), {tokenizer_fingerprint(tok), true});
  const TokenShard val = TokenShard::open(dir.file("val.bin"), {tokenizer_fingerprint(tok), true});
  CHECK(rep.train_documents == expect_train.size());
  CHECK(rep.validation_documents == expect_val.size());
  CHECK(rep.train_tokens == train.num_tokens());
  CHECK(rep.validation_tokens == val.num_tokens());
  CHECK(train.vocab_size() == tok.vocab_size());
  REQUIRE(train.num_documents() == expect_train.size());
  REQUIRE(val.num_documents() == expect_val.size());
  auto decode = [&](const TokenShard& s, std::uint64_t d) {
    const auto t = s.document(d);
    return tok.decode(std::vector<std::int32_t>(t.begin(), t.end()));
  };
  for (std::size_t i = 0; i < expect_train.size(); ++i) CHECK(decode(train, i) == expect_train[i]);
  for (std::size_t i = 0; i < expect_val.size(); ++i) CHECK(decode(val, i) == expect_val[i]);

  // Byte-identical output with one thread and with several.
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  auto r1 = open_separated_text(dir.file("c.txt"));
  tokenize_corpus(*r1, tok, dir.file("train1.bin"), dir.file("val1.bin"), opt);
  omp_set_num_threads(4);
  auto r4 = open_separated_text(dir.file("c.txt"));
  tokenize_corpus(*r4, tok, dir.file("train4.bin"), dir.file("val4.bin"), opt);
  omp_set_num_threads(saved);
  CHECK(read_file(dir.file("train1.bin")) == read_file(dir.file("train.bin")));
  CHECK(read_file(dir.file("train4.bin")) == read_file(dir.file("train.bin")));
  CHECK(read_file(dir.file("val4.bin")) == read_file(dir.file("val.bin")));

  // The split is fixed by document index: appending documents moves none of the earlier ones.
  auto more = docs;
  for (const auto& d : make_docs(700)) more.push_back("extra " + d);
  std::ofstream(dir.file("more.txt"), std::ios::binary) << joined(more);
  auto rm = open_separated_text(dir.file("more.txt"));
  tokenize_corpus(*rm, tok, dir.file("train_m.bin"), dir.file("val_m.bin"), opt);
  const TokenShard val_m = TokenShard::open(dir.file("val_m.bin"));
  REQUIRE(val_m.num_documents() >= expect_val.size());
  for (std::size_t i = 0; i < expect_val.size(); ++i) CHECK(decode(val_m, i) == expect_val[i]);
}

TEST_CASE("tokenize_corpus: first / last splits and max_documents") {
  TempDir dir;
  const auto docs = make_docs(120);
  const BpeTokenizer tok = BpeTokenizer::train(docs, 350);
  std::ofstream(dir.file("c.txt"), std::ios::binary) << joined(docs);
  auto count_docs = [&](const std::string& p) { return TokenShard::open(p).num_documents(); };
  auto first_doc = [&](const std::string& p) {
    const TokenShard s = TokenShard::open(p);
    const auto t = s.document(0);
    return tok.decode(std::vector<std::int32_t>(t.begin(), t.end()));
  };

  TokenizeOptions last;
  last.split.mode = ValidationSplit::Mode::last;
  last.split.count = 15;
  last.block_documents = 8;
  auto r = open_separated_text(dir.file("c.txt"));
  tokenize_corpus(*r, tok, dir.file("t.bin"), dir.file("v.bin"), last);
  CHECK(count_docs(dir.file("t.bin")) == 105);
  CHECK(count_docs(dir.file("v.bin")) == 15);
  CHECK(first_doc(dir.file("v.bin")) == docs[105]);
  CHECK(first_doc(dir.file("t.bin")) == docs[0]);

  TokenizeOptions first;
  first.split.mode = ValidationSplit::Mode::first;
  first.split.count = 20;
  first.max_documents = 50;
  auto r2 = open_separated_text(dir.file("c.txt"));
  const TokenizeReport rep = tokenize_corpus(*r2, tok, dir.file("t2.bin"), dir.file("v2.bin"), first);
  CHECK(rep.validation_documents == 20);
  CHECK(rep.train_documents == 30);
  CHECK(first_doc(dir.file("t2.bin")) == docs[20]);
  CHECK(first_doc(dir.file("v2.bin")) == docs[0]);

  // More validation documents asked than exist: all go to validation, train is empty.
  last.split.count = 1000;
  auto r3 = open_separated_text(dir.file("c.txt"));
  tokenize_corpus(*r3, tok, dir.file("t3.bin"), dir.file("v3.bin"), last);
  CHECK(count_docs(dir.file("t3.bin")) == 0);
  CHECK(count_docs(dir.file("v3.bin")) == 120);
}

TEST_CASE("tokenize_corpus rejects vocabularies that do not fit uint16 and bad options") {
  TempDir dir;
  std::ofstream(dir.file("c.txt"), std::ios::binary) << "a b";
  // 65,280 distinct byte-pair merges + 2 specials = 65,538 tokens.
  std::vector<std::pair<std::int32_t, std::int32_t>> merges;
  for (std::int32_t a = 0; a < 256 && merges.size() < 65280; ++a)
    for (std::int32_t b = 0; b < 256 && merges.size() < 65280; ++b) merges.emplace_back(a, b);
  const BpeTokenizer big(merges, BpeSpecialTokens{});
  REQUIRE(big.vocab_size() == 65538);
  auto r = open_separated_text(dir.file("c.txt"));
  CHECK(error_of<ShardError>([&] { tokenize_corpus(*r, big, dir.file("t.bin"), dir.file("v.bin")); })
            .find("vocab size 65538") != std::string::npos);
  CHECK(!fs::exists(dir.file("t.bin")));

  const BpeTokenizer small;
  TokenizeOptions bad;
  bad.split.fraction = 1.5;
  auto r2 = open_separated_text(dir.file("c.txt"));
  CHECK_THROWS_AS(tokenize_corpus(*r2, small, dir.file("t.bin"), dir.file("v.bin"), bad), ShardError);
  auto r3 = open_separated_text(dir.file("c.txt"));
  CHECK_THROWS_AS(tokenize_corpus(*r3, small, dir.file("t.bin"), dir.file("t.bin")), ShardError);
  CHECK(test::atomic_temp_files(dir.file("t.bin")).empty());
}

}  // TEST_SUITE
