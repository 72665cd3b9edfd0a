// data/: batches from token shards: per-document padding (right/left) and its label masking,
// packed windows, seeded shuffling, exact resume, the fixed validation pass, unigram entropy.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include "tests/temp_dir.h"
#include "data/batcher.h"
#include "data/shards.h"

namespace {

namespace fs = std::filesystem;
using namespace mg;
using Docs = std::vector<std::vector<std::int32_t>>;

using test::TempDir;

std::shared_ptr<const TokenShard> make_shard(const TempDir& dir, const Docs& docs, std::int32_t vocab = 100) {
  static int counter = 0;
  std::string name = std::to_string(counter++);
  name += ".bin";
  const std::string path = (dir.path / name).string();
  ShardWriter w(path, vocab, 0);
  for (const auto& d : docs) w.add_document(d);
  w.finish();
  return std::make_shared<const TokenShard>(TokenShard::open(path));
}

std::vector<std::int32_t> values(const Tensor& t) { return t.to_vector<std::int32_t>(); }

// Rows of an i32 [b, n] tensor.
std::vector<std::vector<std::int32_t>> rows(const Tensor& t) {
  const auto v = values(t);
  const auto n = std::size_t(t.size(1));
  std::vector<std::vector<std::int32_t>> r;
  for (std::size_t i = 0; i < v.size(); i += n) r.emplace_back(v.begin() + std::ptrdiff_t(i), v.begin() + std::ptrdiff_t(i + n));
  return r;
}

// n random documents with lengths in [1, max_len] and ids in [0, 90).
Docs random_docs(int n, int max_len, std::uint64_t seed) {
  Docs docs;
  std::uint64_t s = seed;
  auto next = [&] {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return std::uint32_t(s >> 33);
  };
  for (int i = 0; i < n; ++i) {
    std::vector<std::int32_t> d(1 + next() % std::uint32_t(max_len));
    for (auto& t : d) t = std::int32_t(next() % 90);
    docs.push_back(d);
  }
  return docs;
}

BatcherOptions doc_options(std::int64_t B, std::int64_t n, PadSide side = PadSide::right) {
  BatcherOptions o;
  o.batch_size = B;
  o.n_ctx = n;
  o.pad_id = 99;
  o.eos_id = 98;
  o.pad_side = side;
  o.shuffle = false;
  return o;
}

}  // namespace

TEST_SUITE("batcher") {

TEST_CASE("per-document, right padding: truncation, padding and label masking") {
  TempDir dir;
  const auto shard = make_shard(dir, {{1, 2, 3}, {4, 5, 6, 7, 8, 9, 10}, {11, 12, 13, 14, 15}});
  Batcher b(shard, doc_options(3, 5));
  CHECK(b.samples_per_epoch() == 3);
  CHECK(b.batches_per_epoch() == 1);
  const Batch batch = b.next();
  CHECK(batch.inputs.dtype() == DType::i32);
  CHECK(batch.labels.dtype() == DType::i32);
  CHECK(batch.inputs.shape() == Shape{3, 5});
  CHECK(batch.labels.shape() == Shape{3, 5});
  CHECK(values(batch.inputs) == std::vector<std::int32_t>{1, 2, 3, 99, 99,  //
                                                         4, 5, 6, 7, 8,    // truncated to n_ctx
                                                         11, 12, 13, 14, 15});
  CHECK(values(batch.labels) == std::vector<std::int32_t>{1, 2, 3, -100, -100,  //
                                                         4, 5, 6, 7, 8,        //
                                                         11, 12, 13, 14, 15});
  CHECK(batch.num_real == 3 + 5 + 5);
  CHECK(kIgnoreIndex == -100);
}

TEST_CASE("per-document, left padding puts the last real token at n_ctx - 1") {
  TempDir dir;
  const auto shard = make_shard(dir, {{1, 2, 3}, {4, 5, 6, 7, 8, 9, 10}, {7}});
  ValidationBatches v(shard, doc_options(3, 5, PadSide::left));
  Batch batch;
  REQUIRE(v.next(batch));
  CHECK(values(batch.inputs) == std::vector<std::int32_t>{99, 99, 1, 2, 3,  //
                                                         4, 5, 6, 7, 8,    // first n_ctx tokens kept
                                                         99, 99, 99, 99, 7});
  CHECK(values(batch.labels) == std::vector<std::int32_t>{-100, -100, 1, 2, 3,  //
                                                         4, 5, 6, 7, 8,        //
                                                         -100, -100, -100, -100, 7});
  CHECK(batch.num_real == 9);
  CHECK(!v.next(batch));
}

TEST_CASE("padding is masked by position: a real token equal to pad_id is still scored") {
  TempDir dir;
  const auto shard = make_shard(dir, {{99, 5}, {6, 99, 99, 7}});
  for (PadSide side : {PadSide::right, PadSide::left}) {
    ValidationBatches v(shard, doc_options(2, 4, side));
    Batch batch;
    REQUIRE(v.next(batch));
    const auto in = rows(batch.inputs), lab = rows(batch.labels);
    for (std::size_t r = 0; r < 2; ++r) {
      const std::int64_t len = r == 0 ? 2 : 4;
      const std::int64_t first_real = side == PadSide::right ? 0 : 4 - len;
      for (std::int64_t c = 0; c < 4; ++c) {
        const bool real = c >= first_real && c < first_real + len;
        CHECK(lab[r][std::size_t(c)] == (real ? in[r][std::size_t(c)] : kIgnoreIndex));
      }
    }
    // The document's own 99 survives in the labels.
    CHECK(std::count(lab[0].begin(), lab[0].end(), 99) == 1);
    CHECK(std::count(lab[1].begin(), lab[1].end(), 99) == 2);
  }
}

TEST_CASE("packed windows: documents joined by eos, remainder dropped") {
  TempDir dir;
  const auto shard = make_shard(dir, {{1, 2, 3}, {4, 5}, {6}});
  BatcherOptions o = doc_options(2, 4);
  o.mode = BatchMode::packed;
  // Stream: 1 2 3 E 4 5 E 6 E (9 tokens) -> two windows of 4, the last token dropped.
  Batcher b(shard, o);
  CHECK(b.samples_per_epoch() == 2);
  const Batch batch = b.next();
  CHECK(values(batch.inputs) == std::vector<std::int32_t>{1, 2, 3, 98, 4, 5, 98, 6});
  CHECK(values(batch.labels) == values(batch.inputs));  // nothing to mask
  CHECK(batch.num_real == 8);
}

TEST_CASE("packed windows tile the eos-joined stream exactly") {
  TempDir dir;
  const Docs docs = random_docs(60, 23, 3);
  const auto shard = make_shard(dir, docs);
  std::vector<std::int32_t> stream;
  for (const auto& d : docs) {
    stream.insert(stream.end(), d.begin(), d.end());
    stream.push_back(98);
  }
  for (std::int64_t n : {1, 2, 7, 16, 64}) {
    CAPTURE(n);
    BatcherOptions o = doc_options(5, n);
    o.mode = BatchMode::packed;
    ValidationBatches v(shard, o);
    CHECK(v.num_samples() == stream.size() / std::size_t(n));
    std::vector<std::int32_t> got;
    Batch batch;
    while (v.next(batch)) {
      const auto vals = values(batch.inputs);
      got.insert(got.end(), vals.begin(), vals.end());
    }
    CHECK(got == std::vector<std::int32_t>(stream.begin(), stream.begin() + std::ptrdiff_t(got.size())));
    CHECK(got.size() == v.num_samples() * std::size_t(n));
  }
}

TEST_CASE("shuffled_order is a seeded permutation") {
  for (std::uint64_t n : {0ULL, 1ULL, 2ULL, 10ULL, 1000ULL}) {
    const auto o = shuffled_order(n, 5, 0);
    auto sorted = o;
    std::sort(sorted.begin(), sorted.end());
    for (std::uint64_t i = 0; i < n; ++i) CHECK(sorted[i] == i);
  }
  CHECK(shuffled_order(1000, 5, 0) == shuffled_order(1000, 5, 0));
  CHECK(shuffled_order(1000, 5, 0) != shuffled_order(1000, 6, 0));
  CHECK(shuffled_order(1000, 5, 0) != shuffled_order(1000, 5, 1));
  // Roughly uniform: where element 0 lands over many epochs covers every slot of 4.
  std::vector<int> slot(4, 0);
  for (std::uint64_t e = 0; e < 4000; ++e) {
    const auto o = shuffled_order(4, 9, e);
    ++slot[std::size_t(std::find(o.begin(), o.end(), 0) - o.begin())];
  }
  for (int c : slot) CHECK(std::abs(c - 1000) < 150);  // sd ~ 27
}

TEST_CASE("training batches: each epoch a permutation, deterministic per seed") {
  TempDir dir;
  const Docs docs = random_docs(12, 6, 11);
  const auto shard = make_shard(dir, docs);
  BatcherOptions o = doc_options(4, 6);
  o.shuffle = true;
  o.seed = 1234;
  Batcher a(shard, o), b(shard, o);
  std::vector<std::set<std::vector<std::int32_t>>> epoch_rows(3);
  for (int e = 0; e < 3; ++e) {
    for (int i = 0; i < 3; ++i) {
      CHECK(a.position().epoch == std::uint64_t(e));
      const Batch x = a.next(), y = b.next();
      CHECK(values(x.inputs) == values(y.inputs));
      for (const auto& r : rows(x.inputs)) epoch_rows[std::size_t(e)].insert(r);
    }
  }
  // Every document once per epoch (documents are distinct rows with high probability; check).
  std::set<std::vector<std::int32_t>> all;
  for (const auto& d : docs) {
    std::vector<std::int32_t> r = d;
    r.resize(6, 99);
    all.insert(r);
  }
  REQUIRE(all.size() == docs.size());
  for (const auto& e : epoch_rows) CHECK(e == all);
  CHECK(a.epoch_order(0) != a.epoch_order(1));
  // Another seed gives another order.
  o.seed = 99;
  Batcher c(shard, o);
  CHECK(c.epoch_order(0) != a.epoch_order(0));
  // Without shuffling the order is the shard order.
  o.shuffle = false;
  Batcher d(shard, o);
  ValidationBatches v(shard, o);
  Batch first;
  REQUIRE(v.next(first));
  CHECK(values(d.next().inputs) == values(first.inputs));
}

TEST_CASE("an incomplete last batch is skipped, the next epoch starts fresh") {
  TempDir dir;
  const auto shard = make_shard(dir, random_docs(10, 5, 2));
  BatcherOptions o = doc_options(4, 5);
  o.shuffle = true;
  o.seed = 7;
  Batcher b(shard, o);
  CHECK(b.batches_per_epoch() == 2);
  const auto order0 = b.epoch_order(0), order1 = b.epoch_order(1);
  b.next();
  CHECK(b.position() == BatchPosition{0, 4, 7});
  b.next();
  // Samples 8..9 of epoch 0 cannot fill a batch: the position moves on to epoch 1.
  CHECK(b.position() == BatchPosition{1, 0, 7});
  const Batch third = b.next();
  CHECK(b.position() == BatchPosition{1, 4, 7});
  b.set_position(BatchPosition{3, 8, 7});
  CHECK(b.position() == BatchPosition{4, 0, 7});
  ValidationBatches first4(shard, doc_options(10, 5));
  Batch all;
  first4.next(all);
  const auto all_rows = rows(all.inputs), got = rows(third.inputs);
  for (std::size_t r = 0; r < 4; ++r) CHECK(got[r] == all_rows[std::size_t(order1[r])]);
}

TEST_CASE("resume from a saved position reproduces the batches exactly") {
  TempDir dir;
  const auto shard = make_shard(dir, random_docs(23, 9, 5));
  for (BatchMode mode : {BatchMode::per_document, BatchMode::packed}) {
    BatcherOptions o = doc_options(3, 8);
    o.mode = mode;
    o.shuffle = true;
    o.seed = 2024;
    Batcher run(shard, o);
    for (int i = 0; i < 11; ++i) run.next();  // crosses epoch boundaries
    const BatchPosition saved = run.position();
    std::vector<std::vector<std::int32_t>> expect;
    for (int i = 0; i < 17; ++i) expect.push_back(values(run.next().inputs));

    BatcherOptions other = o;
    other.seed = 1;  // the saved position's seed wins
    Batcher resumed(shard, other);
    resumed.next();  // some unrelated state first
    resumed.set_position(saved);
    CHECK(resumed.position() == saved);
    for (int i = 0; i < 17; ++i) CHECK(values(resumed.next().inputs) == expect[std::size_t(i)]);
    CHECK(resumed.position() == run.position());
  }
  Batcher b(shard, doc_options(3, 8));
  CHECK_THROWS_AS(b.set_position(BatchPosition{0, 24, 0}), Error);
}

TEST_CASE("validation batches: fixed order, full coverage, short last batch, reset") {
  TempDir dir;
  const Docs docs = random_docs(10, 7, 8);
  const auto shard = make_shard(dir, docs);
  BatcherOptions o = doc_options(4, 7);
  o.shuffle = true;  // ignored by the validation pass
  o.seed = 5;
  ValidationBatches v(shard, o);
  CHECK(v.num_batches() == 3);
  std::vector<std::vector<std::int32_t>> first_pass;
  std::vector<std::int64_t> sizes;
  Batch batch;
  while (v.next(batch)) {
    sizes.push_back(batch.inputs.size(0));
    for (const auto& r : rows(batch.inputs)) first_pass.push_back(r);
  }
  CHECK(sizes == std::vector<std::int64_t>{4, 4, 2});
  REQUIRE(first_pass.size() == docs.size());
  for (std::size_t i = 0; i < docs.size(); ++i) {
    std::vector<std::int32_t> expect = docs[i];
    expect.resize(7, 99);
    CHECK(first_pass[i] == expect);
  }
  v.reset();
  std::vector<std::vector<std::int32_t>> second_pass;
  while (v.next(batch))
    for (const auto& r : rows(batch.inputs)) second_pass.push_back(r);
  CHECK(second_pass == first_pass);
}

TEST_CASE("invalid batcher options are errors") {
  TempDir dir;
  const auto shard = make_shard(dir, {{1, 2}, {3}});
  BatcherOptions o = doc_options(2, 4);
  o.pad_id = -1;
  CHECK_THROWS_AS(Batcher(shard, o), Error);
  o.pad_id = 100;  // == vocab
  CHECK_THROWS_AS(Batcher(shard, o), Error);
  o = doc_options(2, 4);
  o.mode = BatchMode::packed;
  o.eos_id = -1;
  CHECK_THROWS_AS(Batcher(shard, o), Error);
  o = doc_options(2, 0);
  CHECK_THROWS_AS(Batcher(shard, o), Error);
  o = doc_options(0, 4);
  CHECK_THROWS_AS(Batcher(shard, o), Error);
  o = doc_options(3, 4);  // 2 documents < one batch of 3
  CHECK_THROWS_AS(Batcher(shard, o), Error);
  CHECK_NOTHROW(ValidationBatches(shard, o));  // a validation pass may be shorter than a batch
  o = doc_options(1, 6);
  o.mode = BatchMode::packed;  // stream of 5 tokens does not fill a window of 6
  CHECK_THROWS_AS(Batcher(shard, o), Error);
  o.n_ctx = 5;
  CHECK_NOTHROW(Batcher(shard, o));
  CHECK_THROWS_AS(Batcher(nullptr, doc_options(1, 4)), Error);
}

TEST_CASE("unigram entropy of the train tokens") {
  TempDir dir;
  CHECK(unigram_entropy(*make_shard(dir, {{0, 0, 1, 1}})) == doctest::Approx(std::log(2.0)).epsilon(1e-12));
  CHECK(unigram_entropy(*make_shard(dir, {{0, 1}, {2, 3}})) == doctest::Approx(std::log(4.0)).epsilon(1e-12));
  CHECK(unigram_entropy(*make_shard(dir, {{5, 5, 5}})) == 0.0);
  // p = (1/2, 1/4, 1/4): H = 1.5 ln 2.
  CHECK(unigram_entropy(*make_shard(dir, {{7, 7}, {8, 9}})) == doctest::Approx(1.5 * std::log(2.0)).epsilon(1e-12));
  ShardWriter w((dir.path / "empty.bin").string(), 10, 0);
  w.finish();
  CHECK_THROWS_AS(unigram_entropy(TokenShard::open((dir.path / "empty.bin").string())), Error);
}

}  // TEST_SUITE
