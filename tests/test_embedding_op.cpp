// embedding: forward picks rows, backward scatter-adds (repeated ids accumulate exactly and
// deterministically), gradients against finite differences, and argument errors.
#include <functional>

#include "ops/embedding.h"
#include "tests/test_helpers.h"

using namespace mg;
using namespace mg::test;

namespace {
Tensor ids_of(const std::vector<int32_t>& v, const Shape& s) { return from_vector(v, s); }
}  // namespace

TEST_CASE("embedding forward picks rows for ids of any shape") {
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor w = randn({6, 4}, 1, TensorOptions{dt});
    std::vector<int32_t> iv = {5, 0, 3, 3, 1, 0};
    for (const Shape& s : {Shape{6}, Shape{2, 3}, Shape{3, 1, 2}}) {
      Tensor out = embedding(w, ids_of(iv, s));
      Shape expect = s;
      expect.push_back(4);
      CHECK(out.shape() == expect);
      CHECK(out.is_contiguous());
      std::vector<double> o = vals(out), wv = vals(w);
      for (size_t i = 0; i < iv.size(); ++i)
        for (size_t j = 0; j < 4; ++j) CHECK(o[i * 4 + j] == wv[size_t(iv[i]) * 4 + j]);
    }
    // 0-dim ids give one [D] row; a non-contiguous weight works.
    CHECK(embedding(w, from_vector<int32_t>({2}, Shape{})).shape() == Shape{4});
    Tensor wt = randn({4, 6}, 2, TensorOptions{dt}).t();
    REQUIRE_FALSE(wt.is_contiguous());
    std::vector<double> o = vals(embedding(wt, ids_of({4, 1}, {2}))), wv = vals(wt.contiguous());
    for (size_t j = 0; j < 4; ++j) {
      CHECK(o[j] == wv[4 * 4 + j]);
      CHECK(o[4 + j] == wv[1 * 4 + j]);
    }
  }
}

TEST_CASE("embedding backward: repeated ids accumulate exactly, unused rows get zero") {
  Tensor w = zeros({5, 3});
  w.set_requires_grad(true);
  Tensor ids = ids_of({2, 0, 2, 2, 4, 0}, {2, 3});
  // upstream gradient: row i filled with i + 1 (small integers: every sum is exact in f32)
  std::vector<float> gv;
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 3; ++j) gv.push_back(float(i + 1) + 0.25f * float(j));
  embedding(w, ids).backward(from_vector(gv, Shape{2, 3, 3}));
  std::vector<double> g = vals(w.grad());
  auto row = [&](double base, int n) { return std::vector<double>{base, base + 0.25 * n, base + 0.5 * n}; };
  std::vector<std::vector<double>> expect = {row(2 + 6, 2), {0, 0, 0}, row(1 + 3 + 4, 3), {0, 0, 0}, row(5, 1)};
  for (size_t r = 0; r < 5; ++r)
    for (size_t j = 0; j < 3; ++j) {
      INFO("row " << r << " col " << j);
      CHECK(g[r * 3 + j] == expect[r][j]);
    }
}

TEST_CASE("embedding backward is deterministic with many repeated ids (threads)") {
  Tensor w = randn({50, 256}, 3);
  Tensor ids = randint(0, 50, {4096}, 4);
  Tensor up = randn({4096, 256}, 5);
  auto run = [&] {
    Tensor wl = w.detach();
    wl.set_requires_grad(true);
    embedding(wl, ids).backward(up);
    return wl.grad().to_vector<float>();
  };
  std::vector<float> a = run(), b = run();
  CHECK(a == b);
  // and matches a plain double accumulation
  std::vector<int32_t> iv = ids.to_vector<int32_t>();
  std::vector<double> uv = vals(up), ref(50 * 256, 0.0);
  for (size_t i = 0; i < iv.size(); ++i)
    for (size_t j = 0; j < 256; ++j) ref[size_t(iv[i]) * 256 + j] += uv[i * 256 + j];
  size_t bad = 0;
  for (size_t k = 0; k < ref.size(); ++k) bad += std::abs(a[k] - ref[k]) > 1e-4 * (1 + std::abs(ref[k]));
  CHECK(bad == 0);
}

TEST_CASE("embedding gradients match finite differences (f64)") {
  Tensor ids = ids_of({1, 3, 1, 0, 3, 3}, {2, 3});
  std::function<Tensor(const std::vector<Tensor>&)> f = [&](const std::vector<Tensor>& in) {
    return embedding(in[0], ids);
  };
  check_grad(f, {leaf64({4, 5}, 10)});
  check_grad(f, {leaf64({4, 1}, 11)});                 // D = 1
  Tensor one = ids_of({2}, {1});
  check_grad([&](const std::vector<Tensor>& in) { return embedding(in[0], one); }, {leaf64({3, 7}, 12)});
  check_grad_non_contiguous(f, {4, 5}, {4, 5}, 13);
}

TEST_CASE("embedding errors name the op, the bad id and its position") {
  Tensor w = randn({6, 4}, 20);
  CHECK_THROWS_WITH_AS(embedding(w, ids_of({0, 1, 2, 6}, {2, 2})),
                       doctest::Contains("embedding: id 6 at position [1, 1] is out of range [0, 6)"), Error);
  CHECK_THROWS_WITH_AS(embedding(w, ids_of({-3}, {1})), doctest::Contains("embedding: id -3 at position [0]"), Error);
  CHECK_THROWS_WITH_AS(embedding(w, zeros({2})), doctest::Contains("embedding: ids must be an i32 tensor, got f32[2]"),
                       Error);
  CHECK_THROWS_WITH_AS(embedding(randn({6}, 21), ids_of({0}, {1})),
                       doctest::Contains("embedding: weight must be [V, D], got f32[6]"), Error);
}
