// Post-accumulate hooks (autograd/grad_hooks.h) and the bucketed, overlapped gradient reducer
// built on them (train/grad_reducer.h), in one process: a recording communicator stands in for
// MPI and plays a second rank whose gradients equal this one's.
#include "autograd/grad_hooks.h"
#include "tests/test_helpers.h"
#include "train/grad_reducer.h"

using namespace mg;
using namespace mg::test;

namespace {

Tensor leaf32(const Shape& shape, uint64_t seed) {
  Tensor t = randn(shape, seed, TensorOptions{DType::f32});
  t.set_requires_grad(true);
  return t;
}

// Rank 0 of a two-rank world that stands in for MPI: the collectives a fake does not define
// fail the test; broadcast, progress and wait_all do nothing, any() is this rank's flag.
struct Rank0Of2 : Communicator {
  int rank() const override { return 0; }
  int size() const override { return 2; }
  void allreduce_sum(float*, size_t) override { FAIL("not used"); }
  void allreduce_sum(double*, size_t) override { FAIL("not used"); }
  void allgather(const float*, size_t, float*) override { FAIL("not used"); }
  void allgather(const double*, size_t, double*) override { FAIL("not used"); }
  void start_allreduce_sum(float*, size_t) override { FAIL("not used"); }
  void progress() override {}
  void wait_all() override {}
  void broadcast(void*, size_t, int) override {}
  bool any(bool f) override { return f; }
  [[noreturn]] void abort(const std::string& m) override { throw Error(m); }
};

// A two-rank world whose other rank holds the same gradients: a sum doubles each value. It
// records, for every started sum, a snapshot of the buffer at the moment it started.
struct TwinRanks final : Rank0Of2 {
  struct Started {
    float* data;
    size_t n;
    std::vector<float> at_start;
  };
  std::vector<Started> started;
  size_t waited = 0;
  int progress_calls = 0;
  void allreduce_sum(float* d, size_t n) override {
    for (size_t i = 0; i < n; ++i) d[i] *= 2;
  }
  void allreduce_sum(double* d, size_t n) override {
    for (size_t i = 0; i < n; ++i) d[i] *= 2;
  }
  void start_allreduce_sum(float* d, size_t n) override { started.push_back({d, n, std::vector<float>(d, d + n)}); }
  void progress() override { ++progress_calls; }
  void wait_all() override {
    for (; waited < started.size(); ++waited) allreduce_sum(started[waited].data, started[waited].n);
  }
  std::string describe() const override { return "twin ranks"; }
};

// A chain of 4 layers, w0 first in the forward, each [64, 64] (16 KiB of f32), and its loss.
struct Chain {
  std::vector<Tensor> w;
  Tensor x = randn({8, 64}, 99, TensorOptions{DType::f32});
  Chain() {
    for (uint64_t i = 0; i < 4; ++i) w.push_back(leaf32({64, 64}, 10 + i));
  }
  Tensor loss() const {
    Tensor h = x;
    for (const Tensor& wi : w) h = tanh(matmul(h, mul(wi, 0.2)));
    return sum(mul(h, h));
  }
  std::vector<std::vector<float>> grads() const {
    std::vector<std::vector<float>> g;
    for (const Tensor& wi : w) g.push_back(wi.grad().to_vector<float>());
    return g;
  }
};

}  // namespace

TEST_CASE("a post-accumulate hook runs once per pass, after every path into the leaf is summed") {
  Tensor x = leaf64({3}, 1);
  std::vector<std::vector<double>> seen;
  auto h = add_post_accumulate_hook(x, [&](const Tensor& leaf) {
    CHECK(leaf.impl() == x.impl());
    seen.push_back(leaf.grad().to_vector<double>());
  });
  Tensor y = sum(add(mul(x, x), mul(exp(x), 3.0)));  // x reaches the loss by three paths
  y.backward();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0] == x.grad().to_vector<double>());
  // A second pass accumulates: the hook sees the accumulated gradient.
  sum(mul(x, 2.0)).backward();
  REQUIRE(seen.size() == 2);
  const auto xs = x.to_vector<double>();
  for (size_t i = 0; i < 3; ++i) CHECK(seen[1][i] == doctest::Approx(2 * xs[i] + 3 * std::exp(xs[i]) + 2).epsilon(1e-12));
}

TEST_CASE("hooks run in the order backward reaches the leaves, and only for leaves it reaches") {
  Tensor a = leaf64({2}, 1), b = leaf64({2}, 2), unused = leaf64({2}, 3);
  std::vector<char> order;
  auto ha = add_post_accumulate_hook(a, [&](const Tensor&) { order.push_back('a'); });
  auto hb = add_post_accumulate_hook(b, [&](const Tensor&) { order.push_back('b'); });
  auto hu = add_post_accumulate_hook(unused, [&](const Tensor&) { order.push_back('u'); });
  Tensor h1 = tanh(mul(a, 2.0));  // a: the first layer
  Tensor h2 = tanh(mul(h1, b));   // b: the second
  sum(h2).backward();
  CHECK(order == std::vector<char>{'b', 'a'});
}

TEST_CASE("a removed, moved-from or destroyed handle stops its hook") {
  Tensor x = leaf64({2}, 4);
  int calls = 0;
  {
    auto h = add_post_accumulate_hook(x, [&](const Tensor&) { ++calls; });
    PostAccumulateHookHandle moved = std::move(h);
    sum(x).backward();
    CHECK(calls == 1);
    h.remove();  // moved-from: removes nothing
    sum(x).backward();
    CHECK(calls == 2);
  }
  sum(x).backward();
  CHECK(calls == 2);
  auto h2 = add_post_accumulate_hook(x, [&](const Tensor&) { ++calls; });
  h2.remove();
  sum(x).backward();
  CHECK(calls == 2);
}

TEST_CASE("hooks are refused on what is not a leaf that requires grad") {
  Tensor frozen = randn({2}, 5, TensorOptions{DType::f64});
  CHECK_THROWS_WITH_AS((void)add_post_accumulate_hook(frozen, [](const Tensor&) {}),
                       doctest::Contains("expects a leaf tensor that requires grad"), Error);
  Tensor x = leaf64({2}, 6);
  Tensor y = mul(x, 2.0);
  CHECK_THROWS_WITH_AS((void)add_post_accumulate_hook(y, [](const Tensor&) {}),
                       doctest::Contains("expects a leaf tensor that requires grad"), Error);
}

TEST_CASE("the reducer starts each bucket during backward with its final gradients, in bucket order") {
  Chain c;
  c.loss().backward();
  const auto expect = c.grads();  // one rank's gradients of this loss
  for (Tensor& w : c.w) w.zero_grad();

  TwinRanks comm;
  // 16 KiB per parameter, buckets of 20 KiB: one parameter per bucket, the last layer first.
  GradReducer r(c.w, comm, nullptr, 20 * 1024, /*overlap=*/true);
  REQUIRE(r.bucket_count() == 4);
  r.arm();
  c.loss().backward();
  // w3's gradient is final first; then w2, w1, w0, each started as soon as it was ready.
  REQUIRE(comm.started.size() == 4);
  for (size_t k = 0; k < 4; ++k) {
    CHECK(comm.started[k].n == 64 * 64);
    CHECK(comm.started[k].at_start == expect[3 - k]);
  }
  CHECK(comm.progress_calls >= 4);
  r.finish(0.5);
  CHECK(r.started_during_backward() == 4);
  CHECK(r.started_total() == 4);
  CHECK(c.grads() == expect);  // (g + g) * 0.5, exactly
}

TEST_CASE("with accumulation only the armed pass starts sums; without overlap all start in finish") {
  Chain c;
  c.loss().backward();
  c.loss().backward();
  const auto expect = c.grads();  // two accumulated micro-steps
  for (Tensor& w : c.w) w.zero_grad();

  for (const bool overlap : {true, false}) {
    CAPTURE(overlap);
    TwinRanks comm;
    GradReducer r(c.w, comm, nullptr, 40 * 1024, overlap);  // the first bucket is 1 MiB at most: 2 + 2
    REQUIRE(r.bucket_count() == 2);
    c.loss().backward();  // micro-step 1: not armed
    CHECK(comm.started.empty());
    r.arm();
    c.loss().backward();  // micro-step 2
    CHECK(comm.started.size() == (overlap ? 2u : 0u));
    r.finish(0.5);
    REQUIRE(comm.started.size() == 2);
    CHECK(r.started_during_backward() == (overlap ? 2 : 0));
    CHECK(c.grads() == expect);
    for (Tensor& w : c.w) w.zero_grad();
  }
}

TEST_CASE("a parameter the loss does not reach contributes zeros and keeps no gradient") {
  Chain c;
  Tensor spare = leaf32({5}, 77);
  std::vector<Tensor> params = c.w;
  params.insert(params.begin(), spare);  // first in model order: in the last bucket
  c.loss().backward();
  const auto expect = c.grads();
  for (Tensor& w : c.w) w.zero_grad();
  TwinRanks comm;
  GradReducer r(params, comm, nullptr, 20 * 1024, true);
  r.arm();
  c.loss().backward();
  // The last bucket (w0 and spare) cannot complete during backward: spare never becomes ready.
  CHECK(comm.started.size() == 3);
  r.finish(0.5);
  CHECK(r.started_during_backward() == 3);
  CHECK(comm.started.size() == 4);
  CHECK(c.grads() == expect);
  CHECK_FALSE(spare.grad().defined());
}

namespace {
// Rank 0 of two whose peer reached every parameter with a gradient of ones: each sum adds 1.
struct PeerAddsOnes final : Rank0Of2 {
  std::vector<std::pair<float*, size_t>> started;
  void allreduce_sum(float* d, size_t n) override {
    for (size_t i = 0; i < n; ++i) d[i] += 1.0f;
  }
  void allreduce_sum(double* d, size_t n) override {
    for (size_t i = 0; i < n; ++i) d[i] += 1.0;
  }
  void start_allreduce_sum(float* d, size_t n) override { started.push_back({d, n}); }
  void wait_all() override {
    for (auto& s : started) allreduce_sum(s.first, s.second);
    started.clear();
  }
  std::string describe() const override { return "a peer that adds ones"; }
};
}  // namespace

TEST_CASE("a parameter this rank did not reach but a peer did gets the sum, so the replicas stay equal") {
  for (const bool overlap : {true, false}) {
    CAPTURE(overlap);
    Chain c;
    Tensor spare = leaf32({5}, 77);
    std::vector<Tensor> params = c.w;
    params.insert(params.begin(), spare);
    c.loss().backward();
    auto expect = c.grads();
    for (Tensor& w : c.w) w.zero_grad();
    for (auto& g : expect)
      for (float& v : g) v = (v + 1.0f) * 0.5f;
    PeerAddsOnes comm;
    GradReducer r(params, comm, nullptr, 20 * 1024, overlap);
    r.arm();
    c.loss().backward();
    r.finish(0.5);
    CHECK(c.grads() == expect);
    REQUIRE(spare.grad().defined());  // (0 here + 1 from the peer) * 0.5
    CHECK(spare.grad().to_vector<float>() == std::vector<float>(5, 0.5f));
  }
}

namespace {
// Rank 0 of two for reduce_gradients: the peer's loss reached the parameters peer_reached[i],
// each with a gradient of ones. It answers the first sum (which parameters some rank reached)
// and then the gradients, by an allreduce (default mode) or an allgather (deterministic), with
// the peer's buffer laid out as reduce_gradients lays it out: every parameter some rank reached,
// in order, zeros where the peer has no gradient.
struct PeerWithSomeGradients final : Rank0Of2 {
  std::vector<bool> peer_reached;
  std::vector<int64_t> sizes;
  std::vector<float> used;  // the counts after the first sum
  int sums = 0, gathers = 0;
  std::vector<float> peer_flat() const {
    std::vector<float> f;
    for (size_t i = 0; i < sizes.size(); ++i)
      if (used[i] > 0.0f) f.insert(f.end(), size_t(sizes[i]), peer_reached[i] ? 1.0f : 0.0f);
    return f;
  }
  void allreduce_sum(float* d, size_t n) override {
    if (sums++ == 0) {
      REQUIRE(n == peer_reached.size());
      for (size_t i = 0; i < n; ++i) d[i] += peer_reached[i] ? 1.0f : 0.0f;
      used.assign(d, d + n);
      return;
    }
    const std::vector<float> p = peer_flat();
    REQUIRE(n == p.size());
    for (size_t i = 0; i < n; ++i) d[i] += p[i];
  }
  void allgather(const float* d, size_t n, float* out) override {
    ++gathers;
    const std::vector<float> p = peer_flat();
    REQUIRE(n == p.size());  // every rank sends the same layout
    std::copy(d, d + n, out);
    std::copy(p.begin(), p.end(), out + n);
  }
  std::string describe() const override { return "a peer with some gradients"; }
};
}  // namespace

TEST_CASE("reduce_gradients (deterministic or not): ranks that reached different parameters end with equal sums") {
  // p0: reached by both ranks; p1: only here; p2: only by the peer; p3: by neither.
  for (const bool deterministic : {true, false}) {
    CAPTURE(deterministic);
    std::vector<Tensor> p = {leaf32({3, 4}, 1), leaf32({5}, 2), leaf32({2, 2}, 3), leaf32({6}, 4)};
    sum(mul(p[0], p[0])).backward();
    sum(mul(p[1], 3.0)).backward();
    const std::vector<float> g0 = p[0].grad().to_vector<float>(), g1 = p[1].grad().to_vector<float>();
    PeerWithSomeGradients comm;
    comm.peer_reached = {true, false, true, false};
    for (const Tensor& t : p) comm.sizes.push_back(t.numel());
    const double scale = 1.0 / 3.0;
    reduce_gradients(p, comm, deterministic, scale);
    CHECK(comm.gathers == (deterministic ? 1 : 0));
    CHECK(comm.sums == (deterministic ? 1 : 2));
    const float s = float(scale);
    std::vector<float> want0(g0.size()), want1(g1.size());
    for (size_t i = 0; i < g0.size(); ++i) want0[i] = (g0[i] + 1.0f) * s;
    for (size_t i = 0; i < g1.size(); ++i) want1[i] = g1[i] * s;
    CHECK(p[0].grad().to_vector<float>() == want0);
    CHECK(p[1].grad().to_vector<float>() == want1);
    REQUIRE(p[2].grad().defined());  // (0 here + 1 from the peer) * scale
    CHECK(p[2].grad().to_vector<float>() == std::vector<float>(4, s));
    CHECK(p[2].grad().shape() == Shape{2, 2});
    CHECK_FALSE(p[3].grad().defined());
  }
}
