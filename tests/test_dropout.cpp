// ops/dropout: forward and backward against the plain reference with the Philox mask
// (tests/reference.h), f64 gradcheck on plain and non-contiguous inputs, the keep rate at the
// paper's p (0.05 in the autoencoders, 0.1 in GPT-1) and at 0.5, determinism for a fixed seed and
// offset (across thread counts too), the identity cases (p == 0, eval), p == 1, and errors.
#include <omp.h>

#include <cmath>
#include <cstring>
#include <functional>

#include "ops/dropout.h"
#include "tests/reference.h"
#include "tests/test_helpers.h"

using namespace mg;
using namespace mg::test;

namespace {
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

std::vector<double> mask_of(int64_t n, double p, uint64_t seed, uint64_t offset) {
  std::vector<double> keep(static_cast<size_t>(n));
  ref::dropout_mask(keep.data(), n, p, seed, offset);
  return keep;
}

std::vector<unsigned char> bytes_of(const Tensor& t) {
  const Tensor c = t.contiguous();
  std::vector<unsigned char> b(size_t(c.numel()) * dtype_size(c.dtype()));
  if (!b.empty()) std::memcpy(b.data(), c.raw_data(), b.size());
  return b;
}
}  // namespace

TEST_CASE("dropout: forward and backward match the reference with the Philox mask (f32, f64)") {
  for (DType dt : {DType::f32, DType::f64}) {
    for (double p : {0.05, 0.1, 0.5}) {
      CAPTURE(p);
      const uint64_t seed = 1234, offset = 5;
      Tensor x = randn({7, 33}, 1, TensorOptions{dt}).detach();
      x.set_requires_grad(true);
      Tensor y = dropout(x, p, true, seed, offset);
      REQUIRE(y.shape() == x.shape());
      const std::vector<double> keep = mask_of(x.numel(), p, seed, offset), xv = vals(x);
      std::vector<double> want(xv.size());
      ref::dropout_forward(want.data(), xv.data(), keep.data(), x.numel(), p);
      // f64 performs the reference's one multiply, so the bits agree; f32 rounds the scale and the
      // product once each (2^-24 relative apiece).
      const double tol = dt == DType::f64 ? 0.0 : 3e-7;
      check_close(y, want, tol);
      // The gradient is the same mask applied to the upstream gradient.
      Tensor g = randn({7, 33}, 2, TensorOptions{dt});
      y.backward(g);
      const std::vector<double> gv = vals(g);
      std::vector<double> dx(gv.size());
      ref::dropout_backward(dx.data(), gv.data(), keep.data(), x.numel(), p);
      check_close(x.grad(), dx, tol);
    }
  }
}

TEST_CASE("dropout: the mask follows the element's row-major index, whatever the layout") {
  // A transposed and a strided view mask the same logical elements as their contiguous copies.
  Tensor base = randn({9, 12}, 3, TensorOptions{DType::f64});
  for (const Tensor& x : {base.t(), base.slice(1, 0, 12, 2)}) {
    REQUIRE_FALSE(x.is_contiguous());
    CHECK(bytes_of(dropout(x, 0.3, true, 77, 0)) == bytes_of(dropout(x.contiguous(), 0.3, true, 77, 0)));
  }
  // The mask does not depend on the dtype: f32 and f64 drop the same elements.
  Tensor x64 = add(abs(randn({1000}, 4, TensorOptions{DType::f64})), 0.5);
  const std::vector<double> a = vals(dropout(x64, 0.4, true, 9, 2));
  const std::vector<double> b = vals(dropout(x64.to(DType::f32), 0.4, true, 9, 2));
  size_t differ = 0;
  for (size_t i = 0; i < a.size(); ++i) differ += (a[i] == 0) != (b[i] == 0);
  CHECK(differ == 0);
}

TEST_CASE("dropout: gradients match finite differences (f64), plain and non-contiguous inputs") {
  for (double p : {0.1, 0.5}) {
    CAPTURE(p);
    Fn f = [p](const std::vector<Tensor>& in) { return dropout(in[0], p, true, 11, 3); };
    check_grad(f, {leaf64({4, 7}, 1)});
    check_grad(f, {leaf64({1, 1}, 2)});
    check_grad(f, {leaf64({2, 3, 5}, 3)});
    Tensor t = leaf64_transposed({5, 4}, 4), s = leaf64_strided({3, 6}, 5);
    REQUIRE_FALSE(t.is_contiguous());
    REQUIRE_FALSE(s.is_contiguous());
    check_grad(f, {t});
    check_grad(f, {s});
    // Through a composition, so the upstream gradient is not all ones.
    check_grad([p](const std::vector<Tensor>& in) { return tanh(dropout(mul(in[0], 2.0), p, true, 12, 0)); },
               {leaf64_transposed({6, 3}, 6)});
  }
}

// Each element is kept independently with probability 1 - p, so over n elements the kept count is
// Binomial(n, 1 - p): its mean within 5 standard deviations fails by chance with probability
// ~6e-7. The output's mean estimates E[x] (inverted scaling keeps it unbiased).
TEST_CASE("dropout: keep rate is 1 - p and the output is unbiased (p = 0.05, 0.1, 0.5)") {
  const int64_t n = 1 << 20;  // above the parallel grain: threads
  Tensor x = ones({n});
  for (double p : {0.05, 0.1, 0.5}) {
    for (uint64_t seed : {1ull, 0x9e3779b97f4a7c15ull}) {
      CAPTURE(p);
      CAPTURE(seed);
      const std::vector<double> y = vals(dropout(x, p, true, seed, 0));
      int64_t kept = 0;
      double total = 0;
      for (double v : y) {
        kept += v != 0;
        total += v;
      }
      const double sd = std::sqrt(double(n) * p * (1 - p));
      CHECK(std::abs(double(kept) - double(n) * (1 - p)) < 5 * sd);
      // Every kept value is exactly 1 / (1 - p) in f32.
      for (double v : y) {
        if (v == 0) continue;
        CHECK(v == double(float(1.0 / (1.0 - p))));
        break;
      }
      // mean(y) = kept / (n (1 - p)): its standard deviation is sd / (n (1 - p)).
      CHECK(std::abs(total / double(n) - 1.0) < 5 * sd / (double(n) * (1 - p)) + 1e-6);
    }
  }
  // Two offsets give independent masks: both keep an element with probability (1 - p)^2.
  const double p = 0.5;
  const std::vector<double> a = vals(dropout(x, p, true, 3, 0)), b = vals(dropout(x, p, true, 3, 1));
  int64_t both = 0;
  for (int64_t i = 0; i < n; ++i) both += a[size_t(i)] != 0 && b[size_t(i)] != 0;
  const double q = (1 - p) * (1 - p);
  CHECK(std::abs(double(both) - double(n) * q) < 5 * std::sqrt(double(n) * q * (1 - q)));
}

TEST_CASE("dropout: deterministic for a fixed seed and offset, on 1 and 2 threads; a Generator advances") {
  Tensor x = randn({300, 257}, 6);  // above the parallel grain
  auto run = [&](int threads, uint64_t seed, uint64_t offset) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    Tensor y = dropout(x, 0.1, true, seed, offset);
    omp_set_num_threads(saved);
    return bytes_of(y);
  };
  const auto first = run(2, 42, 7);
  CHECK(run(2, 42, 7) == first);
  CHECK(run(1, 42, 7) == first);
  CHECK(run(2, 42, 8) != first);
  CHECK(run(2, 43, 7) != first);
  // The Generator form takes one offset per masking call: the same seed replays the sequence.
  Generator g1(5), g2(5);
  const auto a1 = bytes_of(dropout(x, 0.1, true, g1)), a2 = bytes_of(dropout(x, 0.1, true, g1));
  CHECK(a1 != a2);
  CHECK(g1.offset() == 2);
  CHECK(bytes_of(dropout(x, 0.1, true, g2)) == a1);
  CHECK(bytes_of(dropout(x, 0.1, true, g2)) == a2);
  CHECK(bytes_of(dropout(x, 0.1, true, 5, 0)) == a1);
}

TEST_CASE("dropout: identity when p == 0 or in eval (no copy, no offset taken); p == 1 drops everything") {
  Tensor x = randn({4, 5}, 7, TensorOptions{DType::f64}).detach();
  x.set_requires_grad(true);
  Generator gen(1);
  for (Tensor y : {dropout(x, 0.0, true, gen), dropout(x, 0.5, false, gen), dropout(x, 0.05, false, 3, 4)}) {
    CHECK(y.raw_data() == x.raw_data());
    CHECK(y.shape() == x.shape());
  }
  CHECK(gen.offset() == 0);
  Tensor g = randn({4, 5}, 8, TensorOptions{DType::f64});
  sum(mul(dropout(x, 0.5, false, gen), g)).backward();
  check_close(x.grad(), vals(g), 0);

  Tensor z = leaf64({3, 4}, 9);
  Tensor y = dropout(z, 1.0, true, 1, 0);
  check_close(y, std::vector<double>(12, 0.0), 0);
  sum(y).backward();
  check_close(z.grad(), std::vector<double>(12, 0.0), 0);
}

TEST_CASE("dropout: argument errors name the op") {
  Tensor x = randn({3}, 1);
  CHECK_THROWS_WITH_AS(dropout(x, -0.1, true, 1, 0), doctest::Contains("dropout: p must be in [0, 1]"), Error);
  CHECK_THROWS_WITH_AS(dropout(x, 1.5, true, 1, 0), doctest::Contains("dropout: p must be in [0, 1]"), Error);
  CHECK_THROWS_WITH_AS(dropout(x, std::nan(""), true, 1, 0), doctest::Contains("dropout"), Error);
  CHECK_THROWS_WITH_AS(dropout(zeros({3}, TensorOptions{DType::i32}), 0.1, true, 1, 0), doctest::Contains("dropout"),
                       Error);
}
