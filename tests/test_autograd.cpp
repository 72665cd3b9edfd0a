// autograd/: the engine's rules (accumulation, retain_graph, no-grad, detach, reuse, leaves).
#include "tests/test_helpers.h"

using namespace mg;
using namespace mg::test;

TEST_CASE("backward computes the gradient of a scalar") {
  Tensor x = from_vector(std::vector<double>{1, 2, 3}, TensorOptions{DType::f64}.with_requires_grad(true));
  Tensor y = sum(mul(x, x));  // dy/dx = 2x
  CHECK(y.grad_fn() != nullptr);
  CHECK(y.grad_fn()->name == "sum");
  y.backward();
  check_close(x.grad(), {2, 4, 6});
}

TEST_CASE("gradients accumulate across backward calls until zeroed") {
  Tensor x = from_vector(std::vector<double>{1, -1}, TensorOptions{DType::f64}.with_requires_grad(true));
  sum(mul(x, 3.0)).backward();
  sum(mul(x, 3.0)).backward();
  check_close(x.grad(), {6, 6});
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
  sum(x).backward();
  check_close(x.grad(), {1, 1});
}

TEST_CASE("a tensor reused several times sums its gradients") {
  Tensor x = from_vector(std::vector<double>{2, 3}, TensorOptions{DType::f64}.with_requires_grad(true));
  Tensor a = mul(x, x);          // x used twice in one op
  Tensor b = add(a, x);          // and again
  Tensor c = mul(b, exp(x));     // and again, through exp
  sum(c).backward();
  // c = (x^2 + x) e^x, dc/dx = (2x + 1) e^x + (x^2 + x) e^x
  std::vector<double> expect;
  for (double v : {2.0, 3.0}) expect.push_back((2 * v + 1) * std::exp(v) + (v * v + v) * std::exp(v));
  check_close(x.grad(), expect, 1e-12);
  // diamond: two paths through one intermediate
  Tensor y = leaf64({3}, 1);
  Tensor h = tanh(y);
  Tensor z = sum(add(mul(h, 2.0), mul(h, h)));
  z.backward();
  std::vector<double> yv = y.to_vector<double>(), gv = y.grad().to_vector<double>();
  for (size_t i = 0; i < 3; ++i) {
    double t = std::tanh(yv[i]);
    CHECK(gv[i] == doctest::Approx((2 + 2 * t) * (1 - t * t)).epsilon(1e-12));
  }
}

TEST_CASE("retain_graph: a second backward through a freed graph throws") {
  Tensor x = leaf64({4}, 2);
  Tensor y = sum(exp(x));
  y.backward(Tensor(), /*retain_graph=*/true);
  std::vector<double> g1 = x.grad().to_vector<double>();
  y.backward();  // allowed: graph was retained
  std::vector<double> g2 = x.grad().to_vector<double>();
  for (size_t i = 0; i < g1.size(); ++i) CHECK(g2[i] == doctest::Approx(2 * g1[i]));
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("backward through a freed graph: node 'sum'"), Error);
}

TEST_CASE("no-grad guard records nothing") {
  Tensor x = leaf64({3}, 3);
  Tensor y;
  {
    NoGradGuard guard;
    y = mul(x, 2.0);
    CHECK_FALSE(grad_enabled());
  }
  CHECK(grad_enabled());
  CHECK_FALSE(y.requires_grad());
  CHECK(y.grad_fn() == nullptr);
  CHECK_THROWS_WITH_AS(sum(y).backward(), doctest::Contains("does not require grad"), Error);
}

TEST_CASE("detach cuts the graph but shares storage") {
  Tensor x = leaf64({3}, 4);
  Tensor h = mul(x, x);
  Tensor d = h.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.storage() == h.storage());
  Tensor y = sum(add(mul(h, d), x));  // gradient flows through h only, d is a constant
  y.backward();
  std::vector<double> xv = x.to_vector<double>(), gv = x.grad().to_vector<double>();
  for (size_t i = 0; i < 3; ++i) CHECK(gv[i] == doctest::Approx(2 * xv[i] * xv[i] * xv[i] + 1));
}

TEST_CASE("leaf and non-leaf rules follow PyTorch") {
  Tensor w = leaf64({2}, 5);
  CHECK(w.is_leaf());
  CHECK(w.requires_grad());
  Tensor c = from_vector(std::vector<double>{1, 1}, TensorOptions{DType::f64});
  CHECK(c.is_leaf());
  CHECK_FALSE(c.requires_grad());
  Tensor h = mul(w, c);
  CHECK_FALSE(h.is_leaf());
  CHECK(h.requires_grad());
  CHECK_THROWS_WITH_AS(h.set_requires_grad(false), doctest::Contains("only leaf tensors"), Error);
  Tensor k = mul(h, 3.0);
  h.retain_grad();
  sum(k).backward();
  CHECK(h.grad().defined());  // retained
  check_close(h.grad(), {3, 3});
  CHECK_FALSE(k.grad().defined());  // non-leaf, not retained
  CHECK_FALSE(c.grad().defined());  // constant leaf
  check_close(w.grad(), {3, 3});
  CHECK_THROWS_WITH_AS(arange(0, 3, 1, TensorOptions{DType::i32}).set_requires_grad(true),
                       doctest::Contains("only floating tensors"), Error);
}

TEST_CASE("backward with an explicit gradient, and shape checks") {
  Tensor x = leaf64({2, 2}, 6);
  Tensor y = mul(x, 2.0);
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("implicit gradient only for one-element outputs"), Error);
  CHECK_THROWS_WITH_AS(y.backward(ones({3}, TensorOptions{DType::f64})), doctest::Contains("does not match"), Error);
  y.backward(full({2, 2}, 0.5, TensorOptions{DType::f64}));
  check_close(x.grad(), {1, 1, 1, 1});
}

TEST_CASE("node names are the op names, for the gradient audit") {
  Tensor x = leaf64({2, 3}, 7);
  Tensor y = matmul(x, x.t());
  CHECK(y.grad_fn()->name == "matmul");
  CHECK(y.grad_fn()->next.size() == 2);
  CHECK(y.grad_fn()->next[1]->name == "permute");
  CHECK(y.grad_fn()->next[0]->name == "AccumulateGrad");
}

TEST_CASE("gradcheck reports the worst element of a wrong gradient") {
  // A deliberately wrong backward: claims d(x^3)/dx = 2x.
  auto wrong_cube = [](const std::vector<Tensor>& in) {
    Tensor x = in[0];
    Tensor out;
    {
      NoGradGuard g;
      out = mul(mul(x, x), x);
    }
    Tensor xs = x.detach();
    return record("wrong_cube", out, {x}, [xs](const Tensor& g) -> std::vector<Tensor> { return {mul(g, mul(xs, 2.0))}; });
  };
  Tensor x = leaf64({5}, 8);
  GradcheckResult r = gradcheck(wrong_cube, {x});
  CHECK_FALSE(r.ok);
  CHECK(r.input == 0);
  CHECK(r.index >= 0);
  CHECK(r.message.find("element") != std::string::npos);
  auto right_cube = [](const std::vector<Tensor>& in) { return pow(in[0], 3.0); };
  CHECK(gradcheck(right_cube, {x}).ok);
}

TEST_CASE("needs_grad tells an op which inputs need a gradient") {
  Tensor a = leaf64({3}, 21), c = leaf64({3}, 23);
  Tensor frozen = randn({3}, 22, TensorOptions{DType::f64});
  CHECK(needs_grad(a));
  CHECK_FALSE(needs_grad(frozen));
  CHECK_FALSE(needs_grad(Tensor()));  // an absent optional input
  CHECK(needs_grad(mul(a, frozen)));  // a result with history
  {
    NoGradGuard g;
    CHECK_FALSE(needs_grad(a));  // nothing is recorded, so nothing needs a gradient
  }
  // A three-input op whose middle input is frozen asks at forward time: its backward leaves the
  // frozen input's gradient undefined and the others' are delivered.
  Tensor out;
  {
    NoGradGuard g;
    out = add(add(a, frozen), c);
  }
  const std::vector<bool> need = {needs_grad(a), needs_grad(frozen), needs_grad(c)};
  CHECK(need == std::vector<bool>{true, false, true});
  bool ran = false;
  out = record("sum3", out, {a, frozen, c}, [need, &ran](const Tensor& g) -> std::vector<Tensor> {
    ran = true;
    return {need[0] ? g : Tensor(), need[1] ? g : Tensor(), need[2] ? g : Tensor()};
  });
  sum(out).backward();
  CHECK(ran);
  CHECK_FALSE(frozen.grad().defined());
  check_close(a.grad(), {1, 1, 1});
  check_close(c.grad(), {1, 1, 1});
}

TEST_CASE("frozen weights get no gradient and leave the input gradient unchanged") {
  // Linear (matmul + broadcast bias add) and masked token mixing, as in the input-representation
  // test: the same input gradient with the weights frozen as with them trainable.
  auto input_grad = [](bool train_weights, Tensor& w_grad, Tensor& b_grad, Tensor& m_grad, Tensor& mb_grad) {
    Tensor x = leaf64({2, 5, 4}, 31);
    Tensor w = randn({4, 4}, 32, TensorOptions{DType::f64}), b = randn({4}, 33, TensorOptions{DType::f64});
    Tensor m = randn({5, 5}, 34, TensorOptions{DType::f64}), mb = randn({5}, 35, TensorOptions{DType::f64});
    for (Tensor* p : {&w, &b, &m, &mb}) p->set_requires_grad(train_weights);
    Tensor y = add(matmul(x, w.t()), b);
    Tensor z = masked_token_mix(tanh(y), m, mb);
    sum(mul(z, z)).backward();
    w_grad = w.grad();
    b_grad = b.grad();
    m_grad = m.grad();
    mb_grad = mb.grad();
    return x.grad();
  };
  Tensor wg, bg, mg_, mbg;
  Tensor trained = input_grad(true, wg, bg, mg_, mbg);
  CHECK(wg.defined());
  CHECK(bg.defined());
  CHECK(mg_.defined());
  CHECK(mbg.defined());
  Tensor frozen = input_grad(false, wg, bg, mg_, mbg);
  CHECK_FALSE(wg.defined());
  CHECK_FALSE(bg.defined());
  CHECK_FALSE(mg_.defined());
  CHECK_FALSE(mbg.defined());
  check_close(frozen, trained.to_vector<double>(), 1e-12);
}
