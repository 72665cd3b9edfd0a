// The CUDA backend: every kernel against the CPU backend (bit for bit where both compute the same
// IEEE operations in the same order, else f32 rtol 1e-4 / f64 rtol 1e-10 relative to the
// tensor's scale), forward and backward through the ops, and the caching allocator.
// Without a usable CUDA device (or in a build without CUDA) the executable prints why and exits
// with 77, which ctest reports as skipped.
//
// Each op's parity cases are registered under its name in the op table (PARITY_CASE(op, ...)).
// Before anything runs, with or without a GPU, the registry is compared with the table: every op
// with a Backend kernel needs a case, every case needs a table op, else the suite fails
// (MG_CUDA_PARITY_REGISTRY_ONLY=1 runs only that check: ctest's test_cuda_parity_registry).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "core/autocast.h"
#include "core/backend.h"
#include "core/determinism.h"
#include "core/device_collectives.h"
#include "experiments/lm_run.h"
#include "nn/lm.h"
#include "nn/optim.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/dropout.h"
#include "ops/embedding.h"
#include "ops/masked_mix.h"
#include "ops/norm.h"
#include "ops/op_table.h"
#include "ops/rope.h"
#include "ops/softmax.h"
#include "ops/tril.h"
#include "tests/lm_train_step.h"
#include "tests/model_configs.h"
#include "tests/test_helpers.h"
#ifdef MG_WITH_CUDA
#include "cuda/cuda_allocator.h"
#include "cuda/cuda_backend.h"
#endif

using namespace mg;

namespace {

// The ops under which parity cases registered (one entry per case), in file order.
std::vector<std::string>& parity_registry() {
  static std::vector<std::string> ops;
  return ops;
}
struct ParityRegistration {
  explicit ParityRegistration(const char* op) { parity_registry().emplace_back(op); }
};

// What is wrong with the registry against the op table, one line each.
std::vector<std::string> parity_registry_problems() {
  const std::vector<std::string>& reg = parity_registry();
  std::vector<std::string> problems;
  for (const OpInfo& op : kOpTable)
    if (!op_field_words(op.kernels).empty() && std::find(reg.begin(), reg.end(), op.name) == reg.end())
      problems.push_back(std::string("op '") + op.name + "' calls Backend kernels (" + op.kernels +
                         ") but tests/test_cuda.cpp registers no PARITY_CASE(" + op.name + ", ...)");
  for (const std::string& name : reg)
    if (find_op(name) == nullptr)
      problems.push_back("PARITY_CASE(" + name + ", ...) is registered, but '" + name +
                         "' is not an op of ops/op_table.def");
  return problems;
}

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

TensorOptions on(Device d, DType dt = DType::f32) { return TensorOptions{dt, d, false}; }

std::vector<double> values(const Tensor& t) {
  std::vector<double> r;
  switch (t.dtype()) {
    case DType::f32: for (float v : t.to_vector<float>()) r.push_back(v); break;
    case DType::f64: r = t.to_vector<double>(); break;
    case DType::i32: for (int32_t v : t.to_vector<int32_t>()) r.push_back(v); break;
    case DType::bf16: for (bf16 v : t.to_vector<bf16>()) r.push_back(float(v)); break;
  }
  return r;
}

std::vector<unsigned char> bytes(const Tensor& t) {
  Tensor h = t.to(kCPU).contiguous();
  std::vector<unsigned char> b(size_t(h.numel()) * dtype_size(h.dtype()));
  if (!b.empty()) std::memcpy(b.data(), h.raw_data(), b.size());
  return b;
}

double default_rtol(DType dt) { return dt == DType::f64 ? 1e-10 : 1e-4; }

// |got - want| <= rtol (|want| + max|want|) + atol: relative to each element and to the tensor's
// scale, so values near zero in a tensor of large ones are not held to an impossible standard.
// atol covers tensors that are zero up to rounding residue (whose scale is the residue itself).
void check_close(const Tensor& got, const Tensor& want, double rtol, const std::string& what, double atol = 0) {
  INFO(what);
  REQUIRE(got.defined());
  REQUIRE(want.defined());
  REQUIRE(got.shape() == want.shape());
  CHECK(got.dtype() == want.dtype());
  const std::vector<double> g = values(got), w = values(want);
  double scale = 0;
  for (double v : w) scale = std::max(scale, std::abs(v));
  int64_t bad = 0, first = -1;
  for (size_t i = 0; i < g.size(); ++i) {
    const bool both_nan = std::isnan(g[i]) && std::isnan(w[i]);
    if (!both_nan && !(std::abs(g[i] - w[i]) <= rtol * (std::abs(w[i]) + scale) + atol)) {
      if (first < 0) first = int64_t(i);
      ++bad;
    }
  }
  INFO(bad << " of " << g.size() << " elements differ; first at " << first << ": got "
            << (first >= 0 ? g[size_t(first)] : 0.0) << ", want " << (first >= 0 ? w[size_t(first)] : 0.0));
  CHECK(bad == 0);
}

void check_same_bits(const Tensor& got, const Tensor& want, const std::string& what) {
  INFO(what);
  REQUIRE(got.shape() == want.shape());
  REQUIRE(got.dtype() == want.dtype());
  const auto g = bytes(got), w = bytes(want);
  const size_t es = dtype_size(got.dtype());
  // NaN payloads are not compared: the GPU's f32 <-> f64 conversions return the canonical NaN.
  std::vector<double> gv, wv;
  if (is_floating(got.dtype())) gv = values(got), wv = values(want);
  int64_t bad = 0, first = -1;
  for (size_t i = 0; i < g.size(); i += es)
    if (std::memcmp(&g[i], &w[i], es) != 0 && !(!gv.empty() && std::isnan(gv[i / es]) && std::isnan(wv[i / es]))) {
      if (first < 0) first = int64_t(i / es);
      ++bad;
    }
  INFO(bad << " elements differ; first at " << first);
  CHECK(bad == 0);
}

// Copies of the CPU inputs on each device, as leaves; floating ones that require grad keep doing so.
std::vector<Tensor> leaves_on(const std::vector<Tensor>& in, Device d) {
  std::vector<Tensor> out;
  for (const Tensor& t : in) {
    Tensor c = t.to(d).detach();
    if (t.requires_grad()) c.set_requires_grad(true);
    out.push_back(c);
  }
  return out;
}

// f on CPU and on CUDA from the same inputs: outputs, then the gradients of every input that
// requires grad for one random cotangent, must agree.
void check_op_parity(const std::string& name, const Fn& f, const std::vector<Tensor>& cpu_inputs, double rtol = -1,
                     double atol = 0) {
  std::vector<Tensor> a = leaves_on(cpu_inputs, kCPU), b = leaves_on(cpu_inputs, kCUDA);
  Tensor ya = f(a), yb = f(b);
  REQUIRE(yb.device() == kCUDA);
  const double tol = rtol > 0 ? rtol : default_rtol(ya.dtype());
  check_close(yb, ya, tol, name + " forward", atol);
  if (!ya.requires_grad()) return;
  Tensor v = randn(ya.shape(), 777, on(kCPU, ya.dtype()));
  ya.backward(v);
  yb.backward(v.to(kCUDA));
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].requires_grad()) continue;
    REQUIRE(b[i].grad().defined());
    check_close(b[i].grad(), a[i].grad(), tol, name + " gradient of input " + std::to_string(i), atol);
  }
}

Tensor leaf(const Shape& s, uint64_t seed, DType dt = DType::f32) {
  Tensor t = randn(s, seed, on(kCPU, dt));
  t.set_requires_grad(true);
  return t;
}

}  // namespace

// PARITY_CASE(op, "what") { body }: a test named "parity <op>: <what>" registered under `op`, a
// name of ops/op_table.def (an op may have several).
#define MG_PARITY_CAT2(a, b) a##b
#define MG_PARITY_CAT(a, b) MG_PARITY_CAT2(a, b)
#define PARITY_CASE(op, title)                                                        \
  static const ParityRegistration MG_PARITY_CAT(parity_registration_, __LINE__)(#op); \
  TEST_CASE("parity " #op ": " title)

TEST_CASE("op table: every op with a Backend kernel has a CUDA parity case") {
  for (const std::string& p : parity_registry_problems()) FAIL_CHECK(p);
}

PARITY_CASE(inplace, "fill: every dtype, contiguous and strided destinations, same bits as the CPU") {
  for (DType dt : {DType::f32, DType::f64, DType::i32, DType::bf16}) {
    for (double v : {1.3, -7.0, 0.0, 1e30}) {
      if (dt == DType::i32 && std::abs(v) > 1e9) continue;
      check_same_bits(full({3, 70}, v, on(kCUDA, dt)), full({3, 70}, v, on(kCPU, dt)),
                      std::string("fill ") + dtype_name(dt) + " " + std::to_string(v));
    }
    // Every other column of a [5, 12] tensor, and a transposed view.
    Tensor c = zeros({5, 12}, on(kCPU, dt)), g = zeros({5, 12}, on(kCUDA, dt));
    backend_for(kCPU).fill(c.slice(1, 0, 12, 2), 2.5);
    backend_for(kCUDA).fill(g.slice(1, 0, 12, 2), 2.5);
    backend_for(kCPU).fill(c.t().slice(0, 1, 12, 4), -1.0);
    backend_for(kCUDA).fill(g.t().slice(0, 1, 12, 4), -1.0);
    check_same_bits(g, c, std::string("strided fill ") + dtype_name(dt));
  }
}

PARITY_CASE(views, "copy: host round trip, strided layouts and dtype casts match the CPU bit for bit") {
  Tensor x = randn({37, 53}, 1);
  check_same_bits(x.to(kCUDA).to(kCPU), x, "host -> device -> host");

  Tensor y = randn({5, 7, 9}, 2, on(kCPU, DType::f64));
  Tensor yg = y.to(kCUDA);
  check_same_bits(yg.permute({2, 0, 1}).contiguous(), y.permute({2, 0, 1}).contiguous(), "permuted copy");
  check_same_bits(yg.slice(2, 1, 9, 3).contiguous(), y.slice(2, 1, 9, 3).contiguous(), "stepped slice copy");
  check_same_bits(yg.unsqueeze(0).expand({3, 5, 7, 9}).contiguous(), y.unsqueeze(0).expand({3, 5, 7, 9}).contiguous(),
                  "broadcast copy");
  // A strided destination: copy into every other row of a wider tensor.
  Tensor dc = zeros({10, 7, 9}, on(kCPU, DType::f64)), dg = zeros({10, 7, 9}, on(kCUDA, DType::f64));
  backend_for(kCPU).copy(y, dc.slice(0, 0, 10, 2));
  backend_for(kCUDA).copy(yg, dg.slice(0, 0, 10, 2));
  check_same_bits(dg, dc, "copy into a strided destination");

  // Casts between every pair of dtypes, on values that exercise bf16's round-to-nearest-even
  // (exact ties both ways, just above/below a tie), signed zero, infinities, NaN and subnormals.
  const float tie_even = 1.0f + 1.0f / 256, tie_odd = 1.0f + 3.0f / 256;
  std::vector<float> special = {0.0f, -0.0f, 1.0f, -2.5f, tie_even, tie_odd, std::nextafter(tie_even, 2.0f),
                                std::nextafter(tie_odd, 0.0f), 3.14159265f, -1e-40f, 6.5e4f, 3.3e38f,
                                std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                                std::numeric_limits<float>::quiet_NaN(), 123456.789f, -0.3333333f};
  std::vector<float> finite_ints = {0.0f, -0.0f, 1.0f, -2.5f, 2.5f, 7.99f, -7.99f, 123456.0f, -1e6f, 65535.0f};
  for (DType from : {DType::f32, DType::f64, DType::i32, DType::bf16}) {
    for (DType to : {DType::f32, DType::f64, DType::i32, DType::bf16}) {
      const bool ints = from == DType::i32 || to == DType::i32;  // float -> int of NaN/inf is undefined
      Tensor src = from_vector(ints ? finite_ints : special, on(kCPU, DType::f32));
      if (from != DType::f32) src = src.to(from);
      const std::string what = std::string("cast ") + dtype_name(from) + " -> " + dtype_name(to);
      check_same_bits(src.to(kCUDA).to(to), src.to(to), what);
      // The same cast from a transposed source.
      Tensor m = randn({6, 11}, 3).to(from == DType::i32 ? DType::f32 : from);
      if (from == DType::i32) m = mul(m, 1000.0).to(DType::i32);
      check_same_bits(m.to(kCUDA).t().to(to), m.t().to(to), what + " (transposed source)");
    }
  }
}

TEST_CASE("random: rand, randn, normal, uniform and randint draw the CPU's exact bits") {
  // Normals too: Box-Muller runs on core/repro_math.h, whose log/sin/cos are the same IEEE
  // operations in the same order on host and device.
  for (uint64_t seed : {0ull, 42ull, 0x9e3779b97f4a7c15ull}) {
    for (Shape s : {Shape{1}, Shape{3}, Shape{1001, 3}, Shape{4, 257, 33}}) {
      const std::string what = std::to_string(seed) + " " + shape_str(s);
      for (DType dt : {DType::f32, DType::f64}) {
        check_same_bits(rand(s, seed, on(kCUDA, dt)), rand(s, seed, on(kCPU, dt)), "rand " + what + " " + dtype_name(dt));
        check_same_bits(randn(s, seed, on(kCUDA, dt)), randn(s, seed, on(kCPU, dt)), "randn " + what + " " + dtype_name(dt));
      }
      check_same_bits(randint(-5, 1000, s, seed, on(kCUDA, DType::i32)), randint(-5, 1000, s, seed, on(kCPU, DType::i32)),
                      "randint " + what);
    }
  }
  for (DType dt : {DType::f32, DType::f64}) {
    Generator gc(7), gg(7);
    (void)rand({5}, gc, on(kCPU, dt));
    (void)rand({5}, gg, on(kCUDA, dt));
    check_same_bits(uniform({77, 13}, -3.0, 5.0, gg, on(kCUDA, dt)), uniform({77, 13}, -3.0, 5.0, gc, on(kCPU, dt)),
                    std::string("uniform from a generator's second offset ") + dtype_name(dt));
    check_same_bits(normal({100003}, 0.5, 2.0, gg, on(kCUDA, dt)), normal({100003}, 0.5, 2.0, gc, on(kCPU, dt)),
                    std::string("normal(0.5, 2) from a generator's third offset ") + dtype_name(dt));
  }
}

PARITY_CASE(elementwise, "unary ops on strided inputs match the CPU") {
  struct U { UnaryOp op; const char* name; double alpha; bool positive; };
  const std::vector<U> ops = {{UnaryOp::neg, "neg", 0, false},        {UnaryOp::exp, "exp", 0, false},
                              {UnaryOp::log, "log", 0, true},         {UnaryOp::sqrt, "sqrt", 0, true},
                              {UnaryOp::rsqrt, "rsqrt", 0, true},     {UnaryOp::abs, "abs", 0, false},
                              {UnaryOp::tanh, "tanh", 0, false},      {UnaryOp::sign, "sign", 0, false},
                              {UnaryOp::pow_scalar, "pow3", 3, false}, {UnaryOp::pow_scalar, "pow-1.5", -1.5, true},
                              {UnaryOp::add_scalar, "add", 2.5, false}, {UnaryOp::mul_scalar, "mul", -1.5, false},
                              {UnaryOp::rsub_scalar, "rsub", 0.25, false}};
  for (DType dt : {DType::f32, DType::f64}) {
    for (const U& u : ops) {
      Tensor x = randn({9, 33}, 5, on(kCPU, dt));
      if (u.positive) x = add(abs(x), 0.1);
      Tensor xc = x.t(), xg = x.to(kCUDA).t();  // non-contiguous on both sides
      Tensor oc = Tensor::empty({33, 9}, on(kCPU, dt)), og = Tensor::empty({33, 9}, on(kCUDA, dt));
      backend_for(kCPU).unary(u.op, xc, oc, u.alpha);
      backend_for(kCUDA).unary(u.op, xg, og, u.alpha);
      // libm and CUDA's math functions round differently in the last bits: a few ulps.
      check_close(og, oc, dt == DType::f32 ? 1e-6 : 1e-14, std::string("unary ") + u.name + " " + dtype_name(dt));
    }
  }
}

PARITY_CASE(elementwise, "binary ops with broadcasting and strided operands: same bits as the CPU") {
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor a = randn({4, 1, 6}, 1, on(kCPU, dt)), b = randn({5, 1}, 2, on(kCPU, dt));
    Tensor at = randn({6, 5, 4}, 3, on(kCPU, dt)).permute({2, 1, 0});  // [4, 5, 6], non-contiguous
    Tensor b2 = add(abs(b), 0.5);
    for (BinaryOp op : {BinaryOp::add, BinaryOp::sub, BinaryOp::mul, BinaryOp::div, BinaryOp::eq, BinaryOp::maximum}) {
      for (int variant = 0; variant < 2; ++variant) {
        Tensor x = variant == 0 ? a : at, y = op == BinaryOp::div ? b2 : b;
        if (op == BinaryOp::eq) y = x.slice(1, 0, 1);  // broadcast against itself: some equal entries
        const Shape s = broadcast_shapes(x.shape(), y.shape(), "test");
        auto bview = [&](const Tensor& t) {
          Shape st(s.size(), 0);
          const size_t k = t.shape().size();
          for (size_t i = 0; i < k; ++i)
            st[s.size() - k + i] = t.shape()[i] == 1 && s[s.size() - k + i] != 1 ? 0 : t.strides()[i];
          return make_view(t, s, st, t.offset());
        };
        Tensor oc = Tensor::empty(s, on(kCPU, dt)), og = Tensor::empty(s, on(kCUDA, dt));
        Tensor xg = x.to(kCUDA), yg = y.to(kCUDA);
        if (variant == 1) xg = x.permute({2, 1, 0}).contiguous().to(kCUDA).permute({2, 1, 0});
        if (op == BinaryOp::eq) yg = xg.slice(1, 0, 1);
        backend_for(kCPU).binary(op, bview(x), bview(y), oc);
        backend_for(kCUDA).binary(op, bview(xg), bview(yg), og);
        check_same_bits(og, oc, std::string("binary op ") + std::to_string(int(op)) + " variant " +
                                    std::to_string(variant) + " " + dtype_name(dt));
      }
    }
  }
}

PARITY_CASE(reduce, "row reductions: short, long and single rows, NaN propagation, deterministic") {
  for (DType dt : {DType::f32, DType::f64}) {
    for (int64_t n : {1, 5, 32, 33, 255, 256, 257, 1000, 5000}) {
      for (int64_t rows : {1, 3, 70}) {
        Tensor x = randn({rows, n}, uint64_t(n * 100 + rows), on(kCPU, dt));
        Tensor xg = x.to(kCUDA);
        const std::string what = std::string(dtype_name(dt)) + " rows=" + std::to_string(rows) + " n=" + std::to_string(n);
        check_close(sum(xg, {1}), sum(x, {1}), dt == DType::f32 ? 1e-6 : 1e-13, "sum " + what);
        check_same_bits(max(xg, {1}), max(x, {1}), "max " + what);
      }
    }
    // One long row takes the two-phase path; sums over another dim go through a transpose.
    for (int64_t n : {65535, 65536, 200001}) {
      Tensor x = randn({n}, uint64_t(n), on(kCPU, dt));
      Tensor sg = sum(x.to(kCUDA));
      check_close(sg, sum(x), dt == DType::f32 ? 1e-6 : 1e-13, "full sum n=" + std::to_string(n));
      check_same_bits(sum(x.to(kCUDA)), sg, "full sum is reproducible");
    }
    Tensor m = randn({6, 40, 7}, 4, on(kCPU, dt));
    check_close(sum(m.to(kCUDA), {0, 2}), sum(m, {0, 2}), dt == DType::f32 ? 1e-6 : 1e-13, "sum over dims 0, 2");
    check_same_bits(max(m.to(kCUDA), {1}), max(m, {1}), "max over dim 1");
  }
  std::vector<float> v(600, 1.0f);
  v[17] = std::numeric_limits<float>::quiet_NaN();
  v[300 + 299] = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> mx = max(from_vector(v, {2, 300}, on(kCUDA)), {1}).to_vector<float>();
  CHECK(std::isnan(mx[0]));
  CHECK(std::isnan(mx[1]));
}

PARITY_CASE(matmul, "2-D, batched, broadcast, transposed, vectors; f32 stays out of TF32") {
  struct Case { Shape a, b; bool ta, tb; };
  const std::vector<Case> cases = {{{33, 17}, {17, 29}, false, false},   {{3, 33, 17}, {3, 17, 29}, false, false},
                                   {{3, 33, 17}, {17, 29}, false, false}, {{33, 17}, {4, 17, 29}, false, false},
                                   {{2, 1, 8, 5}, {3, 5, 6}, false, false}, {{33, 17}, {17, 29}, true, false},
                                   {{33, 17}, {17, 29}, false, true},     {{3, 33, 17}, {3, 17, 29}, true, true},
                                   {{17}, {17, 29}, false, false},        {{33, 17}, {17}, false, false},
                                   {{1, 1}, {1, 1}, false, false},        {{256, 512}, {512, 256}, false, false}};
  for (DType dt : {DType::f32, DType::f64}) {
    for (const Case& c : cases) {
      // A transposed operand is stored transposed and viewed back, so the GEMM sees a transpose flag.
      auto make = [&](Shape s, bool t, uint64_t seed) {
        if (!t) return leaf(s, seed, dt);
        std::swap(s[s.size() - 1], s[s.size() - 2]);
        return leaf(s, seed, dt);
      };
      Tensor a = make(c.a, c.ta, 1), b = make(c.b, c.tb, 2);
      const bool ta = c.ta, tb = c.tb;
      check_op_parity("matmul " + shape_str(c.a) + " x " + shape_str(c.b) + (ta ? " A^T" : "") + (tb ? " B^T" : "") +
                          " " + dtype_name(dt),
                      [ta, tb](const std::vector<Tensor>& in) {
                        return matmul(ta ? in[0].transpose(-1, -2) : in[0], tb ? in[1].transpose(-1, -2) : in[1]);
                      },
                      {a, b});
    }
  }
  // The backend's GEMM directly: alpha, beta, a broadcast (stride 0) operand, padded leading dims.
  for (DType dt : {DType::f32, DType::f64}) {
    const int64_t M = 7, N = 9, K = 5, batch = 3, lda = 8, ldb = 12, ldc = 10;
    Tensor A = randn({batch, M, lda}, 1, on(kCPU, dt)), B = randn({K, ldb}, 2, on(kCPU, dt));
    Tensor C = randn({batch, M, ldc}, 3, on(kCPU, dt));
    Tensor Ag = A.to(kCUDA), Bg = B.to(kCUDA), Cg = C.to(kCUDA);
    GemmArgs args{.dtype = dt, .M = M, .N = N, .K = K, .alpha = 0.5,
                  .A = A.raw_data(), .lda = lda, .stride_a = M * lda, .B = B.raw_data(), .ldb = ldb,
                  .beta = 2.0, .C = C.raw_data(), .ldc = ldc, .stride_c = M * ldc, .batch = batch};
    backend_for(kCPU).gemm(args);
    args.A = Ag.raw_data(), args.B = Bg.raw_data(), args.C = Cg.raw_data();
    backend_for(kCUDA).gemm(args);
    check_close(Cg, C, default_rtol(dt), std::string("gemm alpha/beta/stride 0/padded ") + dtype_name(dt));
  }
#ifdef MG_WITH_CUDA
  // TF32 keeps 10 mantissa bits: a 512-deep product is then off by ~1e-3 of its scale, true f32
  // by ~1e-6. The default must be true f32, and allowing TF32 must take effect.
  Tensor a = randn({256, 512}, 5), b = randn({512, 256}, 6);
  const std::vector<double> ref = values(matmul(a, b));
  auto rel_err = [&](const Tensor& t) {
    const std::vector<double> v = values(t);
    double err = 0, scale = 0;
    for (size_t i = 0; i < v.size(); ++i) {
      err = std::max(err, std::abs(v[i] - ref[i]));
      scale = std::max(scale, std::abs(ref[i]));
    }
    return err / scale;
  };
  CHECK(!cuda::allow_tf32());
  const double err_f32 = rel_err(matmul(a.to(kCUDA), b.to(kCUDA)));
  cuda::set_allow_tf32(true);
  const double err_tf32 = rel_err(matmul(a.to(kCUDA), b.to(kCUDA)));
  cuda::set_allow_tf32(false);
  MESSAGE("256x512x256 matmul, max error / max value: f32 ", err_f32, ", TF32 ", err_tf32);
  CHECK(err_f32 < 1e-5);
  CHECK(err_tf32 > 1e-5);
  CHECK(err_tf32 < 1e-2);
#endif
}

PARITY_CASE(shape_ops, "index_select and index_add: repeated ids, every dim, every dtype, CPU bits") {
  const std::vector<int32_t> ids = {4, 0, 4, 4, 2, 1, 0};
  Tensor idx = from_vector(ids), idxg = idx.to(kCUDA);
  for (int64_t dim : {0, 1, 2}) {
    Shape s = {5, 6, 7};
    for (DType dt : {DType::f32, DType::f64, DType::i32, DType::bf16}) {
      Tensor x = randn(s, uint64_t(dim), on(kCPU, DType::f32));
      x = dt == DType::i32 ? mul(x, 100.0).to(DType::i32) : x.to(dt);
      check_same_bits(index_select(x.to(kCUDA), dim, idxg), index_select(x, dim, idx),
                      std::string("index_select dim ") + std::to_string(dim) + " " + dtype_name(dt));
    }
    for (DType dt : {DType::f32, DType::f64}) {
      Shape so = s;
      so[size_t(dim)] = int64_t(ids.size());
      Tensor src = randn(so, 10 + uint64_t(dim), on(kCPU, dt));
      Tensor oc = randn(s, 20, on(kCPU, dt)), og = oc.to(kCUDA);
      backend_for(kCPU).index_add(oc, dim, idx, src);
      backend_for(kCUDA).index_add(og, dim, idxg, src.to(kCUDA));
      check_same_bits(og, oc, std::string("index_add dim ") + std::to_string(dim) + " " + dtype_name(dt));
    }
  }
  // Through the op: the backward of index_select scatter-adds repeated ids.
  check_op_parity("index_select", [&](const std::vector<Tensor>& in) { return index_select(in[0], 1, in[1]); },
                  {leaf({5, 6, 7}, 1), from_vector(std::vector<int32_t>{5, 5, 0, 3, 5})});
  // A bad id throws, naming it.
  Tensor bad = from_vector(std::vector<int32_t>{1, 5}).to(kCUDA);
  CHECK_THROWS_WITH_AS(index_select(randn({5, 3}, 1, on(kCUDA)), 0, bad), doctest::Contains("out of range"), Error);
}

PARITY_CASE(embedding, "forward and the scatter-add backward of repeated ids") {
  std::vector<int32_t> tok(200);
  for (size_t i = 0; i < tok.size(); ++i) tok[i] = int32_t((i * 7919) % 37 % 13);
  check_op_parity("embedding", [](const std::vector<Tensor>& in) { return embedding(in[0], in[1]); },
                  {leaf({50, 16}, 2), from_vector(tok, {8, 25})});
}

TEST_CASE("gradients through a chain of ops agree between CUDA and CPU") {
  for (DType dt : {DType::f32, DType::f64}) {
    check_op_parity(std::string("chain ") + dtype_name(dt),
                    [](const std::vector<Tensor>& in) {
                      Tensor h = tanh(matmul(in[0], in[1].t()) + in[2]);           // broadcast bias
                      Tensor z = exp(neg(square(h))) * in[3].transpose(0, 1);      // non-contiguous factor
                      return sum(z / (abs(h) + 1.0), {0}) + max(h, {0}) * mean(h); // reductions
                    },
                    {leaf({6, 4}, 1, dt), leaf({5, 4}, 2, dt), leaf({5}, 3, dt), leaf({5, 6}, 4, dt)});
  }
}

PARITY_CASE(gelu, "erf and tanh forms, forward and backward") {
  for (DType dt : {DType::f32, DType::f64}) {
    const std::string d = dtype_name(dt);
    Tensor x = leaf({13, 35}, 1, dt);
    check_op_parity("gelu " + d, [](const std::vector<Tensor>& in) { return gelu(in[0].t()); }, {x});
    check_op_parity("gelu tanh " + d, [](const std::vector<Tensor>& in) { return gelu(in[0], true); }, {x});
  }
}

TEST_CASE("autocast's residual add (f32 + bf16 into f32, the bf16 operand widened on load) agrees with the CPU") {
  Tensor x = randn({4, 9, 16}, 1), h = randn({4, 9, 16}, 2).to(DType::bf16), b = randn({16}, 3).to(DType::bf16);
  for (Tensor* t : {&x, &h, &b}) t->set_requires_grad(true);
  check_op_parity("add f32 + bf16",
                  [](const std::vector<Tensor>& in) {
                    AutocastGuard ac;
                    return add(add(in[0], in[1].transpose(0, 1)), in[2]);
                  },
                  {x, h.transpose(0, 1).contiguous(), b});
}

TEST_CASE("cross_entropy on bf16 logits agrees with the CPU (f32 loss, bf16 gradient)") {
  Tensor x = randn({13, 70}, 1).to(DType::bf16);
  x.set_requires_grad(true);
  std::vector<int32_t> tv;
  for (int i = 0; i < 13; ++i) tv.push_back(i == 4 ? -100 : (i * 31) % 70);
  Tensor t = from_vector(tv);
  check_op_parity("cross_entropy bf16",
                  [&](const std::vector<Tensor>& in) { return cross_entropy(in[0], t.to(in[0].device()), -100); }, {x},
                  1.0 / 128);
}

TEST_CASE("matmul_bias (the GEMM epilogue: bias, bf16 output) agrees with the CPU") {
  for (DType dt : {DType::f32, DType::f64}) {
    check_op_parity(std::string("matmul_bias ") + dtype_name(dt),
                    [](const std::vector<Tensor>& in) { return matmul_bias(in[0], in[1].t(), in[2]); },
                    {leaf({2, 9, 16}, 1, dt), leaf({24, 16}, 2, dt), leaf({24}, 3, dt)});
  }
  // bf16 operands with the f32 bias, D rounded in the epilogue: one bf16 ulp at most.
  std::vector<Tensor> in = {randn({2, 9, 16}, 4).to(DType::bf16), randn({16, 24}, 5).to(DType::bf16), randn({24}, 6)};
  for (Tensor& t : in) t.set_requires_grad(true);
  check_op_parity("matmul_bias bf16", [](const std::vector<Tensor>& x) { return matmul_bias(x[0], x[1], x[2]); }, in,
                  1.0 / 128);
}

PARITY_CASE(bias_gelu, "erf and tanh forms, forward and backward, f32 f64 and bf16") {
  for (DType dt : {DType::f32, DType::f64}) {
    const std::string d = dtype_name(dt);
    Tensor x = leaf({3, 13, 35}, 1, dt), b = leaf({35}, 2, dt);
    check_op_parity("bias_gelu " + d, [](const std::vector<Tensor>& in) { return bias_gelu(in[0], in[1]); }, {x, b});
    check_op_parity("bias_gelu tanh " + d,
                    [](const std::vector<Tensor>& in) { return bias_gelu(in[0].transpose(0, 1), in[1], true); }, {x, b});
  }
}

TEST_CASE("bf16 activations (bias_gelu, gelu, silu, relu, swiglu) agree with the CPU, forward and backward") {
  // Both backends widen bf16 exactly, compute in f32 and round once; the f32 math differs (the
  // CPU's polynomial erfc and exp against CUDA's libdevice), by a few f32 ulp, which moves a
  // rounding to the neighbouring bf16 value only in rare ties: one bf16 ulp (2^-8 relative).
  using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
  const std::vector<std::pair<std::string, Fn>> cases = {
      {"bias_gelu", [](const std::vector<Tensor>& in) { return bias_gelu(in[0], in[1]); }},
      {"gelu", [](const std::vector<Tensor>& in) { return gelu(in[0]); }},
      {"gelu tanh", [](const std::vector<Tensor>& in) { return gelu(in[0], true); }},
      {"silu", [](const std::vector<Tensor>& in) { return silu(in[0]); }},
      {"relu", [](const std::vector<Tensor>& in) { return relu(in[0]); }},
      {"swiglu", [](const std::vector<Tensor>& in) { return swiglu(in[0], in[2]); }},
  };
  for (const auto& c : cases) {
    std::vector<Tensor> cpu;
    for (auto [shape, seed] : std::vector<std::pair<Shape, uint64_t>>{{{6, 37}, 1}, {{37}, 2}, {{6, 37}, 3}}) {
      cpu.push_back(randn(shape, seed).to(DType::bf16));
      cpu.back().set_requires_grad(true);
    }
    check_op_parity("bf16 " + c.first, c.second, cpu, 1.0 / 128);
  }
}

TEST_CASE("activations at the edges agree with the CPU element by element: NaN, infinities, GELU's far tail") {
  // check_close holds elements to the tensor's scale; here every element is held to its own value,
  // so a GELU tail computed as 1 + erf(x) (which cancels to 0 below x = -6 in f32) or a ReLU that
  // turns NaN into 0 fails. The tails stay above f32's normal range: erf GELU to x = -12, the tanh
  // form (whose exponent is cubic) to x = -8.
  const float kInf = std::numeric_limits<float>::infinity(), kNaN = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> tail = {-12, -10, -8, -6, -5, -3, -1, -0.5f, 0, 0.5f, 1, 3, 8, 30, 1e20f, -1e20f, kInf,
                                   -kInf, kNaN};
  const std::vector<float> tail_tanh = {-8, -6, -5, -3, -1, 0, 1, 3, 8, 31, 1e20f, -1e20f, kInf, -kInf, kNaN};
  // skip: inputs whose elements are not compared (the gradient at an infinite input is inf * 0).
  auto elementwise = [](const Tensor& got, const Tensor& want, const std::string& what,
                        const std::vector<float>* skip_inf = nullptr) {
    INFO(what);
    const std::vector<double> g = values(got), w = values(want);
    REQUIRE(g.size() == w.size());
    for (size_t i = 0; i < g.size(); ++i) {
      if (skip_inf && std::isinf((*skip_inf)[i])) continue;
      INFO("element " << i << ": got " << g[i] << ", want " << w[i]);
      if (std::isnan(w[i]) || std::isinf(w[i])) {
        CHECK((std::isnan(g[i]) ? std::isnan(w[i]) : g[i] == w[i]));
      } else {
        // erfc's relative condition number at a = |x| / sqrt 2 is 2 a^2: the f32 rounding of the
        // argument alone moves the tail at x = -12 by up to 144 * 2^-24 = 9e-6, whatever the erfc.
        CHECK(std::abs(g[i] - w[i]) <= 1e-4 * std::abs(w[i]));
      }
    }
  };
  using Fn = Tensor (*)(const Tensor&);
  const std::vector<std::tuple<std::string, Fn, const std::vector<float>*>> cases = {
      {"gelu", [](const Tensor& x) { return gelu(x); }, &tail},
      {"gelu tanh", [](const Tensor& x) { return gelu(x, true); }, &tail_tanh},
      {"relu", [](const Tensor& x) { return relu(x); }, &tail},
  };
  for (const auto& [name, f, xs] : cases) {
    Tensor xc = from_vector(*xs), xg = xc.to(kCUDA);
    xc.set_requires_grad(true);
    xg.set_requires_grad(true);
    Tensor yc = f(xc), yg = f(xg);
    elementwise(yg, yc, name + " forward");
    // A cotangent of ones: the gradient is the derivative itself.
    yc.backward(ones_like(yc));
    yg.backward(ones_like(yg));
    elementwise(xg.grad(), xc.grad(), name + " gradient", xs);
  }
}

PARITY_CASE(silu, "forward and backward") {
  for (DType dt : {DType::f32, DType::f64})
    check_op_parity(std::string("silu ") + dtype_name(dt), [](const std::vector<Tensor>& in) { return silu(in[0]); },
                    {leaf({13, 35}, 1, dt)});
}

PARITY_CASE(relu, "forward and backward") {
  for (DType dt : {DType::f32, DType::f64})
    check_op_parity(std::string("relu ") + dtype_name(dt), [](const std::vector<Tensor>& in) { return relu(in[0]); },
                    {leaf({13, 35}, 1, dt)});
}

PARITY_CASE(swiglu, "forward and backward") {
  for (DType dt : {DType::f32, DType::f64})
    check_op_parity(std::string("swiglu ") + dtype_name(dt),
                    [](const std::vector<Tensor>& in) { return swiglu(in[0], in[1]); },
                    {leaf({13, 35}, 1, dt), leaf({13, 35}, 2, dt)});
}

PARITY_CASE(layer_norm, "forward and backward, with and without affine parameters") {
  for (DType dt : {DType::f32, DType::f64}) {
    for (Shape s : {Shape{1, 1}, Shape{7, 5}, Shape{3, 100, 64}, Shape{300, 513}}) {
      const int64_t D = s.back();
      const std::string what = shape_str(s) + " " + dtype_name(dt);
      Tensor x = leaf(s, 1, dt);
      // An offset so the mean matters.
      Fn shifted = [](const std::vector<Tensor>& in) { return in[0] + 3.0; };
      check_op_parity("layer_norm " + what,
                      [shifted](const std::vector<Tensor>& in) { return layer_norm(shifted(in), in[1], in[2]); },
                      {x, leaf({D}, 2, dt), leaf({D}, 3, dt)});
      check_op_parity("layer_norm no affine " + what,
                      [](const std::vector<Tensor>& in) { return layer_norm(in[0], Tensor(), Tensor()); }, {x});
    }
  }
  // Parameter gradients are reduced without atomics: the same bits every run.
  Tensor x = randn({1000, 96}, 5).to(kCUDA), w = randn({96}, 6).to(kCUDA), b = randn({96}, 7).to(kCUDA);
  std::vector<std::vector<unsigned char>> runs;
  for (int r = 0; r < 2; ++r) {
    Tensor wl = w.detach(), bl = b.detach();
    wl.set_requires_grad(true);
    bl.set_requires_grad(true);
    sum(square(layer_norm(x, wl, bl))).backward();
    runs.push_back(bytes(wl.grad()));
  }
  CHECK(runs[0] == runs[1]);
}

PARITY_CASE(rms_norm, "forward and backward, with and without weight") {
  for (DType dt : {DType::f32, DType::f64}) {
    for (Shape s : {Shape{1, 1}, Shape{7, 5}, Shape{3, 100, 64}, Shape{300, 513}}) {
      const int64_t D = s.back();
      const std::string what = shape_str(s) + " " + dtype_name(dt);
      Tensor x = leaf(s, 1, dt);
      check_op_parity("rms_norm " + what, [](const std::vector<Tensor>& in) { return rms_norm(in[0], in[1]); },
                      {x, leaf({D}, 4, dt)});
      check_op_parity("rms_norm no affine " + what,
                      [](const std::vector<Tensor>& in) { return rms_norm(in[0], Tensor()); }, {x});
    }
  }
}

PARITY_CASE(softmax, "forward and backward, last dim and dim 0") {
  for (DType dt : {DType::f32, DType::f64}) {
    const std::string d = dtype_name(dt);
    for (Shape s : {Shape{1, 1}, Shape{9, 31}, Shape{4, 3, 4096}})
      check_op_parity("softmax " + shape_str(s) + " " + d,
                      [](const std::vector<Tensor>& in) { return softmax(mul(in[0], 4.0)); }, {leaf(s, 1, dt)});
    check_op_parity("softmax over dim 0 " + d, [](const std::vector<Tensor>& in) { return softmax(in[0], 0); },
                    {leaf({17, 6}, 2, dt)});
  }
}

PARITY_CASE(log_softmax, "forward and backward") {
  for (DType dt : {DType::f32, DType::f64})
    for (Shape s : {Shape{1, 1}, Shape{9, 31}, Shape{4, 3, 4096}})
      check_op_parity("log_softmax " + shape_str(s) + " " + dtype_name(dt),
                      [](const std::vector<Tensor>& in) { return log_softmax(mul(in[0], 4.0)); }, {leaf(s, 1, dt)});
}

PARITY_CASE(cross_entropy, "forward and backward, every reduction, ignored rows, a bad target") {
  for (DType dt : {DType::f32, DType::f64}) {
    const std::string d = dtype_name(dt);
    std::vector<int32_t> t(48);
    for (size_t i = 0; i < t.size(); ++i) t[i] = int32_t((i * 37) % 1000);
    t[3] = -100;
    t[20] = -100;
    Tensor targets = from_vector(t, {6, 8});
    Tensor logits = leaf({6, 8, 1000}, 3, dt);
    for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none})
      check_op_parity("cross_entropy reduction " + std::to_string(int(r)) + " " + d,
                      [r](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1], -100, r); },
                      {logits, targets});
  }
  // The kernel itself rejects a bad target (the op checks first, so call the backend).
  Tensor logits = randn({3, 5}, 1).to(kCUDA), loss = Tensor::empty({3}, on(kCUDA)), lse = Tensor::empty({3}, on(kCUDA));
  Tensor bad = from_vector(std::vector<int32_t>{1, 7, -1}).to(kCUDA);
  CHECK_THROWS_WITH_AS(backend_for(kCUDA).cross_entropy_forward(logits, bad, -1, loss, lse),
                       doctest::Contains("target 7 at row 1"), Error);
  // A later kernel still runs: the failure left no error state behind.
  CHECK(sum(ones({10}, on(kCUDA))).item() == 10.0);
}

PARITY_CASE(masked_mix, "masked_token_mix and masked_token_mix_heads, forward and backward") {
  for (DType dt : {DType::f32, DType::f64}) {
    const std::string d = dtype_name(dt);
    check_op_parity("masked_token_mix " + d,
                    [](const std::vector<Tensor>& in) { return masked_token_mix(in[0], in[1], in[2]); },
                    {leaf({2, 9, 6}, 2, dt), leaf({9, 9}, 3, dt), leaf({9}, 4, dt)});
    check_op_parity("masked_token_mix_heads " + d,
                    [](const std::vector<Tensor>& in) { return masked_token_mix_heads(in[0], in[1], in[2]); },
                    {leaf({2, 9, 12}, 5, dt), leaf({3, 9, 9}, 6, dt), leaf({3, 9}, 7, dt)});
    // Fewer output rows than tokens (the expanded mixer's rectangular weight): dx's columns past
    // the last row get nothing from the weight and must come out zero.
    check_op_parity("masked_token_mix R < C " + d,
                    [](const std::vector<Tensor>& in) { return masked_token_mix(in[0], in[1], in[2]); },
                    {leaf({2, 150, 12}, 8, dt), leaf({20, 150}, 9, dt), leaf({20}, 10, dt)});
  }
}

PARITY_CASE(rope, "forward and backward, at offset 0 and 1000") {
  for (DType dt : {DType::f32, DType::f64}) {
    const std::string d = dtype_name(dt);
    check_op_parity("rope " + d, [](const std::vector<Tensor>& in) { return rope(in[0], 10000.0, 0); },
                    {leaf({2, 3, 9, 8}, 8, dt)});
    check_op_parity("rope at offset 1000 " + d,
                    [](const std::vector<Tensor>& in) { return rope(in[0].transpose(1, 2), 500.0, 1000); },
                    {leaf({2, 9, 3, 16}, 9, dt)});
  }
  // bf16 as it is: the CPU rotates in f32, CUDA in f64, each rounding once: one bf16 ulp at most.
  Tensor x = randn({2, 9, 3, 16}, 10).to(DType::bf16);
  x.set_requires_grad(true);
  check_op_parity("rope bf16 at offset 1000",
                  [](const std::vector<Tensor>& in) { return rope(in[0].transpose(1, 2), 500.0, 1000); }, {x},
                  1.0 / 128);
}

PARITY_CASE(dropout, "the CPU's Philox mask bit for bit, forward and backward, transposed input") {
  for (DType dt : {DType::f32, DType::f64}) {
    for (double p : {0.05, 0.1, 0.5}) {
      const std::string what = "dropout p " + std::to_string(p) + " " + dtype_name(dt);
      Tensor x = randn({300, 257}, 1, on(kCPU, dt));  // above the CPU kernel's parallel grain
      check_same_bits(dropout(x.to(kCUDA), p, true, 42, 3), dropout(x, p, true, 42, 3), what);
      check_same_bits(dropout(x.to(kCUDA).t(), p, true, 42, 4), dropout(x.t(), p, true, 42, 4), what + " transposed");
      // The backward masks the upstream gradient with the same draw on both devices.
      std::vector<Tensor> a = leaves_on({leaf({33, 65}, 2, dt)}, kCPU), b = leaves_on({leaf({33, 65}, 2, dt)}, kCUDA);
      Tensor v = randn({65, 33}, 3, on(kCPU, dt));
      dropout(a[0].t(), p, true, 7, 0).backward(v);
      dropout(b[0].t(), p, true, 7, 0).backward(v.to(kCUDA));
      check_same_bits(b[0].grad(), a[0].grad(), what + " gradient");
    }
  }
}

PARITY_CASE(tril, "forward and backward for several diagonals; the kernel on every dtype") {
  for (DType dt : {DType::f32, DType::f64})
    for (int64_t diag : {-1, 0, 2})
      check_op_parity("tril " + std::to_string(diag) + " " + dtype_name(dt),
                      [diag](const std::vector<Tensor>& in) { return tril(in[0], diag); }, {leaf({2, 5, 7}, 1, dt)});
  // The kernel masks any dtype (the op takes floating tensors only).
  for (DType dt : {DType::i32, DType::bf16}) {
    Tensor x = mul(randn({3, 4, 5}, 1), 50.0).to(dt);
    Tensor oc = Tensor::empty(x.shape(), on(kCPU, dt)), og = Tensor::empty(x.shape(), on(kCUDA, dt));
    backend_for(kCPU).tril(x, 1, oc);
    backend_for(kCUDA).tril(x.to(kCUDA), 1, og);
    check_same_bits(og, oc, std::string("tril kernel ") + dtype_name(dt));
  }
}

PARITY_CASE(attention, "forward and backward, causal and not, several key chunks") {
#ifdef MG_WITH_CUDA
  // f32 runs through both kernel forms (tiled: 32-row tiles; row-wise: 128-key chunks); f64 has
  // the row-wise form only.
  struct Form {
    DType dt;
    cuda::AttentionKernel kernel;
    const char* name;
  };
  const std::vector<Form> forms = {{DType::f32, cuda::AttentionKernel::tiled, "f32 tiled"},
                                   {DType::f32, cuda::AttentionKernel::rowwise, "f32 row-wise"},
                                   {DType::f64, cuda::AttentionKernel::automatic, "f64"}};
  for (const Form& f : forms) {
    cuda::set_attention_kernel(f.kernel);
    const DType dt = f.dt;
    const std::string d = f.name;
    // With T = 1 the q and k gradients are zero up to rounding residue (~1e-8 in f32), which
    // differs between the devices: an absolute floor far below the O(1) gradients elsewhere.
    const double atol = dt == DType::f32 ? 1e-6 : 1e-14;
    for (bool causal : {true, false}) {
      // T = 1; T within one tile/chunk; T = 300 spanning ten tiles and three chunks; head dims
      // that are not a multiple of 4 (6) and the largest tiled one (128).
      for (Shape s : {Shape{1, 2, 1, 8}, Shape{2, 3, 37, 16}, Shape{1, 2, 300, 64}, Shape{2, 1, 33, 6},
                      Shape{1, 1, 70, 128}}) {
        const std::string what = shape_str(s) + (causal ? " causal " : " full ") + d;
        check_op_parity("attention " + what,
                        [causal](const std::vector<Tensor>& in) {
                          return scaled_dot_product_attention(in[0], in[1], in[2], causal);
                        },
                        {leaf(s, 1, dt), leaf(s, 2, dt), leaf(s, 3, dt)}, -1, atol);
      }
    }
    // q made by transposing [B, T, H, Dh], and an explicit scale.
    check_op_parity("attention transposed q, scale 0.3 " + d,
                    [](const std::vector<Tensor>& in) {
                      return scaled_dot_product_attention(in[0].transpose(1, 2), in[1], in[2], true, 0.3);
                    },
                    {leaf({2, 19, 3, 8}, 4, dt), leaf({2, 3, 19, 8}, 5, dt), leaf({2, 3, 19, 8}, 6, dt)});
  }
  // bf16 (autocast's q, k, v): CUDA computes in f32 and rounds once; the CPU does too, or, with
  // AVX512_BF16, rounds P and dS to bf16 before their products (within 2^-8 of the terms they sum,
  // tests/test_attention.cpp: measured at under 0.4 of this tolerance against the f32 form).
  cuda::set_attention_kernel(cuda::AttentionKernel::automatic);
  for (bool causal : {true, false}) {
    std::vector<Tensor> in;
    for (uint64_t seed : {10, 11, 12}) {
      in.push_back(randn({2, 3, 70, 16}, seed).to(DType::bf16));
      in.back().set_requires_grad(true);
    }
    check_op_parity(std::string("attention bf16") + (causal ? " causal" : " full"),
                    [causal](const std::vector<Tensor>& x) { return scaled_dot_product_attention(x[0], x[1], x[2], causal); },
                    in, 1.0 / 128, 1e-3);
  }
  // The tiled form refuses what it cannot take, naming why.
  cuda::set_attention_kernel(cuda::AttentionKernel::tiled);
  Tensor x = randn({1, 1, 4, 8}, 1, on(kCUDA, DType::f64));
  CHECK_THROWS_WITH_AS(scaled_dot_product_attention(x, x, x, true), doctest::Contains("head dim <= 128"), Error);
  Tensor wide = randn({1, 1, 4, 160}, 1, on(kCUDA));
  CHECK_THROWS_WITH_AS(scaled_dot_product_attention(wide, wide, wide, true), doctest::Contains("head dim 160"), Error);
  cuda::set_attention_kernel(cuda::AttentionKernel::automatic);
  // automatic takes the row-wise form where the tiled one cannot run.
  check_op_parity("attention head dim 160, automatic",
                  [](const std::vector<Tensor>& in) { return scaled_dot_product_attention(in[0], in[1], in[2], true); },
                  {leaf({1, 2, 40, 160}, 7), leaf({1, 2, 40, 160}, 8), leaf({1, 2, 40, 160}, 9)});
#endif
}

namespace {
// Three steps of optimizer `which` (0 AdamW, 1-3 SGD forms) on each device: the parameters agree.
void check_optimizer_parity(int which) {
  for (DType dt : {DType::f32, DType::f64}) {
    auto run = [&](Device dev) {
      Tensor p = randn({1000}, 1, on(kCPU, dt)).to(dev).detach(), q = randn({7, 3}, 2, on(kCPU, dt)).to(dev).detach();
      p.set_requires_grad(true);
      q.set_requires_grad(true);
      std::unique_ptr<Optimizer> opt;
      if (which == 0) opt = std::make_unique<AdamW>(std::vector<Tensor>{p, q}, AdamWOptions{1e-2, 0.9, 0.99, 1e-8, 0.1});
      if (which == 1) opt = std::make_unique<SGD>(std::vector<Tensor>{p, q}, SGDOptions{0.1, 0.9, 0.2, 0.01, false});
      if (which == 2) opt = std::make_unique<SGD>(std::vector<Tensor>{p, q}, SGDOptions{0.1, 0.9, 0.0, 0.01, true});
      if (which == 3) opt = std::make_unique<SGD>(std::vector<Tensor>{p, q}, SGDOptions{0.1, 0.0, 0.0, 0.0, false});
      for (int step = 0; step < 3; ++step) {
        opt->zero_grad();
        Tensor loss = sum(square(p) * 0.5) + sum(tanh(q)) * double(step + 1);
        loss.backward();
        opt->step();
      }
      return std::vector<Tensor>{p.detach().to(kCPU), q.detach().to(kCPU)};
    };
    std::vector<Tensor> c = run(kCPU), g = run(kCUDA);
    for (size_t i = 0; i < c.size(); ++i)
      check_close(g[i], c[i], default_rtol(dt), "optimizer " + std::to_string(which) + " param " + std::to_string(i) +
                                                    " " + dtype_name(dt));
  }
}
}  // namespace

PARITY_CASE(adamw, "three steps match the CPU") { check_optimizer_parity(0); }

PARITY_CASE(sgd, "three steps with momentum, nesterov and plain match the CPU") {
  for (int which = 1; which < 4; ++which) check_optimizer_parity(which);
  // Weight decay 0 still computes g + 0 * p, as the CPU does: an infinite parameter becomes NaN.
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<Tensor> after;
  for (Device dev : {kCPU, kCUDA}) {
    Tensor p = from_vector(std::vector<float>{1.0f, float(inf), float(-inf), 2.0f}).to(dev).detach();
    p.set_requires_grad(true);
    SGD opt(std::vector<Tensor>{p}, SGDOptions{0.1, 0.0, 0.0, 0.0, false});
    sum(p).backward();
    opt.step();
    after.push_back(p.detach().to(kCPU));
  }
  check_close(after[1], after[0], 1e-6, "sgd with weight decay 0 on infinite parameters");
}

// ---- bf16 autocast, deterministic mode, training parity -----------------------------------------

namespace {

// bf16 results: both devices accumulate the same exact products in f32, in different orders, and
// round once to bf16, so they differ by at most one bf16 ulp (2^-8 relative) in rare ties.
constexpr double kBf16Rtol = 1.0 / 128;

ModelConfig tiny_config(ModelKind kind) { return test::small_model(kind); }

// `steps` AdamW steps of a tiny model on fixed random batches: the loss of every step.
std::vector<double> train_losses(const ModelConfig& c, Device dev, bool bf16, int steps) {
  Generator gen(5);
  auto model = make_model(c, gen, on(dev));
  std::vector<Tensor> params = model->parameters();
  AdamW opt(params, AdamWOptions{3e-3, 0.9, 0.99, 1e-8, 0.01});
  std::vector<double> losses;
  for (int step = 0; step < steps; ++step) {
    Tensor ids = randint(0, int32_t(c.vocab_size), {4, c.n_ctx}, uint64_t(1000 + step % 5)).to(dev);
    losses.push_back(test::lm_train_step(*model, opt, ids, bf16));
  }
  return losses;
}

}  // namespace

TEST_CASE("GEMM without products (K == 0, alpha 0) writes beta * C as the CPU does, zeros over NaN") {
  for (DType dt : {DType::f32, DType::f64}) {
    INFO(dtype_name(dt));
    const int64_t M = 3, N = 5, batch = 2;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (double beta : {0.0, 2.0}) {
      Tensor c0 = beta == 0 ? full({batch, M, N}, nan, on(kCPU, dt)) : randn({batch, M, N}, 11, on(kCPU, dt));
      Tensor cc = c0.clone(), cg = c0.to(kCUDA);
      GemmArgs args{.dtype = dt, .M = M, .N = N, .K = 0, .lda = 1, .ldb = N, .beta = beta,
                    .C = cc.raw_data(), .ldc = N, .stride_c = M * N, .batch = batch};
      backend_for(kCPU).gemm(args);
      args.C = cg.raw_data();
      backend_for(kCUDA).gemm(args);
      check_same_bits(cg, cc, "K == 0, beta " + std::to_string(beta));
    }
    // alpha 0 with NaN operands: nothing of A or B reaches C.
    const int64_t K = 8;
    Tensor a = full({M, K}, nan, on(kCPU, dt)), b = randn({K, N}, 12, on(kCPU, dt));
    Tensor cc = full({M, N}, nan, on(kCPU, dt)), cg = cc.to(kCUDA), ag = a.to(kCUDA), bg = b.to(kCUDA);
    GemmArgs args{.dtype = dt, .M = M, .N = N, .K = K, .alpha = 0.0, .A = a.raw_data(), .lda = K, .B = b.raw_data(),
                  .ldb = N, .C = cc.raw_data(), .ldc = N};
    backend_for(kCPU).gemm(args);
    args.A = ag.raw_data(), args.B = bg.raw_data(), args.C = cg.raw_data();
    backend_for(kCUDA).gemm(args);
    check_same_bits(cg, cc, "alpha 0");
  }
}

TEST_CASE("bias_gelu's fused bias gradient agrees with the CPU: 1, 64 and 201 rows, every dtype") {
  for (DType dt : {DType::f32, DType::f64, DType::bf16}) {
    for (int64_t rows : {1, 64, 201}) {
      const std::string what = std::string("bias_gelu dbias ") + dtype_name(dt) + " rows " + std::to_string(rows);
      Tensor x = randn({rows, 70}, 13).to(dt), b = randn({70}, 14).to(dt);
      x.set_requires_grad(true);
      b.set_requires_grad(true);
      check_op_parity(what, [](const std::vector<Tensor>& in) { return bias_gelu(in[0], in[1]); }, {x, b},
                      dt == DType::bf16 ? 1e-2 : -1);
    }
  }
}

TEST_CASE("bf16 kernels: GEMM (f32 accumulation), casts and gradient addition agree with the CPU") {
  // The GEMM straight from the backends: bf16 operands, f32 result, every transpose, a shared B.
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      const int64_t M = 37, N = 70, K = 129, batch = 3;
      Tensor a = randn({batch, ta ? K : M, ta ? M : K}, 1).to(DType::bf16);
      Tensor b = randn({tb ? N : K, tb ? K : N}, 2).to(DType::bf16);
      Tensor cc = zeros({batch, M, N}), cg = zeros({batch, M, N}, on(kCUDA));
      Tensor ag = a.to(kCUDA), bg = b.to(kCUDA);
      GemmArgs args{.dtype = DType::bf16, .trans_a = ta, .trans_b = tb, .M = M, .N = N, .K = K,
                    .A = a.raw_data(), .lda = ta ? M : K, .stride_a = M * K, .B = b.raw_data(), .ldb = tb ? K : N,
                    .C = cc.raw_data(), .ldc = N, .stride_c = M * N, .batch = batch};
      backend_for(kCPU).gemm(args);
      args.A = ag.raw_data(), args.B = bg.raw_data(), args.C = cg.raw_data();
      backend_for(kCUDA).gemm(args);
      check_close(cg, cc, 1e-4, "bf16 gemm ta=" + std::to_string(ta) + " tb=" + std::to_string(tb));
    }
  // Elementwise add of bf16 tensors (the engine adds bf16 gradients with it): same bits.
  Tensor x = randn({9, 33}, 3).to(DType::bf16), y = randn({33}, 4).to(DType::bf16);
  Tensor oc = Tensor::empty({9, 33}, on(kCPU, DType::bf16)), og = Tensor::empty({9, 33}, on(kCUDA, DType::bf16));
  backend_for(kCPU).binary(BinaryOp::add, x, y.unsqueeze(0).expand({9, 33}), oc);
  backend_for(kCUDA).binary(BinaryOp::add, x.to(kCUDA), y.to(kCUDA).unsqueeze(0).expand({9, 33}), og);
  check_same_bits(og, oc, "bf16 add");
}

TEST_CASE("autocast ops on CUDA match the CPU: matmul, masked token mixing, widening ops, gradients") {
  using Ops = std::function<Tensor(const std::vector<Tensor>&)>;
  struct C {
    std::string name;
    Ops f;
    std::vector<Tensor> in;
  };
  const std::vector<C> cases = {
      {"matmul", [](const std::vector<Tensor>& in) { return matmul(in[0], in[1].t()); }, {leaf({40, 64}, 1), leaf({24, 64}, 2)}},
      {"batched matmul", [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); },
       {leaf({2, 3, 17, 8}, 3), leaf({8, 5}, 4)}},
      {"masked_token_mix", [](const std::vector<Tensor>& in) { return masked_token_mix(in[0], in[1], in[2]); },
       {leaf({2, 150, 12}, 5), leaf({150, 150}, 6), leaf({150}, 7)}},
      // Fewer rows than tokens, no bias: y and dx come from the epilogue alone (C null, bf16 D
      // only), and dx's columns past the last row must be zero.
      {"masked_token_mix R < C", [](const std::vector<Tensor>& in) { return masked_token_mix(in[0], in[1], Tensor()); },
       {leaf({2, 300, 12}, 14), leaf({100, 300}, 15)}},
      {"masked_token_mix_heads",
       [](const std::vector<Tensor>& in) { return masked_token_mix_heads(in[0], in[1], in[2]); },
       {leaf({2, 20, 12}, 8), leaf({3, 20, 20}, 9), leaf({3, 20}, 10)}},
      {"linear + gelu + layer_norm",
       [](const std::vector<Tensor>& in) { return layer_norm(gelu(add(matmul(in[0], in[1]), in[2])), Tensor(), Tensor()); },
       {leaf({10, 16}, 11), leaf({16, 32}, 12), leaf({32}, 13)}},
  };
  for (const C& c : cases) {
    std::vector<Tensor> a = leaves_on(c.in, kCPU), b = leaves_on(c.in, kCUDA);
    Tensor ya, yb;
    {
      AutocastGuard ac;
      ya = c.f(a);
      yb = c.f(b);
    }
    REQUIRE(yb.dtype() == ya.dtype());
    check_close(yb.to(DType::f32), ya.to(DType::f32), kBf16Rtol, c.name + " forward (" + dtype_name(ya.dtype()) + ")");
    Tensor v = randn(ya.shape(), 77).to(ya.dtype());
    ya.backward(v);
    yb.backward(v.to(kCUDA));
    for (size_t i = 0; i < a.size(); ++i) {
      REQUIRE(b[i].grad().defined());
      CHECK(b[i].grad().dtype() == DType::f32);
      check_close(b[i].grad(), a[i].grad(), kBf16Rtol, c.name + " gradient of input " + std::to_string(i));
    }
  }
}

TEST_CASE("deterministic mode: two identical 20-step runs give bitwise-equal losses (f32 and bf16)") {
  const bool was = deterministic();
  set_deterministic(true);
  for (ModelKind kind : {ModelKind::masked_mixer, ModelKind::llama, ModelKind::gpt}) {
    for (bool bf16 : {false, true}) {
      INFO(model_kind_name(kind) << (bf16 ? " bf16" : " f32"));
      const std::vector<double> r1 = train_losses(tiny_config(kind), kCUDA, bf16, 20);
      const std::vector<double> r2 = train_losses(tiny_config(kind), kCUDA, bf16, 20);
      REQUIRE(r1.size() == r2.size());
      for (size_t i = 0; i < r1.size(); ++i) CHECK(std::memcmp(&r1[i], &r2[i], sizeof(double)) == 0);
    }
  }
  set_deterministic(was);
}

TEST_CASE("training parity: tiny mixer and transformers follow the CPU's loss curve for 50 steps") {
  // Same initial weights (Philox draws the same bits on both devices), same batches. f32: the
  // devices differ only by f32 rounding order, which 50 AdamW steps amplify only mildly at this
  // size: 1e-3 relative. bf16: the CPU and cuBLAS round the same exact products after different
  // f32 summation orders, so an occasional bf16 output differs by an ulp: 1e-2 relative.
  for (ModelKind kind : {ModelKind::masked_mixer, ModelKind::llama, ModelKind::gpt}) {
    for (bool bf16 : {false, true}) {
      INFO(model_kind_name(kind) << (bf16 ? " bf16" : " f32"));
      const std::vector<double> c = train_losses(tiny_config(kind), kCPU, bf16, 50);
      const std::vector<double> g = train_losses(tiny_config(kind), kCUDA, bf16, 50);
      const double rtol = bf16 ? 1e-2 : 1e-3;
      double worst = 0;
      for (size_t i = 0; i < c.size(); ++i) worst = std::max(worst, std::abs(g[i] - c[i]) / std::abs(c[i]));
      const std::string tag = std::string(model_kind_name(kind)) + (bf16 ? " bf16" : " f32");
      MESSAGE(tag, ": loss ", c.front(), " -> ", c.back(),
              ", largest relative CPU/GPU difference ", worst);
      CHECK(worst < rtol);
    }
  }
}

#ifdef MG_WITH_CUDA
TEST_CASE("caching allocator: size classes, reuse of freed blocks, statistics, out-of-memory") {
  CHECK(cuda::allocation_size_class(1) == 512);
  CHECK(cuda::allocation_size_class(512) == 512);
  CHECK(cuda::allocation_size_class(513) == 1024);
  CHECK(cuda::allocation_size_class(size_t(1) << 20) == size_t(1) << 20);
  CHECK(cuda::allocation_size_class((size_t(1) << 20) + 1) == size_t(2) << 20);
  CHECK(cuda::allocation_size_class(size_t(3) << 20) == size_t(4) << 20);

  Backend& be = backend_for(kCUDA);
  cuda::empty_cache();
  const cuda::AllocatorStats s0 = cuda::allocator_stats();
  CHECK(s0.bytes_cached == 0);
  CHECK(s0.bytes_reserved == s0.bytes_in_use);

  void* p = be.allocate(1000);
  cuda::AllocatorStats s1 = cuda::allocator_stats();
  CHECK(s1.bytes_in_use == s0.bytes_in_use + 1024);
  CHECK(s1.device_mallocs == s0.device_mallocs + 1);
  CHECK(s1.peak_bytes_in_use >= s1.bytes_in_use);
  be.deallocate(p, 1000);
  cuda::AllocatorStats s2 = cuda::allocator_stats();
  CHECK(s2.bytes_in_use == s0.bytes_in_use);
  CHECK(s2.bytes_cached == 1024);

  void* q = be.allocate(1024);  // same size class: the cached block comes back, no cudaMalloc
  cuda::AllocatorStats s3 = cuda::allocator_stats();
  CHECK(q == p);
  CHECK(s3.device_mallocs == s1.device_mallocs);
  CHECK(s3.cache_hits == s2.cache_hits + 1);
  CHECK(s3.bytes_cached == 0);

  void* big = be.allocate(size_t(3) << 20);
  CHECK(cuda::allocator_stats().bytes_in_use == s0.bytes_in_use + 1024 + (size_t(4) << 20));
  be.deallocate(big, size_t(3) << 20);
  be.deallocate(q, 1024);
  CHECK(cuda::allocator_stats().bytes_cached == 1024 + (size_t(4) << 20));
  cuda::reset_peak_stats();
  CHECK(cuda::allocator_stats().peak_bytes_in_use == cuda::allocator_stats().bytes_in_use);
  cuda::empty_cache();
  CHECK(cuda::allocator_stats().bytes_cached == 0);

  // Tensors go through it too: a freed tensor's block serves the next one of its size class.
  const int64_t mallocs = cuda::allocator_stats().device_mallocs;
  for (int i = 0; i < 5; ++i) (void)randn({1000, 100}, uint64_t(i), on(kCUDA));
  CHECK(cuda::allocator_stats().device_mallocs == mallocs + 1);

  // An impossible request throws a clear error naming the size; the device stays usable.
  CHECK_THROWS_WITH_AS(be.allocate(size_t(1) << 50), doctest::Contains("1125899906842624 bytes"), Error);
  CHECK(sum(ones({100}, on(kCUDA))).item() == 100.0);
}
#endif

namespace {

// NCCL (cuda/nccl_collectives.cpp) through its core interface, on one GPU as a world of one rank:
// the communicator joins, and a sum over one rank leaves the tensors as they were. The two-GPU
// run is tests/test_distributed.cpp's.
TEST_CASE("NCCL, one rank: joins a communicator and sums device tensors in place") {
  DeviceCollectives* dc = device_collectives(DeviceType::CUDA);
  if (dc == nullptr) {
    std::puts("test_cuda: NCCL case skipped (this build has no NCCL)");
    return;
  }
  CHECK(dc->describe().rfind("NCCL ", 0) == 0);
  std::unique_ptr<DeviceComm> comm = dc->connect(dc->unique_id(), 0, 1);
  Tensor a = from_vector(std::vector<float>{1, -2, 3.5f}).to(kCUDA);
  Tensor b = randn({64, 33}, 5, TensorOptions{}.with_device(kCUDA));
  const std::vector<float> b0 = b.to_vector<float>();
  comm->start_allreduce_sum({a, b});
  comm->wait_all();
  CHECK(a.to_vector<float>() == std::vector<float>{1, -2, 3.5f});
  CHECK(b.to_vector<float>() == b0);
  Tensor d = zeros({2}, TensorOptions{DType::f64, kCUDA});
  CHECK_THROWS_WITH_AS(comm->start_allreduce_sum({d}), doctest::Contains("expects contiguous f32 CUDA tensors"), Error);
  CHECK_THROWS_WITH_AS(dc->connect({1, 2, 3}, 0, 1), doctest::Contains("nccl connect: an id of 3 bytes"), Error);
}

// Runs before doctest's main, after every registration above (a file's static initialisers run
// in the order they are defined; the library's backends registered when it was loaded). The
// parity registry is checked first, on every machine. Where CUDA is unusable it also checks that
// touching a CUDA tensor fails cleanly.
struct SkipWithoutCuda {
  SkipWithoutCuda() {
    const std::vector<std::string> problems = parity_registry_problems();
    for (const std::string& p : problems) std::fprintf(stderr, "test_cuda: %s\n", p.c_str());
    if (std::getenv("MG_CUDA_PARITY_REGISTRY_ONLY") != nullptr) {
      if (problems.empty())
        std::printf("CUDA parity registry: %zu cases, every op of ops/op_table.def with a Backend kernel has one\n",
                    parity_registry().size());
      std::exit(problems.empty() ? 0 : 1);
    }
    if (!problems.empty()) std::exit(1);
    if (backend_available(DeviceType::CUDA)) return;
    std::string why;
    try {
      Tensor t = zeros({2}, TensorOptions{}.with_device(kCUDA));
      std::fprintf(stderr, "CUDA is unavailable, yet a CUDA tensor was created\n");
      std::exit(1);
    } catch (const Error& e) {
      why = e.what();
    }
    std::printf("CUDA suite skipped: %s\n", why.c_str());
    std::exit(77);
  }
} skip_without_cuda;

}  // namespace
