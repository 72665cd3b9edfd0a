// ops/masked_mix and ops/tril: the masked mixer's token mixing (flat, expanded, multi-head) against
// the plain loops of tests/reference.h, f64 gradcheck for x, weight and bias, causality bit for
// bit, and the masking guarantees (upper-triangle gradient exactly 0, stored weight untouched).
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include "ops/masked_mix.h"
#include "ops/tril.h"
#include "tests/reference.h"
#include "tests/test_helpers.h"

using namespace mg;
using namespace mg::test;

namespace {


// The plain references of tests/reference.h on the tensors' values.
// y[b, r, d] = sum_{c <= r} w[r, c] x[b, c, d] + bias[r]
std::vector<double> naive_mix(const Tensor& x, const Tensor& w, const Tensor& bias) {
  const int64_t B = x.size(0), C = x.size(1), D = x.size(2), R = w.size(0);
  std::vector<double> xv = vals(x), wv = vals(w), bv = bias.defined() ? vals(bias) : std::vector<double>();
  std::vector<double> y(size_t(B * R * D));
  ref::masked_mix_forward(y.data(), xv.data(), wv.data(), bias.defined() ? bv.data() : nullptr, B, C, D, R);
  return y;
}

// y[b, t, h*Dh + j] = sum_{s <= t} w[h, t, s] x[b, s, h*Dh + j] + bias[h, t]
std::vector<double> naive_mix_heads(const Tensor& x, const Tensor& w, const Tensor& bias) {
  const int64_t B = x.size(0), T = x.size(1), HD = x.size(2), H = w.size(0);
  std::vector<double> xv = vals(x), wv = vals(w), bv = bias.defined() ? vals(bias) : std::vector<double>();
  std::vector<double> y(size_t(B * T * HD));
  ref::masked_mix_heads_forward(y.data(), xv.data(), wv.data(), bias.defined() ? bv.data() : nullptr, B, T, H, HD / H);
  return y;
}

Tensor leaf_from(const Tensor& t) {
  Tensor l = t.detach();
  l.set_requires_grad(true);
  return l;
}

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

}  // namespace

TEST_CASE("tril: forward for several diagonals and shapes, gradient is tril of the gradient") {
  Tensor x = arange(1, 13).reshape({3, 4});
  check_close(tril(x), {1, 0, 0, 0, 5, 6, 0, 0, 9, 10, 11, 0});
  check_close(tril(x, -1), {0, 0, 0, 0, 5, 0, 0, 0, 9, 10, 0, 0});
  check_close(tril(x, 1), {1, 2, 0, 0, 5, 6, 7, 0, 9, 10, 11, 12});
  check_close(tril(x, -5), std::vector<double>(12, 0.0));
  check_close(tril(x, 10), vals(x));
  check_close(tril(x.t()), {1, 0, 0, 2, 6, 0, 3, 7, 11, 4, 8, 12});  // non-contiguous input
  Tensor batched = tril(arange(0, 8, 1, TensorOptions{DType::f64}).reshape({2, 2, 2}));
  check_close(batched, {0, 0, 2, 3, 4, 0, 6, 7});
  for (int64_t d : {-1, 0, 2}) {
    check_grad([d](const std::vector<Tensor>& in) { return tril(in[0], d); }, {leaf64({2, 4, 3}, 1)});
    check_grad([d](const std::vector<Tensor>& in) { return tril(in[0], d); }, {leaf64_transposed({5, 3}, 2)});
  }
}

TEST_CASE("masked_token_mix forward matches naive loops (flat, rectangular, f32 and f64)") {
  struct Case {
    int64_t B, C, D, R;
    bool bias;
  };
  // Shapes include T = 1, odd T, rows crossing the 64-row GEMM blocks, R > C (expanded) and R < C.
  for (const Case& c : {Case{2, 5, 3, 5, true}, Case{1, 1, 4, 1, true}, Case{3, 7, 6, 7, false},
                        Case{2, 130, 9, 130, true}, Case{2, 70, 5, 140, true}, Case{1, 140, 3, 70, true},
                        Case{1, 64, 16, 64, false}, Case{2, 150, 4, 300, true}, Case{1, 300, 3, 150, true},
                        Case{1, 257, 2, 257, true}}) {
    for (DType dt : {DType::f32, DType::f64}) {
      Tensor x = randn({c.B, c.C, c.D}, 1, TensorOptions{dt}), w = randn({c.R, c.C}, 2, TensorOptions{dt});
      Tensor b = c.bias ? randn({c.R}, 3, TensorOptions{dt}) : Tensor();
      Tensor y = masked_token_mix(x, w, b);
      REQUIRE(y.shape() == Shape{c.B, c.R, c.D});
      INFO("B " << c.B << " C " << c.C << " D " << c.D << " R " << c.R << " " << dtype_name(dt));
      check_vals(vals(y), naive_mix(x, w, b), dt == DType::f32 ? 1e-5 : 1e-12);
    }
  }
  // Non-contiguous x and weight give the same result as their contiguous copies.
  Tensor xt = randn({2, 6, 9}, 4, TensorOptions{DType::f64}).transpose(1, 2), wt = randn({9, 9}, 5, TensorOptions{DType::f64}).t();
  check_vals(vals(masked_token_mix(xt, wt, Tensor())), naive_mix(xt, wt, Tensor()), 1e-12);
}

TEST_CASE("masked_token_mix gradients (f64 gradcheck) for x, weight and bias") {
  Fn f = [](const std::vector<Tensor>& in) { return masked_token_mix(in[0], in[1], in[2]); };
  Fn f_nobias = [](const std::vector<Tensor>& in) { return masked_token_mix(in[0], in[1], Tensor()); };
  check_grad(f, {leaf64({2, 5, 3}, 1), leaf64({5, 5}, 2), leaf64({5}, 3)});    // odd T
  check_grad(f, {leaf64({2, 1, 4}, 4), leaf64({1, 1}, 5), leaf64({1}, 6)});    // T = 1
  check_grad(f, {leaf64({1, 3, 2}, 7), leaf64({6, 3}, 8), leaf64({6}, 9)});    // expand R = 2C
  check_grad(f, {leaf64({1, 6, 2}, 10), leaf64({3, 6}, 11), leaf64({3}, 12)});  // contract R < C
  check_grad(f_nobias, {leaf64({2, 7, 3}, 13), leaf64({7, 7}, 14)});
  // Crossing the 64-row blocks.
  check_grad(f, {leaf64({1, 70, 2}, 15), leaf64({70, 70}, 16), leaf64({70}, 17)});
  // Non-contiguous x ([B, D, T] transposed), transposed weight, strided bias.
  Tensor x = leaf_from(randn({2, 3, 5}, 18, TensorOptions{DType::f64}).transpose(1, 2));
  CHECK_FALSE(x.is_contiguous());
  check_grad(f, {x, leaf64_transposed({5, 5}, 19), leaf64_strided({5}, 20)});
}

TEST_CASE("masked_token_mix gradients on long, rectangular shapes match the dense formulas") {
  // Shapes with several row bands and strips: dx = tril(W)^T dy, dW = tril(sum_b dy_b x_b^T),
  // dbias = sum over b and d of dy.
  for (const auto& rc : std::vector<std::pair<int64_t, int64_t>>{{300, 300}, {300, 150}, {150, 300}, {257, 257}, {530, 530}}) {
    const int64_t R = rc.first, C = rc.second;
    const int64_t B = 2, D = 5;
    const TensorOptions o{DType::f64};
    Tensor x = leaf_from(randn({B, C, D}, 1, o)), w = leaf_from(randn({R, C}, 2, o)), b = leaf_from(randn({R}, 3, o));
    Tensor g = randn({B, R, D}, 4, o);
    masked_token_mix(x, w, b).backward(g);
    Tensor dx_ref = matmul(tril(w.detach()).t(), g);
    Tensor dw_ref = tril(sum(matmul(g, x.detach().transpose(1, 2)), {0}));
    Tensor db_ref = sum(g, {0, 2});
    INFO("R " << R << " C " << C);
    check_vals(vals(x.grad()), vals(dx_ref), 1e-12);
    check_vals(vals(w.grad()), vals(dw_ref), 1e-12);
    check_vals(vals(b.grad()), vals(db_ref), 1e-12);
  }
}

TEST_CASE("masked_token_mix: upper-triangle gradient is exactly 0 and the stored weight is untouched") {
  const int64_t T = 70, D = 4;
  for (DType dt : {DType::f32, DType::f64}) {
    // Every weight entry non-zero, the upper triangle large, so a leak would show.
    Tensor w = add(abs(randn({T, T}, 1, TensorOptions{dt})), 1.0).detach();
    w.set_requires_grad(true);
    Tensor b = randn({T}, 2, TensorOptions{dt}).detach();
    b.set_requires_grad(true);
    Tensor x = randn({3, T, D}, 3, TensorOptions{dt}).detach();
    x.set_requires_grad(true);
    const std::vector<double> before = vals(w);
    Tensor y = masked_token_mix(x, w, b);
    sum(mul(y, randn({3, T, D}, 4, TensorOptions{dt}))).backward();
    const std::vector<double> after = vals(w), gw = vals(w.grad());
    int upper_nonzero = 0, lower_zero = 0, changed = 0;
    for (int64_t r = 0; r < T; ++r)
      for (int64_t c = 0; c < T; ++c) {
        const size_t i = size_t(r * T + c);
        if (c > r) upper_nonzero += gw[i] != 0.0;
        else lower_zero += gw[i] == 0.0;
        changed += after[i] != before[i];
      }
    CHECK(upper_nonzero == 0);
    CHECK(lower_zero == 0);
    CHECK(changed == 0);
    // The upper triangle never enters the output: zeroing it changes nothing, bit for bit.
    Tensor wl = tril(w.detach());
    std::vector<double> y1 = vals(y), y2 = vals(masked_token_mix(x.detach(), wl, b.detach()));
    int diff = 0;
    for (size_t i = 0; i < y1.size(); ++i) diff += y1[i] != y2[i];
    CHECK(diff == 0);
  }
  // The same for the multi-head weight.
  Tensor w = add(abs(randn({2, 9, 9}, 5, TensorOptions{DType::f64})), 1.0).detach();
  w.set_requires_grad(true);
  const std::vector<double> before = vals(w);
  sum(masked_token_mix_heads(randn({2, 9, 6}, 6, TensorOptions{DType::f64}), w, Tensor())).backward();
  const std::vector<double> gw = vals(w.grad());
  int upper_nonzero = 0;
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t r = 0; r < 9; ++r)
      for (int64_t c = r + 1; c < 9; ++c) upper_nonzero += gw[size_t((h * 9 + r) * 9 + c)] != 0.0;
  CHECK(upper_nonzero == 0);
  CHECK(vals(w) == before);
}

TEST_CASE("masked_token_mix_heads forward and gradients") {
  for (DType dt : {DType::f32, DType::f64}) {
    for (const auto& s : std::vector<std::array<int64_t, 4>>{{2, 5, 2, 3}, {1, 1, 3, 2}, {2, 70, 2, 4}}) {
      const int64_t B = s[0], T = s[1], H = s[2], Dh = s[3];
      Tensor x = randn({B, T, H * Dh}, 1, TensorOptions{dt}), w = randn({H, T, T}, 2, TensorOptions{dt});
      Tensor b = randn({H, T}, 3, TensorOptions{dt});
      INFO("B " << B << " T " << T << " H " << H << " Dh " << Dh << " " << dtype_name(dt));
      check_vals(vals(masked_token_mix_heads(x, w, b)), naive_mix_heads(x, w, b), dt == DType::f32 ? 1e-5 : 1e-12);
      check_vals(vals(masked_token_mix_heads(x, w, Tensor())), naive_mix_heads(x, w, Tensor()),
                 dt == DType::f32 ? 1e-5 : 1e-12);
    }
  }
  Fn f = [](const std::vector<Tensor>& in) { return masked_token_mix_heads(in[0], in[1], in[2]); };
  check_grad(f, {leaf64({2, 5, 6}, 1), leaf64({2, 5, 5}, 2), leaf64({2, 5}, 3)});
  check_grad(f, {leaf64({1, 1, 4}, 4), leaf64({2, 1, 1}, 5), leaf64({2, 1}, 6)});  // T = 1
  Tensor x = leaf_from(randn({2, 6, 7}, 7, TensorOptions{DType::f64}).transpose(1, 2));  // [2, 7, 6], non-contiguous
  check_grad(f, {x, leaf64_transposed({3, 7, 7}, 8), leaf64_strided({3, 7}, 9)});
  // One head equals the flat mixer.
  Tensor x1 = randn({2, 7, 4}, 10, TensorOptions{DType::f64}), w1 = randn({1, 7, 7}, 11, TensorOptions{DType::f64});
  check_vals(vals(masked_token_mix_heads(x1, w1, Tensor())), vals(masked_token_mix(x1, w1.squeeze(0), Tensor())), 1e-14);
}

namespace {
// got (bf16) is want (f32) rounded once: the two accumulate the same exact products in different
// orders, so an element may differ by one bf16 ulp where want lies near a rounding boundary, and
// by no more. Every element is checked, so a row that the op failed to write shows.
void check_rounded_once(const Tensor& got, const Tensor& want, const std::string& what) {
  INFO(what);
  REQUIRE(got.dtype() == DType::bf16);
  const std::vector<double> g = vals(got), w = vals(want), wr = vals(want.to(DType::bf16));
  REQUIRE(g.size() == w.size());
  double scale = 0;
  for (double v : w) scale = std::max(scale, std::abs(v));
  size_t far = 0, differ = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    if (g[i] == wr[i]) continue;
    ++differ;
    far += !(std::abs(g[i] - w[i]) <= std::abs(w[i]) / 128 + 1e-6 * scale);
  }
  CHECK(far == 0);
  CHECK(differ <= g.size() / 50);
}
}  // namespace

TEST_CASE("bf16 masked token mixing: output and dx are the f32 results rounded once, every row (bands, strips, R != C)") {
  for (const auto& rc : std::vector<std::pair<int64_t, int64_t>>{{300, 300}, {300, 150}, {150, 300}, {530, 530}, {7, 7}}) {
    const int64_t R = rc.first, C = rc.second, B = 2, D = 24;
    for (bool with_bias : {true, false}) {
      INFO("R " << R << " C " << C << " bias " << with_bias);
      // bf16-representable inputs, so the f32 op sees exactly what the bf16 op sees.
      Tensor x16 = randn({B, C, D}, 1).to(DType::bf16), w16 = mul(randn({R, C}, 2), 0.1).to(DType::bf16);
      Tensor b16 = with_bias ? randn({R}, 3).to(DType::bf16) : Tensor(), g16 = randn({B, R, D}, 4).to(DType::bf16);
      Tensor x = leaf_from(x16), w = leaf_from(w16), b = with_bias ? leaf_from(b16) : Tensor();
      Tensor x32 = leaf_from(x16.to(DType::f32)), w32 = leaf_from(w16.to(DType::f32));
      Tensor b32 = with_bias ? leaf_from(b16.to(DType::f32)) : Tensor();
      Tensor y = masked_token_mix(x, w, b), y32 = masked_token_mix(x32, w32, b32);
      check_rounded_once(y, y32, "output");
      y.backward(g16);
      y32.backward(g16.to(DType::f32));
      check_rounded_once(x.grad(), x32.grad(), "dx");
    }
  }
  const int64_t B = 2, T = 150, H = 3, Dh = 8;
  Tensor x16 = randn({B, T, H * Dh}, 5).to(DType::bf16), w16 = mul(randn({H, T, T}, 6), 0.1).to(DType::bf16);
  Tensor b16 = randn({H, T}, 7).to(DType::bf16), g16 = randn({B, T, H * Dh}, 8).to(DType::bf16);
  Tensor x = leaf_from(x16), x32 = leaf_from(x16.to(DType::f32));
  Tensor y = masked_token_mix_heads(x, w16, b16), y32 = masked_token_mix_heads(x32, w16.to(DType::f32), b16.to(DType::f32));
  check_rounded_once(y, y32, "heads output");
  y.backward(g16);
  y32.backward(g16.to(DType::f32));
  check_rounded_once(x.grad(), x32.grad(), "heads dx");
}

TEST_CASE("causality: changing position s never changes outputs at positions < s (flat, expanded, heads)") {
  const int64_t B = 2, T = 70, D = 6, H = 2, e = 2;
  for (DType dt : {DType::f32, DType::f64}) {
    const TensorOptions o{dt};
    Tensor w = randn({T, T}, 1, o), b = randn({T}, 2, o);
    Tensor w_up = randn({e * T, T}, 3, o), b_up = randn({e * T}, 4, o);
    Tensor w_down = randn({T, e * T}, 5, o), b_down = randn({T}, 6, o);
    Tensor wh = randn({H, T, T}, 7, o), bh = randn({H, T}, 8, o);
    std::vector<std::pair<const char*, std::function<Tensor(const Tensor&)>>> forms = {
        {"flat", [&](const Tensor& x) { return masked_token_mix(x, w, b); }},
        // Expanded (docs/paper.md A.3): mix up to e*T positions, a nonlinearity, mix back down to T.
        {"expanded", [&](const Tensor& x) { return masked_token_mix(tanh(masked_token_mix(x, w_up, b_up)), w_down, b_down); }},
        {"heads", [&](const Tensor& x) { return masked_token_mix_heads(x, wh, bh); }},
    };
    Tensor x = randn({B, T, D}, 9, o);
    for (auto& form : forms) {
      const std::string& name = form.first;
      auto& f = form.second;
      const std::vector<double> base = vals(f(x));
      for (int64_t s : {1, 33, 64, 69}) {
        Tensor other = randn({B, T, D}, 10 + uint64_t(s), o);
        Tensor xs = cat({x.narrow(1, 0, s), other.narrow(1, s, T - s)}, 1);
        const std::vector<double> y = vals(f(xs));
        int changed = 0, later_changed = 0;
        for (int64_t bi = 0; bi < B; ++bi)
          for (int64_t t = 0; t < T; ++t)
            for (int64_t d = 0; d < D; ++d) {
              const size_t i = size_t((bi * T + t) * D + d);
              if (t < s) changed += y[i] != base[i];
              else later_changed += y[i] != base[i];
            }
        INFO(name << " s=" << s << " " << dtype_name(dt));
        CHECK(changed == 0);
        CHECK(later_changed > 0);  // the perturbation did reach the outputs it may reach
      }
    }
  }
}

TEST_CASE("masked_token_mix rejects bad shapes with a message naming the op") {
  CHECK_THROWS_WITH_AS(masked_token_mix(randn({2, 5, 3}, 1), randn({5, 4}, 2), Tensor()),
                       doctest::Contains("masked_token_mix: expected x [B, C, D]"), Error);
  CHECK_THROWS_WITH_AS(masked_token_mix(randn({2, 5, 3}, 1), randn({5, 5}, 2), randn({4}, 3)),
                       doctest::Contains("masked_token_mix: bias"), Error);
  CHECK_THROWS_WITH_AS(masked_token_mix_heads(randn({2, 5, 7}, 1), randn({2, 5, 5}, 2), Tensor()),
                       doctest::Contains("masked_token_mix_heads"), Error);
}
