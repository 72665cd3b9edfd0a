// nn/optim and nn/lr_schedule: AdamW and SGD against plain scalar re-implementations of torch's
// update rules, minimisation of a quadratic, gradient clipping, and the LR schedules.
#include <cmath>
#include <memory>
#include <numbers>

#include "nn/lr_schedule.h"
#include "nn/optim.h"
#include "ops/inplace.h"
#include "tests/reference.h"
#include "tests/test_helpers.h"

using namespace mg;
using namespace mg::test;

namespace {


Tensor param(const std::vector<double>& v, DType dt = DType::f64) {
  Tensor t = from_vector(v, Shape{int64_t(v.size())}, TensorOptions{dt});
  t.set_requires_grad(true);
  return t;
}

// One scalar's optimizer state, stepped by the references of tests/reference.h
// (torch.optim.AdamW._single_tensor_adamw, step t 1-based; torch.optim.SGD._single_tensor_sgd).
struct RefAdamW {
  double lr, b1, b2, eps, wd;
  double m = 0, v = 0;
  int64_t t = 0;
  void step(double& p, double g) { ref::adamw_step(&p, &g, &m, &v, 1, lr, b1, b2, eps, wd, ++t); }
};

struct RefSGD {
  double lr, momentum, dampening, wd;
  bool nesterov;
  bool has_buf = false;
  double buf = 0;
  void step(double& p, double g) {
    ref::sgd_step(&p, &g, &buf, !has_buf, 1, lr, momentum, dampening, wd, nesterov);
    has_buf = true;
  }
};

void check_rel(const std::vector<double>& got, const std::vector<double>& want, double rel) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": " << got[i] << " vs reference " << want[i]);
    CHECK(std::abs(got[i] - want[i]) <= rel * std::abs(want[i]) + 1e-300);
  }
}

// Gradients that change every step, reproducibly.
std::vector<double> grad_values(size_t n, int step, int which) {
  std::vector<double> g;
  for (size_t i = 0; i < n; ++i) g.push_back(std::sin(1.3 * double(i) + 0.7 * step + 2.1 * which) * (1 + 0.5 * step));
  return g;
}

}  // namespace

TEST_CASE("AdamW matches torch's update rule step by step (f64), weight decay and bias correction") {
  for (AdamWOptions o : {AdamWOptions{}, AdamWOptions{0.05, 0.8, 0.95, 1e-6, 0.1}, AdamWOptions{0.01, 0.9, 0.999, 1e-8, 0.0}}) {
    INFO("lr " << o.lr << " wd " << o.weight_decay);
    std::vector<double> a0 = {0.5, -1.5, 2.0, 0.0, 3.25}, b0 = {-0.75, 1.0, 4.0};
    Tensor a = param(a0), b = param(b0);
    AdamW opt({a, b}, o);
    std::vector<RefAdamW> ra(a0.size(), RefAdamW{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay}),
        rb(b0.size(), RefAdamW{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay});
    for (int s = 0; s < 6; ++s) {
      std::vector<double> ga = grad_values(a0.size(), s, 0), gb = grad_values(b0.size(), s, 1);
      a.set_grad(from_vector(ga));
      b.set_grad(from_vector(gb));
      opt.step();
      for (size_t i = 0; i < a0.size(); ++i) ra[i].step(a0[i], ga[i]);
      for (size_t i = 0; i < b0.size(); ++i) rb[i].step(b0[i], gb[i]);
      check_rel(vals(a), a0, 1e-12);
      check_rel(vals(b), b0, 1e-12);
    }
    CHECK(opt.step_count() == 6);
    // the state the kernel keeps is torch's exp_avg / exp_avg_sq
    auto st = opt.state_tensors();
    REQUIRE(st.size() == 4);
    CHECK(st[0].first == "state.0.exp_avg");
    CHECK(st[3].first == "state.1.exp_avg_sq");
    std::vector<double> m, v;
    for (auto& r : rb) m.push_back(r.m), v.push_back(r.v);
    check_rel(vals(st[2].second), m, 1e-12);
    check_rel(vals(st[3].second), v, 1e-12);
  }
}

TEST_CASE("AdamW in f32, above the parallel grain, matches the f64 reference to f32 rounding") {
  const size_t n = 70001;  // odd, and above kParallelGrain: threads and a vector remainder
  std::vector<double> p0(n), g0(n);
  for (size_t i = 0; i < n; ++i) p0[i] = std::cos(0.01 * double(i)), g0[i] = std::sin(0.37 * double(i));
  Tensor p = param(p0, DType::f32);
  AdamW opt({p}, AdamWOptions{1e-2, 0.9, 0.999, 1e-8, 0.1});
  std::vector<RefAdamW> ref(n, RefAdamW{1e-2, 0.9, 0.999, 1e-8, 0.1});
  for (int s = 0; s < 3; ++s) {
    p.set_grad(from_vector(g0, Shape{int64_t(n)}, TensorOptions{DType::f32}));
    opt.step();
    for (size_t i = 0; i < n; ++i) {
      p0[i] = double(float(p0[i]));  // the reference starts from the f32 values
      ref[i].step(p0[i], double(float(g0[i])));
    }
    std::vector<double> got = vals(p);
    double worst = 0;
    for (size_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(got[i] - p0[i]));
    CHECK(worst < 1e-6);
    p0 = got;
  }
}

TEST_CASE("AdamW skips parameters without a gradient; each counts its own steps as torch does") {
  Tensor a = param({1.0, 2.0}), b = param({3.0});
  AdamW opt({a, b}, AdamWOptions{0.1, 0.9, 0.999, 1e-8, 0.5});
  a.set_grad(from_vector(std::vector<double>{0.5, -0.5}));
  opt.step();  // b has no grad: untouched, not even weight-decayed
  check_close(b, {3.0}, 0);
  a.set_grad(from_vector(std::vector<double>{0.5, -0.5}));
  b.set_grad(from_vector(std::vector<double>{2.0}));
  opt.step();
  // b's first step: bias correction with t = 1, so the update is lr * sign(g) after decay
  double rb = 3.0;
  RefAdamW r{0.1, 0.9, 0.999, 1e-8, 0.5};
  r.step(rb, 2.0);
  check_close(b, {rb}, 1e-14);
  CHECK(opt.step_count() == 2);
  // zero_grad drops the gradients, so the next step changes nothing
  opt.zero_grad();
  CHECK_FALSE(a.grad().defined());
  std::vector<double> before = vals(a);
  opt.step();
  check_close(a, before, 0);
}

TEST_CASE("SGD matches torch's update rule: momentum, dampening, nesterov, weight decay") {
  std::vector<SGDOptions> cases = {
      {0.1, 0, 0, 0, false},      {0.1, 0, 0, 0.05, false},   {0.05, 0.9, 0, 0, false},
      {0.05, 0.9, 0.3, 0.01, false}, {0.05, 0.9, 0, 0.02, true}, {0.2, 0.5, 0.5, 0, false},
  };
  for (const SGDOptions& o : cases) {
    INFO("lr " << o.lr << " momentum " << o.momentum << " dampening " << o.dampening << " wd " << o.weight_decay
               << " nesterov " << o.nesterov);
    std::vector<double> p0 = {0.5, -1.5, 2.0, 0.0};
    Tensor p = param(p0);
    SGD opt({p}, o);
    std::vector<RefSGD> ref(p0.size(), RefSGD{o.lr, o.momentum, o.dampening, o.weight_decay, o.nesterov});
    for (int s = 0; s < 5; ++s) {
      std::vector<double> g = grad_values(p0.size(), s, 2);
      p.set_grad(from_vector(g));
      opt.step();
      for (size_t i = 0; i < p0.size(); ++i) ref[i].step(p0[i], g[i]);
      check_rel(vals(p), p0, 1e-12);
    }
    CHECK(opt.state_tensors().size() == (o.momentum != 0 ? 1u : 0u));
  }
  // f32 at the same settings agrees to f32 rounding
  Tensor p32 = param({0.5, -1.5, 2.0, 0.0}, DType::f32);
  SGD opt32({p32}, SGDOptions{0.05, 0.9, 0.3, 0.01, false});
  std::vector<double> p0 = {0.5, -1.5, 2.0, 0.0};
  std::vector<RefSGD> ref(4, RefSGD{0.05, 0.9, 0.3, 0.01, false});
  for (int s = 0; s < 5; ++s) {
    std::vector<double> g = grad_values(4, s, 2);
    p32.set_grad(from_vector(g, Shape{4}, TensorOptions{DType::f32}));
    opt32.step();
    for (size_t i = 0; i < 4; ++i) ref[i].step(p0[i], double(float(g[i])));
  }
  check_close(p32, p0, 1e-6);

  CHECK_THROWS_WITH_AS(SGD({param({1.0})}, SGDOptions{0.1, 0.9, 0.1, 0, true}), doctest::Contains("nesterov"), Error);
  CHECK_THROWS_WITH_AS(SGD({param({1.0})}, SGDOptions{0.1, 0, 0, 0, true}), doctest::Contains("nesterov"), Error);
}

TEST_CASE("optimizer state round trip: a restored optimizer continues exactly") {
  auto run = [](Optimizer& opt, Tensor& p, int from, int to) {
    for (int s = from; s < to; ++s) {
      p.set_grad(from_vector(grad_values(3, s, 3)));
      opt.step();
    }
  };
  for (int kind = 0; kind < 2; ++kind) {
    Tensor p = param({1.0, -2.0, 0.5});
    std::unique_ptr<Optimizer> full, first, second;
    auto make = [&](Tensor t) -> std::unique_ptr<Optimizer> {
      if (kind == 0) return std::make_unique<AdamW>(std::vector<Tensor>{t}, AdamWOptions{0.05});
      return std::make_unique<SGD>(std::vector<Tensor>{t}, SGDOptions{0.05, 0.9, 0.2, 0.01, false});
    };
    full = make(p);
    run(*full, p, 0, 6);

    Tensor q = param({1.0, -2.0, 0.5});
    first = make(q);
    run(*first, q, 0, 3);
    // a fresh optimizer over a fresh leaf, loaded with the first one's state
    Tensor r = param(vals(q));
    second = make(r);
    auto src = first->state_tensors(), dst = second->state_tensors();
    REQUIRE(src.size() == dst.size());
    {
      NoGradGuard ng;
      for (size_t i = 0; i < src.size(); ++i) {
        CHECK(src[i].first == dst[i].first);
        assign_(dst[i].second, src[i].second);
      }
    }
    second->set_step_count(first->step_count());
    run(*second, r, 3, 6);
    check_close(r, vals(p), 0);
  }
}

TEST_CASE("optimizers minimise a quadratic through autograd") {
  // f(x) = sum w_i (x_i - c_i)^2 with a wide spread of curvatures
  Tensor c = from_vector(std::vector<double>{1.0, -2.0, 0.5, 3.0});
  Tensor w = from_vector(std::vector<double>{0.5, 2.0, 1.0, 4.0});
  auto loss = [&](const Tensor& x) { return sum(mul(w, square(sub(x, c)))); };
  {
    Tensor x = param({0, 0, 0, 0});
    AdamW opt({x}, AdamWOptions{0.05, 0.9, 0.999, 1e-8, 0.0});
    const double l0 = loss(x).item();
    for (int s = 0; s < 600; ++s) {
      opt.zero_grad();
      loss(x).backward();
      opt.step();
    }
    CHECK(loss(x).item() < 1e-6 * l0);
    check_close(x, {1.0, -2.0, 0.5, 3.0}, 1e-3);
  }
  for (bool nesterov : {false, true}) {
    Tensor x = param({0, 0, 0, 0});
    SGD opt({x}, SGDOptions{0.05, 0.9, 0, 0, nesterov});
    for (int s = 0; s < 400; ++s) {
      opt.zero_grad();
      loss(x).backward();
      opt.step();
    }
    check_close(x, {1.0, -2.0, 0.5, 3.0}, 1e-6);
  }
  // f32 parameters, set_lr honoured: lr 0 freezes, then training resumes
  Tensor x = param({0, 0, 0, 0}, DType::f32);
  Tensor c32 = c.to(DType::f32), w32 = w.to(DType::f32);
  SGD opt({x}, SGDOptions{0.05});
  opt.set_lr(0);
  sum(mul(w32, square(sub(x, c32)))).backward();
  opt.step();
  check_close(x, {0, 0, 0, 0}, 0);
  opt.set_lr(0.1);
  CHECK(opt.lr() == 0.1);
  for (int s = 0; s < 300; ++s) {
    opt.zero_grad();
    sum(mul(w32, square(sub(x, c32)))).backward();
    opt.step();
  }
  check_close(x, {1.0, -2.0, 0.5, 3.0}, 1e-5);
  CHECK_THROWS_WITH_AS(opt.set_lr(-1), doctest::Contains("learning rate"), Error);
}

TEST_CASE("optimizer construction checks its parameters") {
  Tensor nograd = from_vector(std::vector<double>{1.0});
  CHECK_THROWS_WITH_AS(AdamW({nograd}), doctest::Contains("requires_grad"), Error);
  Tensor a = param({1.0, 2.0});
  CHECK_THROWS_WITH_AS(AdamW({a, a}), doctest::Contains("listed twice"), Error);
  Tensor nc = randn({3, 4}, 1, TensorOptions{DType::f64}).t().detach();
  nc.set_requires_grad(true);
  CHECK_THROWS_WITH_AS(SGD({nc}), doctest::Contains("contiguous"), Error);
  CHECK_THROWS_WITH_AS(AdamW({a}, AdamWOptions{1e-3, 1.0}), doctest::Contains("beta1"), Error);
  // a gradient that is a broadcast view is read correctly
  Tensor p = param({1.0, 2.0, 3.0});
  p.set_grad(from_vector(std::vector<double>{2.0}).expand({3}));
  SGD opt({p}, SGDOptions{0.5});
  opt.step();
  check_close(p, {0.0, 1.0, 2.0}, 0);
}

TEST_CASE("clip_grad_norm: returns the total norm and scales only above max_norm") {
  Tensor a = param({0, 0, 0}), b = param({0, 0}), none = param({7});
  a.set_grad(from_vector(std::vector<double>{3, 0, 4}));   // norm 5
  b.set_grad(from_vector(std::vector<double>{12, 0}));     // total sqrt(25 + 144) = 13
  // below the limit: returned, nothing changes
  CHECK(clip_grad_norm({a, b, none}, 20.0) == doctest::Approx(13.0).epsilon(1e-15));
  check_close(a.grad(), {3, 0, 4}, 0);
  check_close(b.grad(), {12, 0}, 0);
  // above: scaled by max / (norm + 1e-6), exactly torch's factor
  CHECK(clip_grad_norm({a, b, none}, 6.5) == doctest::Approx(13.0).epsilon(1e-15));
  const double f = 6.5 / (13.0 + 1e-6);
  check_close(a.grad(), {3 * f, 0, 4 * f}, 1e-15);
  check_close(b.grad(), {12 * f, 0}, 1e-15);
  CHECK(clip_grad_norm({a, b}, 100.0) == doctest::Approx(6.5).epsilon(1e-6));
  CHECK_FALSE(none.grad().defined());

  // f32 gradients over many elements: the norm accumulates in f64
  const int64_t n = 1 << 20;
  Tensor big = zeros({n}, TensorOptions{DType::f32, kCPU, true});
  big.set_grad(full({n}, 0.001, TensorOptions{DType::f32}));
  const double want = std::sqrt(double(n)) * double(0.001f);
  CHECK(clip_grad_norm({big}, 0.5) == doctest::Approx(want).epsilon(1e-7));
  check_close(big.grad().narrow(0, n - 3, 3), std::vector<double>(3, double(0.001f) * 0.5 / (want + 1e-6)), 1e-6);

  // a non-contiguous gradient is scaled through its strides
  Tensor mt = from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, Shape{3, 2}).t();
  Tensor m2 = zeros({2, 3}, TensorOptions{DType::f64, kCPU, true});
  m2.set_grad(mt);
  const double nm = std::sqrt(91.0);
  CHECK(clip_grad_norm({m2}, 1.0) == doctest::Approx(nm).epsilon(1e-15));
  const double g = 1.0 / (nm + 1e-6);
  check_close(m2.grad(), {1 * g, 3 * g, 5 * g, 2 * g, 4 * g, 6 * g}, 1e-14);
}

TEST_CASE("LR schedules: warmup, linear, cosine, constant, min_lr") {
  const double peak = 1e-3;
  LRSchedule lin{peak, 10, 110, DecayKind::linear};
  CHECK(lin.at(0) == 0.0);
  CHECK(lin.at(5) == doctest::Approx(0.5 * peak).epsilon(1e-15));
  CHECK(lin.at(9) == doctest::Approx(0.9 * peak).epsilon(1e-15));
  CHECK(lin.at(10) == peak);  // end of warmup: the peak exactly
  CHECK(lin.at(60) == doctest::Approx(0.5 * peak).epsilon(1e-15));
  CHECK(lin.at(85) == doctest::Approx(0.25 * peak).epsilon(1e-15));
  CHECK(lin.at(110) == 0.0);
  CHECK(lin.at(500) == 0.0);

  LRSchedule cosv{peak, 10, 110, DecayKind::cosine};
  CHECK(cosv.at(0) == 0.0);
  CHECK(cosv.at(5) == doctest::Approx(0.5 * peak).epsilon(1e-15));
  CHECK(cosv.at(10) == peak);
  CHECK(cosv.at(35) == doctest::Approx(peak * 0.5 * (1 + std::cos(std::numbers::pi / 4))).epsilon(1e-14));
  CHECK(cosv.at(60) == doctest::Approx(0.5 * peak).epsilon(1e-14));
  CHECK(cosv.at(110) == doctest::Approx(0.0).epsilon(1e-15));
  CHECK(cosv.at(200) == cosv.at(110));  // held at the floor, not rising again

  LRSchedule cosmin{peak, 10, 110, DecayKind::cosine, 1e-4};
  CHECK(cosmin.at(5) == doctest::Approx(0.5 * peak).epsilon(1e-15));  // warmup starts from 0, not min_lr
  CHECK(cosmin.at(10) == doctest::Approx(peak).epsilon(1e-15));
  CHECK(cosmin.at(60) == doctest::Approx(1e-4 + 0.5 * (peak - 1e-4)).epsilon(1e-14));
  CHECK(cosmin.at(110) == doctest::Approx(1e-4).epsilon(1e-14));
  CHECK(cosmin.at(1000) == doctest::Approx(1e-4).epsilon(1e-14));
  LRSchedule linmin{peak, 0, 100, DecayKind::linear, 1e-4};
  CHECK(linmin.at(0) == doctest::Approx(peak).epsilon(1e-15));  // no warmup: the first step is at the peak
  CHECK(linmin.at(50) == doctest::Approx(1e-4 + 0.5 * (peak - 1e-4)).epsilon(1e-14));
  CHECK(linmin.at(100) == doctest::Approx(1e-4).epsilon(1e-14));

  LRSchedule cst{peak, 4, 0, DecayKind::constant};
  CHECK(cst.at(0) == 0.0);
  CHECK(cst.at(2) == doctest::Approx(0.5 * peak).epsilon(1e-15));
  CHECK(cst.at(4) == peak);
  CHECK(cst.at(1000000) == peak);
  // the paper's InfoNCE run: AdamW 1e-4, warmup 500 (docs/paper.md E.3)
  LRSchedule paper{1e-4, 500, 45000, DecayKind::linear};
  CHECK(paper.at(250) == doctest::Approx(5e-5).epsilon(1e-15));
  CHECK(paper.at(500) == 1e-4);

  CHECK_THROWS_WITH_AS(lin.at(-1), doctest::Contains("negative step"), Error);
  CHECK_THROWS_WITH_AS((LRSchedule{peak, 10, 5, DecayKind::cosine}.at(20)), doctest::Contains("total_steps"), Error);
}
