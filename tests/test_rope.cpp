// ops/rope: Llama rotate-half rotary embedding against HF's formula, its invariants (a rotation per
// pair, identity at position 0) and its gradient (the inverse rotation).
#include <cmath>
#include <functional>

#include "ops/rope.h"
#include "tests/reference.h"
#include "tests/test_helpers.h"

using namespace mg;
using namespace mg::test;

namespace {


// HF transformers (LlamaRotaryEmbedding + apply_rotary_pos_emb), written out in f64 in
// tests/reference.h.
std::vector<double> hf_rope(const std::vector<double>& x, int64_t N, int64_t T, int64_t Dh, double theta, int64_t off) {
  std::vector<double> out(x.size());
  ref::rope_forward(out.data(), x.data(), N, T, Dh, theta, off);
  return out;
}

}  // namespace

TEST_CASE("rope matches HF Llama's rotate_half formula (f32 and f64)") {
  struct Case {
    Shape shape;
    double theta;
    int64_t off;
  };
  for (const Case& c : {Case{{2, 3, 5, 8}, 10000.0, 0}, Case{{1, 2, 7, 6}, 500.0, 3}, Case{{1, 1, 1, 2}, 10000.0, 0},
                        Case{{2, 2, 9, 64}, 10000.0, 100},
                        Case{{1, 2, 3, 8}, 10000.0, 70000}}) {  // beyond the kernel's cached positions
    const int64_t T = c.shape[2], Dh = c.shape[3], N = c.shape[0] * c.shape[1];
    for (DType dt : {DType::f32, DType::f64}) {
      Tensor x = randn(c.shape, 3, TensorOptions{dt});
      Tensor y = rope(x, c.theta, c.off);
      REQUIRE(y.shape() == c.shape);
      std::vector<double> ref = hf_rope(vals(x), N, T, Dh, c.theta, c.off), got = vals(y);
      const double tol = dt == DType::f32 ? 2e-6 : 1e-13;
      for (size_t i = 0; i < ref.size(); ++i) {
        INFO("element " << i << " dtype " << dtype_name(dt));
        CHECK(std::abs(got[i] - ref[i]) <= tol * (1 + std::abs(ref[i])));
      }
    }
  }
}

TEST_CASE("rope preserves each pair's norm and is the identity at position 0") {
  const int64_t T = 6, Dh = 10, h = Dh / 2;
  Tensor x = randn({2, 3, T, Dh}, 7, TensorOptions{DType::f64});
  std::vector<double> xv = vals(x), yv = vals(rope(x, 10000.0, 5));
  for (size_t r = 0; r < xv.size() / size_t(Dh); ++r)
    for (int64_t i = 0; i < h; ++i) {
      const size_t a = r * size_t(Dh) + size_t(i), b = a + size_t(h);
      CHECK(std::hypot(yv[a], yv[b]) == doctest::Approx(std::hypot(xv[a], xv[b])).epsilon(1e-14));
    }
  // Position 0 turns by angle 0: bit-for-bit the input, f32 and f64.
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor x0 = randn({2, 3, 1, Dh}, 8, TensorOptions{dt});
    std::vector<double> a = vals(x0), b = vals(rope(x0));
    for (size_t i = 0; i < a.size(); ++i) CHECK(a[i] == b[i]);
  }
  // The same row at pos_offset p equals row p of a longer sequence.
  Tensor xs = randn({1, 1, 9, Dh}, 9, TensorOptions{DType::f64});
  std::vector<double> full = vals(rope(xs)), tail = vals(rope(xs.narrow(2, 4, 5), 10000.0, 4));
  for (size_t i = 0; i < tail.size(); ++i) CHECK(tail[i] == doctest::Approx(full[4 * size_t(Dh) + i]).epsilon(1e-14));
}

TEST_CASE("rope: one position at a time (generation) equals the whole sequence, bit for bit") {
  // The kernel keeps its cos/sin table per (theta, head dim) and grows it as positions go further:
  // every call, short or long, at any offset and in any order, must read the same angles.
  const int64_t T = 300, Dh = 12;
  for (DType dt : {DType::f32, DType::f64, DType::bf16}) {
    CAPTURE(dtype_name(dt));
    Tensor x = randn({2, 1, T, Dh}, 21).to(dt);
    const std::vector<double> full = vals(rope(x, 321.0));
    std::vector<double> steps;
    for (int64_t t = 0; t < T; ++t) {
      const std::vector<double> row = vals(rope(x.narrow(2, t, 1).narrow(0, 0, 1), 321.0, t));
      steps.insert(steps.end(), row.begin(), row.end());
    }
    for (size_t i = 0; i < steps.size(); ++i) CHECK(steps[i] == full[i]);
    // A later short call reads the grown table from position 0 again.
    const std::vector<double> head = vals(rope(x.narrow(2, 0, 3), 321.0));
    for (int64_t b = 0; b < 2; ++b)
      for (size_t i = 0; i < size_t(3 * Dh); ++i)
        CHECK(head[size_t(b) * size_t(3 * Dh) + i] == full[size_t(b) * size_t(T * Dh) + i]);
  }
}

TEST_CASE("rope gradient: gradcheck on plain and non-contiguous inputs; backward is the inverse rotation") {
  auto f = [](double theta, int64_t off) {
    return [theta, off](const std::vector<Tensor>& in) { return rope(in[0], theta, off); };
  };
  check_grad(f(10000.0, 0), {leaf64({2, 2, 5, 4}, 1)});
  check_grad(f(10000.0, 0), {leaf64({1, 1, 1, 2}, 2)});  // T = 1
  check_grad(f(100.0, 7), {leaf64({1, 3, 7, 6}, 3)});    // odd T, offset
  // q as models make it: [B, T, H, Dh] transposed to [B, H, T, Dh]
  Tensor q = randn({2, 5, 3, 4}, 4, TensorOptions{DType::f64}).transpose(1, 2).detach();
  q.set_requires_grad(true);
  CHECK_FALSE(q.is_contiguous());
  check_grad(f(10000.0, 2), {q});
  check_grad(f(10000.0, 0), {leaf64_strided({1, 2, 3, 4}, 5)});

  // d/dx <rope(x), g> = rope^-1(g), so rotating the gradient forward gives g back.
  Tensor x = leaf64({1, 2, 6, 8}, 6);
  Tensor g = randn({1, 2, 6, 8}, 7, TensorOptions{DType::f64});
  rope(x, 10000.0, 3).backward(g);
  std::vector<double> back = vals(rope(x.grad(), 10000.0, 3)), gv = vals(g);
  for (size_t i = 0; i < gv.size(); ++i) CHECK(back[i] == doctest::Approx(gv[i]).epsilon(1e-13));
}

// Under autocast q and k arrive as bf16 from their projections and stay bf16 (no f32 copy).
TEST_CASE("rope on bf16: the f32 rotation of the widened input, rounded once; its gradient likewise") {
  Tensor xf = randn({2, 3, 9, 8}, 11).to(DType::bf16).to(DType::f32);  // values exact in bf16
  Tensor x = xf.to(DType::bf16).transpose(1, 2).detach();  // non-contiguous
  x.set_requires_grad(true);
  Tensor y = rope(x, 500.0, 7);
  CHECK(y.dtype() == DType::bf16);
  CHECK(vals(y) == vals(rope(xf.transpose(1, 2), 500.0, 7).to(DType::bf16)));
  Tensor g = randn(y.shape(), 12).to(DType::bf16);
  y.backward(g);
  CHECK(x.grad().dtype() == DType::bf16);
  // The f32 reference gradient: the inverse rotation of the widened g, rounded once.
  Tensor z = zeros(x.shape());
  z.set_requires_grad(true);
  rope(z, 500.0, 7).backward(g.to(DType::f32));
  CHECK(vals(x.grad()) == vals(z.grad().to(DType::bf16)));
  CHECK(vals(x.grad()) != vals(g));  // it did turn
}

TEST_CASE("rope rejects odd head dims and other dtypes with a message naming the op") {
  CHECK_THROWS_WITH_AS(rope(randn({1, 1, 3, 5}, 1)), doctest::Contains("rope: head dim"), Error);
  CHECK_THROWS_WITH_AS(rope(randn({4}, 1)), doctest::Contains("rope: expected"), Error);
}
