// nn/module, nn/layers, nn/init: the Module tree (names, tying, state dicts, conversions) and the
// basic layers' forward against plain references, gradients, and initial-value statistics.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "nn/layers.h"
#include "ops/shape_ops.h"
#include "tests/reference.h"
#include "tests/test_helpers.h"

using namespace mg;
using namespace mg::test;

namespace {

const TensorOptions kF64{DType::f64};


void check_all_close(const Tensor& a, const std::vector<double>& b, double tol) {
  std::vector<double> av = vals(a);
  REQUIRE(av.size() == b.size());
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < av.size(); ++i)
    if (std::abs(av[i] - b[i]) > worst) worst = std::abs(av[i] - b[i]), at = i;
  INFO("worst |diff| " << worst << " at element " << at);
  CHECK(worst <= tol);
}

// Writes random values into a parameter (so norm weights are not all 1, biases not all 0).
void randomize(const Tensor& p, uint64_t seed) {
  NoGradGuard g;
  assign_(p, randn(p.shape(), seed, TensorOptions{p.dtype()}));
}

double mean_of(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / double(v.size()); }
double std_of(const std::vector<double>& v) {
  double m = mean_of(v), s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / double(v.size() - 1));
}

// y[r, o] = sum_i x[r, i] w[o, i] + b[o] (tests/reference.h)
std::vector<double> ref_linear(const std::vector<double>& x, const std::vector<double>& w, const std::vector<double>* b,
                               int64_t rows, int64_t in, int64_t out) {
  std::vector<double> y(size_t(rows * out));
  ref::matmul_forward(y.data(), x.data(), w.data(), b ? b->data() : nullptr, rows, in, out);
  return y;
}

struct Tree : Module {
  struct Leaf : Module {
    Tensor a, b;
    Leaf() {
      a = register_parameter("a", zeros({2, 3}, kF64));
      b = register_parameter("b", zeros({4}, kF64));
    }
  };
  Tensor top;
  Leaf first, second;
  ModuleList<Leaf> items;
  Tree() {
    top = register_parameter("top", zeros({5}, kF64));
    register_module("first", first);
    register_module("second", second);
    items.push_back(std::make_unique<Leaf>());
    items.push_back(std::make_unique<Leaf>());
    register_module("items", items);
  }
  void add_param(const std::string& name, Tensor t) { register_parameter(name, std::move(t)); }
};

}  // namespace

// ---- Module -----------------------------------------------------------------------------

TEST_CASE("Module: dotted names in registration order, state_dict shares memory") {
  Tree t;
  std::vector<std::string> names;
  for (auto& [n, p] : t.named_parameters()) {
    names.push_back(n);
    CHECK(p.requires_grad());
    CHECK(p.is_leaf());
  }
  CHECK(names == std::vector<std::string>{"top", "first.a", "first.b", "second.a", "second.b", "items.0.a",
                                          "items.0.b", "items.1.a", "items.1.b"});
  CHECK(t.num_parameters() == 5 + 4 * 10);
  CHECK(t.parameters().size() == 9);
  StateDict sd = t.state_dict();
  REQUIRE(sd.size() == 9);
  CHECK(sd[1].first == "first.a");
  CHECK_FALSE(sd[1].second.requires_grad());
  {
    NoGradGuard g;
    fill_(sd[1].second, 7.0);  // writes the model
  }
  CHECK(vals(t.first.a) == std::vector<double>(6, 7.0));
}

TEST_CASE("Module: bad and duplicate names are rejected") {
  Tree t;
  CHECK_THROWS_WITH_AS(t.add_param("top", zeros({1}, kF64)), doctest::Contains("'top' registered twice"), Error);
  CHECK_THROWS_WITH_AS(t.add_param("first", zeros({1}, kF64)), doctest::Contains("registered twice"), Error);
  CHECK_THROWS_WITH_AS(t.add_param("a.b", zeros({1}, kF64)), doctest::Contains("invalid name 'a.b'"), Error);
  CHECK_THROWS_AS(t.add_param("", zeros({1}, kF64)), Error);
}

TEST_CASE("Module: a tensor under two names is one parameter, loadable under either") {
  Tree t;
  t.add_param("alias", t.first.a);  // tie: same tensor, second name
  auto np = t.named_parameters();
  REQUIRE(np.size() == 9);  // listed once, under the first name reached: a module's own
  CHECK(np[1].first == "alias");  // parameters come before its children's (as PyTorch)
  CHECK(np[1].second.same(t.first.a));
  CHECK(t.num_parameters() == 45);
  std::map<std::string, Tensor> sd;
  for (auto& [n, p] : t.state_dict()) sd[n] = full(p.shape(), 1.0, kF64);
  // Only the other name given: satisfies the tied parameter.
  sd.erase("alias");
  sd["first.a"] = full({2, 3}, 3.0, kF64);
  t.load_state_dict(sd);
  CHECK(vals(t.first.a) == std::vector<double>(6, 3.0));
  // Both names given: the first name in walk order wins.
  sd["alias"] = full({2, 3}, 5.0, kF64);
  t.load_state_dict(sd);
  CHECK(vals(t.first.a) == std::vector<double>(6, 5.0));
  // A wrong shape under either name is an error.
  sd["first.a"] = full({3}, 5.0, kF64);
  CHECK_THROWS_WITH_AS(t.load_state_dict(sd), doctest::Contains("first.a: checkpoint has [3], model has [2, 3]"), Error);
}

TEST_CASE("Module::load_state_dict: copies in place, converts dtype, reports every problem at once") {
  Tree t;
  Tensor handle = t.second.b;
  std::map<std::string, Tensor> sd;
  for (auto& [n, p] : t.state_dict()) sd[n] = full(p.shape(), 2.0, TensorOptions{DType::f32});  // f32 -> f64
  t.load_state_dict(sd);
  CHECK(handle.same(t.second.b));
  CHECK(vals(handle) == std::vector<double>(4, 2.0));

  // Missing, unexpected and a wrong shape in one go; nothing is written.
  std::map<std::string, Tensor> bad = sd;
  for (auto& [n, p] : bad) p = full(p.shape(), 9.0, kF64);
  bad.erase("items.1.b");
  bad["extra.weight"] = zeros({1}, kF64);
  bad["first.a"] = zeros({3, 2}, kF64);
  try {
    t.load_state_dict(bad);
    FAIL("expected an error");
  } catch (const Error& e) {
    std::string m = e.what();
    CHECK(m.find("3 problem(s)") != std::string::npos);
    CHECK(m.find("missing from the checkpoint: items.1.b") != std::string::npos);
    CHECK(m.find("unexpected in the checkpoint (not in the model): extra.weight") != std::string::npos);
    CHECK(m.find("first.a: checkpoint has [3, 2], model has [2, 3]") != std::string::npos);
  }
  CHECK(vals(t.top) == std::vector<double>(5, 2.0));  // untouched

  // Non-strict: missing and unexpected are reported, not fatal; shapes still are.
  bad["first.a"] = zeros({2, 3}, kF64);
  LoadStateDictResult r = t.load_state_dict(bad, /*strict=*/false);
  CHECK(r.missing == std::vector<std::string>{"items.1.b"});
  CHECK(r.unexpected == std::vector<std::string>{"extra.weight"});
  CHECK(vals(t.top) == std::vector<double>(5, 9.0));
  CHECK(vals(t.items[1].b) == std::vector<double>(4, 2.0));
  bad["first.a"] = zeros({6}, kF64);
  CHECK_THROWS_WITH_AS(t.load_state_dict(bad, false), doctest::Contains("first.a: checkpoint has [6], model has [2, 3]"),
                       Error);
  // An integer tensor is refused.
  bad["first.a"] = zeros({2, 3}, TensorOptions{DType::i32});
  CHECK_THROWS_WITH_AS(t.load_state_dict(bad, false), doctest::Contains("first.a: checkpoint has dtype i32"), Error);
  // The vector form refuses duplicate names.
  StateDict dup = {{"top", zeros({5}, kF64)}, {"top", zeros({5}, kF64)}};
  CHECK_THROWS_WITH_AS(t.load_state_dict(dup, false), doctest::Contains("lists 'top' twice"), Error);
}

TEST_CASE("Module::to(DType) converts in place; zero_grad drops gradients") {
  Tree t;
  Tensor handle = t.first.a;
  randomize(handle, 3);
  std::vector<double> before = vals(handle);
  sum(mul(t.first.a, t.first.a)).backward();
  CHECK(handle.grad().defined());
  t.zero_grad();
  CHECK_FALSE(handle.grad().defined());
  t.to(DType::f32);
  CHECK(handle.dtype() == DType::f32);
  CHECK(handle.same(t.first.a));
  CHECK(handle.requires_grad());
  CHECK(handle.is_contiguous());
  std::vector<double> after = vals(handle);
  for (size_t i = 0; i < before.size(); ++i) CHECK(after[i] == doctest::Approx(before[i]).epsilon(1e-7));
  // Still trainable after the conversion.
  sum(t.first.a).backward();
  CHECK(handle.grad().dtype() == DType::f32);
  t.to(DType::f64);
  CHECK(vals(handle) == after);  // f32 -> f64 is exact
  CHECK_THROWS_AS(t.to(DType::i32), Error);
  t.to(kCPU);  // no-op
  CHECK(handle.device() == kCPU);
}

// ---- layers: forward vs reference, gradients ------------------------------------------------

TEST_CASE("Linear: forward matches x W^T + b on 2-D, 3-D and non-contiguous input; gradcheck") {
  Generator gen(1);
  Linear lin(5, 3, true, gen, Init::torch_default(), kF64);
  CHECK(lin.weight.shape() == Shape{3, 5});
  CHECK(lin.bias.shape() == Shape{3});
  std::vector<double> w = vals(lin.weight), b = vals(lin.bias);
  Tensor x3 = randn({2, 4, 5}, 7, kF64);
  check_all_close(lin.forward(x3), ref_linear(vals(x3), w, &b, 8, 5, 3), 1e-12);
  CHECK(lin.forward(x3).shape() == Shape{2, 4, 3});
  Tensor xt = randn({5, 6}, 8, kF64).t();  // [6, 5], non-contiguous
  check_all_close(lin.forward(xt), ref_linear(vals(xt), w, &b, 6, 5, 3), 1e-12);
  Linear nob(5, 3, false, gen, Init::torch_default(), kF64);
  CHECK_FALSE(nob.bias.defined());
  CHECK(nob.named_parameters().size() == 1);
  std::vector<double> w2 = vals(nob.weight);
  check_all_close(nob.forward(x3), ref_linear(vals(x3), w2, nullptr, 8, 5, 3), 1e-12);
  CHECK_THROWS_WITH_AS(lin.forward(randn({2, 4}, 1, kF64)), doctest::Contains("must end in 5 features"), Error);

  check_grad([&](const std::vector<Tensor>& in) { return lin.forward(in[0]); },
             {leaf64({2, 3, 5}, 11), lin.weight, lin.bias});
  check_grad([&](const std::vector<Tensor>& in) { return lin.forward(in[0]); },
             {leaf64_transposed({4, 5}, 12), lin.weight, lin.bias});
  check_grad([&](const std::vector<Tensor>& in) { return lin.forward(in[0]); }, {leaf64({1, 5}, 13)});
}

TEST_CASE("Conv1D (HF): y = x W + b with W [in, out]") {
  Generator gen(2);
  Conv1D c(4, 6, gen, Init::normal(0.5), kF64);
  CHECK(c.weight.shape() == Shape{4, 6});
  randomize(c.bias, 5);
  Tensor wt = c.weight.t().contiguous();
  std::vector<double> b = vals(c.bias);
  Tensor x = randn({3, 2, 4}, 9, kF64);
  check_all_close(c.forward(x), ref_linear(vals(x), vals(wt), &b, 6, 4, 6), 1e-12);
  check_grad([&](const std::vector<Tensor>& in) { return c.forward(in[0]); }, {leaf64({2, 4}, 3), c.weight, c.bias});
}

TEST_CASE("Embedding: rows of the weight; gradient accumulates repeated ids") {
  Generator gen(3);
  Embedding e(7, 3, gen, Init::torch_default(), kF64);
  std::vector<double> w = vals(e.weight);
  Tensor ids = from_vector(std::vector<int32_t>{6, 0, 2, 2, 5, 6}, Shape{2, 3});
  Tensor y = e.forward(ids);
  CHECK(y.shape() == Shape{2, 3, 3});
  std::vector<double> expect;
  for (int id : {6, 0, 2, 2, 5, 6})
    for (int j = 0; j < 3; ++j) expect.push_back(w[size_t(id * 3 + j)]);
  check_all_close(y, expect, 0);
  check_grad([&](const std::vector<Tensor>&) { return e.forward(ids); }, {e.weight});
}

TEST_CASE("LayerNorm and RMSNorm: forward matches the formulas; gradcheck") {
  const int64_t D = 6, rows = 5;
  LayerNorm ln(D, 1e-5, kF64);
  RMSNorm rms(D, 1e-6, kF64);
  CHECK(vals(ln.weight) == std::vector<double>(D, 1.0));
  CHECK(vals(ln.bias) == std::vector<double>(D, 0.0));
  CHECK(vals(rms.weight) == std::vector<double>(D, 1.0));
  randomize(ln.weight, 1);
  randomize(ln.bias, 2);
  randomize(rms.weight, 3);
  Tensor x = randn({rows, D}, 4, kF64);
  std::vector<double> xv = vals(x), g = vals(ln.weight), b = vals(ln.bias), rw = vals(rms.weight);
  std::vector<double> e_ln(xv.size()), e_rms(xv.size());
  ref::layer_norm_forward(e_ln.data(), xv.data(), g.data(), b.data(), rows, D, 1e-5);
  ref::rms_norm_forward(e_rms.data(), xv.data(), rw.data(), rows, D, 1e-6);
  check_all_close(ln.forward(x), e_ln, 1e-12);
  check_all_close(rms.forward(x), e_rms, 1e-12);
  check_grad([&](const std::vector<Tensor>& in) { return ln.forward(in[0]); }, {leaf64({3, D}, 5), ln.weight, ln.bias});
  check_grad([&](const std::vector<Tensor>& in) { return rms.forward(in[0]); }, {leaf64({3, D}, 6), rms.weight});
  CHECK_THROWS_AS(LayerNorm(4, 0.0), Error);
}

TEST_CASE("FeedForward: Linear -> GELU (erf or tanh) -> Linear, named 0 and 2") {
  Generator gen(4);
  for (bool tanh_form : {false, true}) {
    FeedForward ff(4, 10, gen, Init::torch_default(), kF64, tanh_form);
    auto np = ff.named_parameters();
    REQUIRE(np.size() == 4);
    CHECK(np[0].first == "0.weight");
    CHECK(np[1].first == "0.bias");
    CHECK(np[2].first == "2.weight");
    CHECK(np[3].first == "2.bias");
    CHECK(np[0].second.shape() == Shape{10, 4});
    CHECK(np[2].second.shape() == Shape{4, 10});
    Tensor x = randn({3, 4}, 8, kF64);
    std::vector<double> b1 = vals(ff.in_proj.bias), b2 = vals(ff.out_proj.bias);
    std::vector<double> h = ref_linear(vals(x), vals(ff.in_proj.weight), &b1, 3, 4, 10);
    for (double& v : h) v = tanh_form ? ref::gelu_tanh(v) : ref::gelu(v);
    check_all_close(ff.forward(x), ref_linear(h, vals(ff.out_proj.weight), &b2, 3, 10, 4), 1e-12);
    check_grad([&](const std::vector<Tensor>& in) { return ff.forward(in[0]); },
               {leaf64({2, 4}, 9), ff.in_proj.weight, ff.in_proj.bias, ff.out_proj.weight, ff.out_proj.bias});
  }
}

TEST_CASE("SwiGLUMLP: down(silu(gate x) * up x), no biases") {
  Generator gen(5);
  SwiGLUMLP mlp(4, 6, gen, Init::normal(0.5), kF64);
  std::vector<std::string> names;
  for (auto& [n, _] : mlp.named_parameters()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"gate_proj.weight", "up_proj.weight", "down_proj.weight"});
  Tensor x = randn({3, 4}, 10, kF64);
  std::vector<double> gt = ref_linear(vals(x), vals(mlp.gate_proj.weight), nullptr, 3, 4, 6);
  std::vector<double> up = ref_linear(vals(x), vals(mlp.up_proj.weight), nullptr, 3, 4, 6);
  ref::swiglu_forward(gt.data(), gt.data(), up.data(), int64_t(gt.size()));
  check_all_close(mlp.forward(x), ref_linear(gt, vals(mlp.down_proj.weight), nullptr, 3, 6, 4), 1e-12);
  check_grad([&](const std::vector<Tensor>& in) { return mlp.forward(in[0]); },
             {leaf64({2, 4}, 11), mlp.gate_proj.weight, mlp.up_proj.weight, mlp.down_proj.weight});
}

// ---- initialisation ------------------------------------------------------------------------

TEST_CASE("init: PyTorch defaults (uniform bounds and variance, N(0,1) embedding) and HF normal(0.02)") {
  Generator gen(42);
  Linear lin(256, 512, true, gen);
  const double bound = 1.0 / 16.0;
  std::vector<double> w = vals(lin.weight), b = vals(lin.bias);
  CHECK(lin.weight.dtype() == DType::f32);
  auto out_of_bounds = [&](const std::vector<double>& v) {
    return std::count_if(v.begin(), v.end(), [&](double x) { return std::abs(x) > bound; });
  };
  CHECK(out_of_bounds(w) == 0);
  CHECK(out_of_bounds(b) == 0);
  // U(-b, b): mean 0, std b/sqrt(3); 131072 draws -> standard error of the std ~0.2%.
  CHECK(std::abs(mean_of(w)) < 0.01 * bound);
  CHECK(std_of(w) == doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.01));
  CHECK(*std::max_element(w.begin(), w.end()) > 0.99 * bound);  // fills the whole interval
  CHECK(std_of(b) == doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.1));

  Embedding emb(1000, 64, gen);
  std::vector<double> e = vals(emb.weight);
  CHECK(std::abs(mean_of(e)) < 0.02);
  CHECK(std_of(e) == doctest::Approx(1.0).epsilon(0.01));

  Linear hf(128, 256, true, gen, Init::normal(0.02));
  std::vector<double> hw = vals(hf.weight);
  CHECK(std::abs(mean_of(hw)) < 0.001);
  CHECK(std_of(hw) == doctest::Approx(0.02).epsilon(0.01));
  CHECK(vals(hf.bias) == std::vector<double>(256, 0.0));
  Embedding hemb(500, 64, gen, Init::normal(0.02));
  CHECK(std_of(vals(hemb.weight)) == doctest::Approx(0.02).epsilon(0.015));
  Conv1D conv(64, 192, gen);
  CHECK(std_of(vals(conv.weight)) == doctest::Approx(0.02).epsilon(0.02));
  CHECK(vals(conv.bias) == std::vector<double>(192, 0.0));
}

TEST_CASE("init: reproducible from the seed; f64 parameters are the f32 draws upcast") {
  Generator g1(7), g2(7), g3(8), g4(7);
  Linear a(10, 20, true, g1), b(10, 20, true, g2), c(10, 20, true, g3);
  Linear d(10, 20, true, g4, Init::torch_default(), kF64);
  CHECK(vals(a.weight) == vals(b.weight));
  CHECK(vals(a.bias) == vals(b.bias));
  CHECK(vals(a.weight) != vals(c.weight));
  CHECK(d.weight.dtype() == DType::f64);
  CHECK(vals(a.weight) == vals(d.weight));
  CHECK(vals(a.bias) == vals(d.bias));
  // Successive layers from one generator differ.
  Linear e(10, 20, true, g1);
  CHECK(vals(a.weight) != vals(e.weight));
}
