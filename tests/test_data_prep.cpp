// The data cache of experiments/data_prep.h: one builder at a time, rebuilt when the corpus
// content changes, leftovers of killed builders removed, and a vocabulary the corpus cannot fill
// refused before anything is trained on it.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <optional>
#include <string>
#include <thread>

#include "core/atomic_file.h"
#include "data/corpus_fingerprint.h"
#include "experiments/data_prep.h"
#include "tests/temp_dir.h"
#include "tests/test_helpers.h"
#include "train/run_lock.h"

using namespace mg;
namespace fs = std::filesystem;

namespace {

// `n` short stories separated by <|endoftext|> lines; `variant` changes every word of them
// while keeping the byte count (same-length names and things).
std::string stories(int n, int variant = 0) {
  const char* names[2][5] = {{"Tom", "Ann", "Lil", "Max", "Sue"}, {"Bob", "Eve", "Kim", "Ned", "Zoe"}};
  const char* things[2][5] = {{"ball", "cake", "tree", "boat", "kite"}, {"frog", "lamp", "drum", "sock", "pear"}};
  std::string s;
  for (int i = 0; i < n; ++i) {
    const char* who = names[variant][i % 5];
    const char* what = things[variant][(i / 5) % 5];
    s += std::string("Once upon a time ") + who + " had a " + what + ". " + who + " liked the " + what +
         " very much, and played with it every day. The end.\n<|endoftext|>\n";
  }
  return s;
}

DataConfig config(const test::TempDir& dir, int vocab_size = 300) {
  DataConfig c;
  c.corpus.format = "text";
  c.corpus.path = dir.file("corpus.txt");
  c.vocab_size = vocab_size;
  c.cache_dir = dir.file("cache");
  c.split.mode = ValidationSplit::Mode::first;
  c.split.count = 3;
  return c;
}

// The first document of the train shard, decoded.
std::string first_train_text(const PreparedData& d) {
  auto doc = d.train->document(0);
  return d.tokenizer->decode(std::vector<int32_t>(doc.begin(), doc.end()));  // story 3 (0-2: validation)
}

}  // namespace

TEST_CASE("data cache: built once, then reused while the corpus content is the same") {
  test::TempDir dir("mg_data_prep");
  dir.write("corpus.txt", stories(40));
  const DataConfig c = config(dir);
  PreparedData a = prepare_data(c);
  CHECK(a.tokenizer->vocab_size() == 300);
  CHECK(fs::exists(a.dir + "/corpus.fingerprint"));
  const auto t_train = fs::last_write_time(a.dir + "/train.mgtok");
  const auto t_tok = fs::last_write_time(a.dir + "/tokenizer.bpe");
  // A new modification time with the same bytes (a copy, a touch) keeps the cache.
  fs::last_write_time(c.corpus.path, fs::last_write_time(c.corpus.path) + std::chrono::hours(1));
  PreparedData b = prepare_data(c);
  CHECK(fs::last_write_time(b.dir + "/train.mgtok") == t_train);
  CHECK(fs::last_write_time(b.dir + "/tokenizer.bpe") == t_tok);
  CHECK(first_train_text(b) == first_train_text(a));
}

TEST_CASE("data cache: a corpus replaced at the same path, same size and time, is re-tokenized") {
  test::TempDir dir("mg_data_prep");
  dir.write("corpus.txt", stories(40, 0));
  const DataConfig c = config(dir);
  PreparedData a = prepare_data(c);
  const std::string before = first_train_text(a);
  CHECK(before.find("Once upon a time Max") != std::string::npos);

  const auto mtime = fs::last_write_time(c.corpus.path);
  const std::string replacement = stories(40, 1);
  REQUIRE(replacement.size() == stories(40, 0).size());
  dir.write("corpus.txt", replacement);
  fs::last_write_time(c.corpus.path, mtime);  // size and time as before: only the content tells
  PreparedData b = prepare_data(c);
  CHECK(b.dir == a.dir);
  const std::string after = first_train_text(b);
  CHECK(after.find("Once upon a time Ned") != std::string::npos);
  CHECK(after != before);
  CHECK(tokenizer_fingerprint(*b.tokenizer) != tokenizer_fingerprint(*a.tokenizer));
}

TEST_CASE("data cache: a cache without a recorded corpus fingerprint is rebuilt") {
  // What a cache built before fingerprints existed, or by a builder killed before its last file,
  // looks like: nothing says which corpus its files came from, so they are not trusted.
  test::TempDir dir("mg_data_prep");
  dir.write("corpus.txt", stories(40, 0));
  const DataConfig c = config(dir);
  const std::string cache = prepare_data(c).dir;
  fs::remove(cache + "/corpus.fingerprint");
  const auto mtime = fs::last_write_time(c.corpus.path);
  dir.write("corpus.txt", stories(40, 1));
  fs::last_write_time(c.corpus.path, mtime);
  PreparedData rebuilt = prepare_data(c);
  CHECK(first_train_text(rebuilt).find("Once upon a time Ned") != std::string::npos);
  CHECK(fs::exists(cache + "/corpus.fingerprint"));
}

TEST_CASE("data cache: a second builder waits for the first, then reuses its files") {
  test::TempDir dir("mg_data_prep");
  dir.write("corpus.txt", stories(40));
  const DataConfig c = config(dir);
  const std::string cache = data_cache_dir(c);
  std::optional<RunLock> holder;
  holder.emplace(cache, "a test holding the data cache");
  std::atomic<bool> done{false};
  auto fut = std::async(std::launch::async, [&] {
    PreparedData d = prepare_data(c);
    done = true;
    return d.train->num_documents();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  CHECK_FALSE(done.load());                              // still waiting on the lock
  CHECK_FALSE(fs::exists(cache + "/tokenizer.bpe"));     // and wrote nothing meanwhile
  holder.reset();
  CHECK(fut.get() == 37);
  CHECK(done.load());
}

TEST_CASE("data cache: temporary files of a killed builder are removed") {
  test::TempDir dir("mg_data_prep");
  dir.write("corpus.txt", stories(40));
  const DataConfig c = config(dir);
  const std::string cache = data_cache_dir(c);
  fs::create_directories(cache);
  const std::string stale = cache + "/train.mgtok.tmp.4242.0123456789abcdef";
  const std::string keep = cache + "/notes.tmp.txt";  // not an atomic write's name
  test::write_file(stale, "half a shard");
  test::write_file(keep, "mine");
  prepare_data(c);
  CHECK_FALSE(fs::exists(stale));
  CHECK(fs::exists(keep));
  CHECK(test::atomic_temp_files(cache + "/train.mgtok").empty());
}

TEST_CASE("data cache: a corpus too small for data.vocab_size is refused at tokenize time") {
  test::TempDir dir("mg_data_prep");
  dir.write("corpus.txt", stories(10));
  const DataConfig c = config(dir, 4096);
  std::string msg = test::error_of([&] { prepare_data(c); });
  INFO(msg);
  CHECK(msg.find("fewer than data.vocab_size 4096") != std::string::npos);
  CHECK(msg.find("set data.vocab_size to ") != std::string::npos);
  CHECK_FALSE(fs::exists(data_cache_dir(c) + "/tokenizer.bpe"));
  // The size it names works.
  const std::size_t at = msg.find("set data.vocab_size to ") + 23;
  const int suggested = std::stoi(msg.substr(at));
  CHECK(suggested > 258);
  CHECK(suggested < 4096);
  PreparedData d = prepare_data(config(dir, suggested));
  CHECK(d.tokenizer->vocab_size() == suggested);
}

// data.tokenizer: another corpus's tokenizer, used instead of training one.
TEST_CASE("data cache: a given tokenizer is used as it is, and its content keys the cache") {
  test::TempDir dir("mg_data_prep");
  dir.write("corpus.txt", stories(40, 0));
  dir.write("other/corpus.txt", stories(40, 1));
  const PreparedData own = prepare_data(config(dir));  // the tokenizer of corpus.txt
  const std::string given = dir.file("given.bpe");
  fs::copy_file(own.dir + "/tokenizer.bpe", given);

  DataConfig c = config(dir);
  c.corpus.path = dir.file("other/corpus.txt");
  const std::string trained_dir = data_cache_dir(c);  // other/corpus.txt with its own tokenizer
  c.tokenizer = given;
  const PreparedData d = prepare_data(c);
  CHECK(d.dir != trained_dir);
  CHECK(d.dir != own.dir);
  // The cache holds the given tokenizer's bytes, not one trained on other/corpus.txt.
  CHECK(test::read_file(d.dir + "/tokenizer.bpe") == test::read_file(given));
  CHECK_FALSE(fs::exists(trained_dir));
  // Its shards are other/corpus.txt tokenized by it (first 3 stories: validation).
  CHECK(first_train_text(d).find("Once upon a time Ned had a frog") != std::string::npos);
  const auto doc = d.train->document(0);
  // Decoded by the tokenizer the ids came from (own's, the given file's source).
  CHECK(own.tokenizer->decode(std::vector<int32_t>(doc.begin(), doc.end())).find("Once upon a time Ned had a frog") !=
        std::string::npos);
  // Another tokenizer at the same path: a cache of its own, never the shards of the first.
  fs::remove(given);
  DataConfig t = config(dir);
  t.corpus.path = dir.file("other/corpus.txt");
  fs::copy_file(prepare_data(t).dir + "/tokenizer.bpe", given);  // trained on other/corpus.txt
  REQUIRE(test::read_file(given) != test::read_file(own.dir + "/tokenizer.bpe"));
  const PreparedData e = prepare_data(c);
  CHECK(e.dir != d.dir);
  CHECK(test::read_file(e.dir + "/tokenizer.bpe") == test::read_file(given));
  const auto doc_e = e.train->document(0);
  CHECK(std::vector<int32_t>(doc_e.begin(), doc_e.end()) != std::vector<int32_t>(doc.begin(), doc.end()));
}

TEST_CASE("data cache: a given tokenizer that is missing or of another size is refused before anything is written") {
  test::TempDir dir("mg_data_prep");
  dir.write("corpus.txt", stories(40, 0));
  const PreparedData own = prepare_data(config(dir));  // 300 tokens
  DataConfig c = config(dir, 400);
  c.cache_dir = dir.file("cache2");
  c.tokenizer = own.dir + "/tokenizer.bpe";
  std::string msg = test::error_of([&] { prepare_data(c); });
  INFO(msg);
  CHECK(msg.find("has 300 tokens, not data.vocab_size 400") != std::string::npos);
  CHECK(msg.find(c.tokenizer) != std::string::npos);
  CHECK_FALSE(fs::exists(c.cache_dir));

  c.vocab_size = 300;
  c.tokenizer = dir.file("no_such.bpe");
  msg = test::error_of([&] { prepare_data(c); });
  CHECK(msg.find("data.tokenizer '" + c.tokenizer + "' does not exist") != std::string::npos);
  CHECK_FALSE(fs::exists(c.cache_dir));
}

TEST_CASE("corpus fingerprints: serialisation, content comparison, the hash's fixed values") {
  test::TempDir dir("mg_data_prep");
  dir.write("c/a.txt", "alpha");
  dir.write("c/sub/b.txt", "beta beta");
  dir.write("c/skip.md", "not a text file");
  CorpusSpec spec;
  spec.format = "dir";
  spec.path = dir.file("c");
  const CorpusFingerprint fp = fingerprint_corpus(spec);
  REQUIRE(fp.files.size() == 2);
  CHECK(fp.files[0].name == "a.txt");
  CHECK(fp.files[1].name == "sub/b.txt");
  CHECK(fp.files[1].size == 9);
  const CorpusFingerprint back = CorpusFingerprint::parse(fp.serialize(), "x");
  CHECK(back.same_content(fp));
  CHECK(back.files == fp.files);
  dir.write("c/sub/b.txt", "beta bet!");
  const CorpusFingerprint changed = fingerprint_corpus(spec);
  CHECK_FALSE(changed.same_content(fp));
  CHECK(fp.describe_change(changed).find("sub/b.txt changed (9 -> 9 bytes, other content)") != std::string::npos);
  CHECK_THROWS_AS(CorpusFingerprint::parse("mixgrad-corpus-fingerprint 1\n2\n1 2 zz a\n", "x"), CorpusError);
  CHECK_THROWS_AS(fingerprint_corpus([&] { CorpusSpec s; s.format = "text"; s.path = dir.file("none"); return s; }()),
                  CorpusError);
  // A file read in blocks hashes as its bytes at once (1 MiB blocks and a partial word here).
  std::string big((std::size_t(1) << 20) + 13, 'x');
  for (std::size_t i = 0; i < big.size(); i += 97) big[i] = char('a' + i % 26);
  dir.write("big.txt", big);
  CorpusSpec one;
  one.format = "text";
  one.path = dir.file("big.txt");
  const CorpusFingerprint bf = fingerprint_corpus(one);
  REQUIRE(bf.files.size() == 1);
  CHECK(bf.files[0].size == big.size());
  CHECK(bf.files[0].hash == corpus_content_hash(big.data(), big.size()));
  CHECK(corpus_content_hash("", 0) != corpus_content_hash("\0", 1));
  CHECK(corpus_content_hash("abcdefgh", 8) != corpus_content_hash("abcdefgi", 8));
  // Stored in cache files: the value must never change. Computed from the definition in the
  // header by a separate implementation (a few lines of Python), not by this code.
  CHECK(corpus_content_hash("The quick brown fox jumps over the lazy dog", 43) == 0x9b5e9fb180a5f08bULL);
}
