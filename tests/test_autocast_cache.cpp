// The autocast cache (core/autocast_cache.h): a parameter is converted to bf16 once per outermost
// AutocastGuard scope however often it is used; an activation once while its copy is held (saved
// for backward); copies are dropped when the scope ends, when the optimizer writes the parameters
// and on any in-place write; cached uses give bitwise the values and gradients of uncached casts.
#include <vector>

#include "autograd/grad_mode.h"
#include "core/autocast.h"
#include "core/autocast_cache.h"
#include "nn/layers.h"
#include "nn/optim.h"
#include "ops/inplace.h"
#include "tests/test_helpers.h"

using namespace mg;
using namespace mg::test;

namespace {

Tensor param(const Shape& s, uint64_t seed) {
  Tensor t = randn(s, seed).detach();
  t.set_requires_grad(true);
  return t;
}

int64_t conversions() { return autocast_cache_stats().conversions; }
int64_t hits() { return autocast_cache_stats().hits; }

}  // namespace

TEST_CASE("autocast cache: a parameter used twice in one scope is converted once; an input while its copy lives") {
  Tensor w = param({8, 5}, 1);
  Tensor x1 = randn({3, 8}, 2), x2 = randn({4, 8}, 3);  // activations: cached only while held
  const int64_t c0 = conversions(), h0 = hits();
  {
    AutocastGuard ac;
    Tensor y1 = matmul(x1, w), y2 = matmul(x2, w);  // each saves its input's copy for w's gradient
    CHECK(y1.dtype() == DType::bf16);
    CHECK(conversions() - c0 == 3);  // w once, x1 and x2 once each
    CHECK(hits() - h0 == 1);
    {
      AutocastGuard nested;  // a nested enabled scope shares the outer cache
      (void)matmul(x1, w);   // w's copy and x1's (held by y1's node) are found
    }
    CHECK(conversions() - c0 == 3);
    CHECK(hits() - h0 == 3);
  }
  // The outermost scope ended (and y1 with it): the next scope converts w and x1 again.
  {
    AutocastGuard ac;
    (void)matmul(x1, w);
  }
  CHECK(conversions() - c0 == 5);
  CHECK(hits() - h0 == 3);
  // Without grad nothing saves x1's copy, so the cache holds no memory and finds nothing.
  {
    NoGradGuard ng;
    AutocastGuard ac;
    (void)matmul(x1, w);
    (void)matmul(x1, w);
  }
  CHECK(conversions() - c0 == 8);  // w once, x1 twice
  CHECK(hits() - h0 == 4);
}

TEST_CASE("autocast cache: cached uses give bitwise the values and gradients of uncached casts") {
  Tensor w = param({6, 7}, 4), x = randn({5, 6}, 5), z = randn({3, 6}, 6);
  Tensor rx = randn({5, 7}, 14), rz = randn({3, 7}, 15);
  // w used twice; the uses' gradients differ, so a shared cast would round their sum differently.
  auto loss = [&](const Tensor& w1, const Tensor& w2) {
    return add(sum(mul(matmul(x, w1).to(DType::f32), rx)), sum(mul(matmul(z, w2).to(DType::f32), rz)));
  };
  Tensor y_cached;
  {
    AutocastGuard ac;
    y_cached = loss(w, w);
  }
  y_cached.backward();
  const Tensor gw_cached = w.grad().detach();
  w.zero_grad();
  Tensor y_plain;
  {
    AutocastGuard ac;
    y_plain = loss(w.to(DType::bf16), w.to(DType::bf16));  // Tensor::to is never cached: the reference
  }
  y_plain.backward();
  CHECK(vals(y_cached) == vals(y_plain));
  CHECK(vals(gw_cached) == vals(w.grad()));
}

TEST_CASE("autocast cache: Linear converts its weight once per scope, with the uncached results") {
  Generator gen(7);
  Linear lin(16, 12, true, gen, Init::torch_default(), {});
  Tensor x = randn({2, 3, 16}, 8).detach();
  const int64_t c0 = conversions(), h0 = hits();
  Tensor a, b;
  {
    AutocastGuard ac;
    a = lin.forward(x);
    b = lin.forward(x);
  }
  CHECK(conversions() - c0 == 2);  // the weight once, the input once (a's node holds its copy)
  CHECK(hits() - h0 == 2);
  CHECK(vals(a) == vals(b));
  // The uncached path: the transposed view cast on every use (a contiguous [in, out] bf16 copy),
  // the bias added in the GEMM's epilogue as Linear does.
  // Values and gradients (weight, bias, input) are bitwise those of the previous path.
  Tensor r = randn({2, 3, 12}, 16), xg = x.detach();
  xg.set_requires_grad(true);
  Tensor l_new, l_old;
  {
    AutocastGuard ac;
    l_new = sum(mul(lin.forward(xg), r));
  }
  l_new.backward();
  const Tensor gw = lin.weight.grad().detach(), gb = lin.bias.grad().detach(), gx = xg.grad().detach();
  lin.weight.zero_grad();
  lin.bias.zero_grad();
  xg.zero_grad();
  Tensor ref;
  {
    AutocastGuard ac;
    ref = matmul_bias(xg.reshape({6, 16}), lin.weight.t().to(DType::bf16), lin.bias).reshape({2, 3, 12});
    l_old = sum(mul(ref, r));
  }
  l_old.backward();
  CHECK(vals(a) == vals(ref));
  CHECK(vals(l_new) == vals(l_old));
  CHECK(vals(gw) == vals(lin.weight.grad()));
  CHECK(vals(gb) == vals(lin.bias.grad()));
  CHECK(vals(gx) == vals(xg.grad()));
}

TEST_CASE("autocast cache: optimizer.step drops the cached copies, later uses see the new weights") {
  Tensor w = param({4, 4}, 9), x = randn({2, 4}, 10);
  SGD opt({w}, SGDOptions{.lr = 0.5});
  Tensor l;
  {
    AutocastGuard ac;
    l = sum(matmul(x, w).to(DType::f32));
  }
  l.backward();
  AutocastGuard ac;  // one scope across the step, so only the optimizer can invalidate
  Tensor before = matmul(x, w);
  const int64_t c0 = conversions();
  opt.step();
  Tensor after = matmul(x, w);
  CHECK(conversions() - c0 == 2);  // w converted again (and x)
  CHECK(vals(after) == vals(matmul(x, w.to(DType::bf16))));
  CHECK(vals(after) != vals(before));
}

TEST_CASE("autocast cache: a parameter whose storage is replaced is converted again") {
  Tensor w = param({3, 3}, 11), x = randn({2, 3}, 12);
  AutocastGuard ac;
  Tensor before = matmul(x, w);
  const int64_t c0 = conversions();
  // A checkpoint load may swap a parameter's storage for a new one.
  Tensor fresh = randn({3, 3}, 13);
  w.impl()->storage = fresh.storage();
  Tensor after = matmul(x, w);
  CHECK(conversions() - c0 == 1);  // w again; x's copy is still held by before's node
  CHECK(vals(after) == vals(matmul(x, fresh.to(DType::bf16))));
}

// One normalised activation feeding three projections, as a Llama layer's q, k and v.
TEST_CASE("autocast cache: an activation used by three matmuls is converted once, with the uncached results") {
  Tensor wq = param({6, 5}, 21), wk = param({6, 5}, 22), wv = param({6, 5}, 23);
  Tensor x0 = randn({4, 6}, 24).detach();
  x0.set_requires_grad(true);
  Tensor r = randn({4, 5}, 25);
  // Different output weights per branch, so a shared cast node would round the summed gradient
  // differently from three separate ones.
  auto loss = [&](const Tensor& h, const Tensor& hq, const Tensor& hk, const Tensor& hv) {
    (void)h;
    Tensor q = matmul(hq, wq).to(DType::f32), k = matmul(hk, wk).to(DType::f32), v = matmul(hv, wv).to(DType::f32);
    return add(add(sum(mul(q, r)), sum(mul(k, mul(r, r)))), sum(mul(v, neg(r))));
  };
  const int64_t c0 = conversions(), h0 = hits();
  Tensor l_cached;
  {
    AutocastGuard ac;
    Tensor h = mul(x0, x0);  // an activation (not a leaf)
    l_cached = loss(h, h, h, h);
  }
  CHECK(conversions() - c0 == 4);  // three weights, the activation once
  CHECK(hits() - h0 == 2);
  l_cached.backward();
  const Tensor gx = x0.grad().detach(), gq = wq.grad().detach(), gk = wk.grad().detach();
  x0.zero_grad();
  wq.zero_grad();
  wk.zero_grad();
  wv.zero_grad();
  Tensor l_plain;
  {
    AutocastGuard ac;
    Tensor h = mul(x0, x0);
    // Tensor::to is never cached: three separate conversions, the reference.
    l_plain = loss(h, h.to(DType::bf16), h.to(DType::bf16), h.to(DType::bf16));
  }
  l_plain.backward();
  CHECK(vals(l_cached) == vals(l_plain));
  CHECK(vals(gx) == vals(x0.grad()));
  CHECK(vals(gq) == vals(wq.grad()));
  CHECK(vals(gk) == vals(wk.grad()));
}

TEST_CASE("autocast cache: views of one storage are told apart by their geometry") {
  Tensor w = param({4, 3}, 31);
  Tensor x = randn({6, 4}, 32);
  AutocastGuard ac;
  Tensor top = x.narrow(0, 0, 3), bottom = x.narrow(0, 3, 3), cols = x.narrow(0, 0, 4).t().narrow(0, 0, 3);
  Tensor a = matmul(top, w), b = matmul(bottom, w), c = matmul(top, w);
  CHECK(vals(a) == vals(matmul(top.to(DType::bf16), w.to(DType::bf16))));
  CHECK(vals(b) == vals(matmul(bottom.to(DType::bf16), w.to(DType::bf16))));
  CHECK(vals(c) == vals(a));
  Tensor wt = param({4, 2}, 33);
  CHECK(vals(matmul(cols, wt)) == vals(matmul(cols.to(DType::bf16), wt.to(DType::bf16))));
}

TEST_CASE("autocast cache: an in-place write invalidates the copies of activations and parameters") {
  Tensor w = param({4, 3}, 41);
  Tensor x = randn({2, 4}, 42), other = randn({2, 4}, 43), w_new = randn({4, 3}, 44);
  AutocastGuard ac;
  Tensor before = matmul(x, w);  // holds x's copy
  assign_(x, other);             // x needs no grad: writable, and its cached copy is now stale
  CHECK(vals(matmul(x, w)) == vals(matmul(other.to(DType::bf16), w.to(DType::bf16))));
  {
    NoGradGuard ng;
    assign_(w, w_new);  // a parameter written in place inside the scope
  }
  CHECK(vals(matmul(x, w)) == vals(matmul(other.to(DType::bf16), w_new.to(DType::bf16))));
  const int64_t c0 = conversions();
  {
    NoGradGuard ng;
    fill_(w, 0.5);
  }
  Tensor after = matmul(x, w);
  CHECK(conversions() - c0 == 2);  // both again
  CHECK(vals(after) == vals(matmul(other.to(DType::bf16), w.to(DType::bf16))));
  CHECK(vals(after) != vals(before));
}
