// Golden values from PyTorch: every op of the paper's op set, forward and input gradients, against
// fixtures written by tests/golden/make_fixtures.py (torch, float64 reference). See
// tests/golden/README.md.
//
// Each case is registered under its op's name (GOLDEN_CASE(op, ...)) and reads
// tests/golden/<op>.safetensors. The first test compares the registry with the op table
// (ops/op_table.def): every op flagged golden has a case and a fixture, and every case is such an op.
//
// Each case loads the fixture's inputs (f32-representable values, so the f32 and f64 runs see the
// same numbers), runs our op, backpropagates the stored upstream gradient "grad_out", and compares
// "out" and every "grad_<input>". Tolerances: |got - want| <= atol + rtol |want|, stated per op;
// f32 results are compared with the float64 reference, f64 results with the same reference.
// Set MG_GOLDEN_VERBOSE=1 to print the worst error of every comparison.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>

#include "core/philox.h"
#include "core/safetensors.h"
#include "nn/optim.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/dropout.h"
#include "ops/embedding.h"
#include "ops/losses.h"
#include "ops/masked_mix.h"
#include "ops/norm.h"
#include "ops/op_table.h"
#include "ops/rope.h"
#include "ops/softmax.h"
#include "tests/golden_compare.h"
#include "tests/test_helpers.h"

using namespace mg;
using namespace mg::test;

namespace {

// The default of this suite: f32 rtol 1e-4 with atol 1e-5 for entries near 0; f64 1e-10 / 1e-12.
constexpr Tols kDefault{{1e-4, 1e-5}, {1e-10, 1e-12}};


struct Golden {
  std::string op;
  SafetensorsFile file;
  explicit Golden(const std::string& name)
      : op(name), file(load_safetensors(std::string(MG_SOURCE_DIR "/tests/golden/") + name + ".safetensors")) {}

  // The stored tensor <case>.<name> in dtype dt (floating), or the i32 one (integers).
  Tensor ref(const std::string& cs, const std::string& name, DType dt) const {
    const Tensor& t = file.get(cs + "." + name);
    if (t.dtype() == DType::i32) return t;
    return dt == DType::f32 ? file.get(cs + "." + name + ".f32") : t;
  }
  // A fresh leaf copy, so that gradients of different runs never mix.
  Tensor leaf(const std::string& cs, const std::string& name, DType dt, bool requires_grad) const {
    Tensor t = ref(cs, name, dt).clone().detach();
    if (requires_grad) t.set_requires_grad(true);
    return t;
  }
};

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// Runs one fixture case in f32 and f64. `floats` are the floating inputs (all get gradients unless
// listed in `no_grad`), `ints` integer inputs appended after them.
void run_case(const Golden& g, const std::string& cs, const std::vector<std::string>& floats,
              const std::vector<std::string>& ints, const Fn& fn, Tols tols,
              const std::vector<std::string>& no_grad = {}) {
  for (DType dt : {DType::f32, DType::f64}) {
    const Tol tol = dt == DType::f32 ? tols.f32 : tols.f64;
    const std::string where = g.op + "/" + cs + " " + dtype_name(dt) + ": ";
    std::vector<Tensor> in;
    std::vector<bool> wants_grad;
    for (const auto& n : floats) {
      const bool rg = std::find(no_grad.begin(), no_grad.end(), n) == no_grad.end();
      in.push_back(g.leaf(cs, n, dt, rg));
      wants_grad.push_back(rg);
    }
    for (const auto& n : ints) in.push_back(g.ref(cs, n, dt));
    Tensor out;
    try {
      out = fn(in);
    } catch (const Error& e) {
      FAIL_CHECK(where << "forward threw: " << e.what());
      continue;
    }
    expect_close(out, g.ref(cs, "out", dt), tol, where + "out");
    try {
      out.backward(g.ref(cs, "grad_out", dt));
    } catch (const Error& e) {
      FAIL_CHECK(where << "backward threw: " << e.what());
      continue;
    }
    for (size_t i = 0; i < floats.size(); ++i)
      if (wants_grad[i]) expect_close(in[i].grad(), g.ref(cs, "grad_" + floats[i], dt), tol, where + "grad_" + floats[i]);
  }
}

// Every case the fixture lists must be checked by the test (a new fixture case is not silently ignored).
void expect_cases(const Golden& g, const std::vector<std::string>& tested) {
  std::string listed = g.file.metadata.at("cases"), joined;
  for (const auto& c : tested) joined += (joined.empty() ? "" : ",") + c;
  CHECK_MESSAGE(listed == joined, g.op << ": fixture cases " << listed << ", test covers " << joined);
}

Reduction reduction_named(const std::string& r) {
  return r == "mean" ? Reduction::mean : r == "sum" ? Reduction::sum : Reduction::none;
}

// The names under which golden cases registered, in file order.
std::vector<std::string>& golden_registry() {
  static std::vector<std::string> names;
  return names;
}
struct GoldenRegistration {
  explicit GoldenRegistration(const char* op) { golden_registry().emplace_back(op); }
};

std::string fixture_path(const std::string& op) { return MG_SOURCE_DIR "/tests/golden/" + op + ".safetensors"; }

}  // namespace

// GOLDEN_CASE(op, "what") { body }: a test named "golden <op>: <what>" whose body sees `g`, the
// fixture tests/golden/<op>.safetensors, registered under `op` (one case per op: a second one
// would not compile).
#define GOLDEN_CASE(op, title)                                                 \
  static void golden_body_##op(const Golden& g);                               \
  static const GoldenRegistration golden_registration_##op(#op);               \
  TEST_CASE("golden " #op ": " title) { golden_body_##op(Golden(#op)); }       \
  static void golden_body_##op(const Golden& g)

// The golden list is the op table's: every op flagged golden has a registered case and a fixture
// written by torch (the metadata says which version, for the README's record); every registered
// case and every op fixture in tests/golden/ belongs to such an op.
TEST_CASE("golden: the op table, the registered cases and the fixture files agree") {
  const std::vector<std::string>& reg = golden_registry();
  for (const OpInfo& op : kOpTable) {
    if (!op.golden) continue;
    const bool registered = std::find(reg.begin(), reg.end(), op.name) != reg.end();
    CHECK_MESSAGE(registered, "op '" << std::string(op.name) << "' is golden in ops/op_table.def, but "
                                     << "tests/test_golden_ops.cpp registers no GOLDEN_CASE(" << std::string(op.name)
                                     << ", ...)");
    if (!std::filesystem::exists(fixture_path(op.name))) {
      FAIL_CHECK("op '" << std::string(op.name) << "' is golden in ops/op_table.def, but " << fixture_path(op.name)
                        << " is missing: run /usr/bin/python3 tests/golden/make_fixtures.py " << std::string(op.name));
      continue;
    }
    Golden g(op.name);
    CHECK(g.file.metadata.at("op") == op.name);
    CHECK(g.file.metadata.at("torch_version").rfind("1.", 0) == 0);
    CHECK(g.file.tensors.size() > 0);
  }
  for (const std::string& name : reg) {
    const OpInfo* op = find_op(name);
    CHECK_MESSAGE((op != nullptr && op->golden), "GOLDEN_CASE(" << name << ", ...) is registered, but '" << name
                                                << "' is not an op of ops/op_table.def with golden = 1");
  }
  // Whole-model fixtures (model_*) belong to tests/test_golden_models.cpp.
  for (const auto& entry : std::filesystem::directory_iterator(MG_SOURCE_DIR "/tests/golden")) {
    const std::string stem = entry.path().stem().string();
    if (entry.path().extension() != ".safetensors" || stem.rfind("model_", 0) == 0) continue;
    const OpInfo* op = find_op(stem);
    CHECK_MESSAGE((op != nullptr && op->golden), "tests/golden/" << stem << ".safetensors is not the fixture of a "
                                                << "golden op of ops/op_table.def (a stale fixture?)");
  }
}

// layer_norm: two-pass mean/var in f32 over <= 33 elements; values O(1).
GOLDEN_CASE(layer_norm, "eps 1e-5") {
  Fn f = [](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], in[2], 1e-5); };
  for (const char* cs : {"rows", "t1", "offset"}) run_case(g, cs, {"x", "weight", "bias"}, {}, f, kDefault);
  expect_cases(g, {"rows", "t1", "offset"});
}

GOLDEN_CASE(rms_norm, "eps 1e-6, Llama formula") {
  Fn f = [](const std::vector<Tensor>& in) { return rms_norm(in[0], in[1], 1e-6); };
  for (const char* cs : {"rows", "t1", "wide"}) run_case(g, cs, {"x", "weight"}, {}, f, kDefault);
  expect_cases(g, {"rows", "t1", "wide"});
}

// Pointwise: f32 is limited by erf/tanh/exp rounding (a few ulp), so 1e-5 relative is ample.
constexpr Tols kPointwise{{1e-5, 1e-6}, {1e-12, 1e-14}};

GOLDEN_CASE(gelu, "erf and tanh forms") {
  run_case(g, "erf", {"x"}, {}, [](const std::vector<Tensor>& in) { return gelu(in[0], false); }, kPointwise);
  run_case(g, "tanh", {"x"}, {}, [](const std::vector<Tensor>& in) { return gelu(in[0], true); }, kPointwise);
  expect_cases(g, {"erf", "tanh"});
}

// The bias gradient is a sum over rows (12 here) of terms up to ~3 with cancellation, so f32 is
// held to the reduction ops' tolerance, not the pointwise one.
GOLDEN_CASE(bias_gelu, "gelu(x + bias), erf and tanh forms, bias along the last dim") {
  run_case(g, "erf", {"x", "bias"}, {}, [](const std::vector<Tensor>& in) { return bias_gelu(in[0], in[1], false); },
           kDefault);
  run_case(g, "tanh", {"x", "bias"}, {}, [](const std::vector<Tensor>& in) { return bias_gelu(in[0], in[1], true); },
           kDefault);
  expect_cases(g, {"erf", "tanh"});
}

GOLDEN_CASE(silu, "x sigmoid(x)") {
  run_case(g, "rows", {"x"}, {}, [](const std::vector<Tensor>& in) { return silu(in[0]); }, kPointwise);
  expect_cases(g, {"rows"});
}

GOLDEN_CASE(swiglu, "silu(gate) * up") {
  run_case(g, "rows", {"gate", "up"}, {}, [](const std::vector<Tensor>& in) { return swiglu(in[0], in[1]); },
           kPointwise);
  expect_cases(g, {"rows"});
}

// softmax / log_softmax: "large" has logits of magnitude ~100, where f32 loses ~1e-5 absolute in
// x - max; the default (rtol 1e-4, atol 1e-5) holds that.
namespace {
void softmax_cases(const Golden& g, bool lsm) {
  for (auto [cs, dim] : {std::pair{"last", -1}, {"dim1", 1}, {"t1", -1}, {"large", -1}}) {
    Fn f = [lsm, dim = dim](const std::vector<Tensor>& in) { return lsm ? log_softmax(in[0], dim) : softmax(in[0], dim); };
    run_case(g, cs, {"x"}, {}, f, kDefault);
  }
  expect_cases(g, {"last", "dim1", "t1", "large"});
}
}  // namespace

GOLDEN_CASE(softmax, "dims -1 and 1, logits ~100") { softmax_cases(g, false); }
GOLDEN_CASE(log_softmax, "dims -1 and 1, logits ~100") { softmax_cases(g, true); }

GOLDEN_CASE(cross_entropy, "ignore_index -100, mean/sum/none") {
  for (const char* cs : {"mean", "sum", "none"}) {
    const Reduction r = reduction_named(cs);
    run_case(g, cs, {"logits"}, {"targets"},
             [r](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1], -100, r); }, kDefault);
  }
  run_case(g, "t1", {"logits"}, {"targets"}, [](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1]); },
           kDefault);
  expect_cases(g, {"mean", "sum", "none", "t1"});
}

// embedding: forward is a copy (exact); the backward sums at most 4 repeats.
GOLDEN_CASE(embedding, "repeated ids") {
  constexpr Tols kEmbedding{{1e-6, 1e-7}, {1e-14, 1e-15}};
  for (const char* cs : {"rows", "t1"})
    run_case(g, cs, {"weight"}, {"ids"}, [](const std::vector<Tensor>& in) { return embedding(in[0], in[1]); },
             kEmbedding);
  expect_cases(g, {"rows", "t1"});
}

GOLDEN_CASE(masked_mix, "masked token mixing, flat and multi-head") {
  Fn flat = [](const std::vector<Tensor>& in) { return masked_token_mix(in[0], in[1], in[2]); };
  Fn flat_nb = [](const std::vector<Tensor>& in) { return masked_token_mix(in[0], in[1], Tensor()); };
  Fn heads = [](const std::vector<Tensor>& in) { return masked_token_mix_heads(in[0], in[1], in[2]); };
  Fn heads_nb = [](const std::vector<Tensor>& in) { return masked_token_mix_heads(in[0], in[1], Tensor()); };
  run_case(g, "flat", {"x", "weight", "bias"}, {}, flat, kDefault);
  run_case(g, "nobias", {"x", "weight"}, {}, flat_nb, kDefault);
  run_case(g, "t1", {"x", "weight", "bias"}, {}, flat, kDefault);
  run_case(g, "heads", {"x", "weight", "bias"}, {}, heads, kDefault);
  run_case(g, "heads_nobias", {"x", "weight"}, {}, heads_nb, kDefault);
  expect_cases(g, {"flat", "nobias", "t1", "heads", "heads_nobias"});
  // The masked (upper) half of the weight gets an exactly-zero gradient.
  Tensor x = g.leaf("flat", "x", DType::f64, true), w = g.leaf("flat", "weight", DType::f64, true);
  masked_token_mix(x, w, Tensor()).backward(g.ref("flat", "grad_out", DType::f64));
  const std::vector<double> gw = w.grad().to_vector<double>();
  const int64_t T = w.size(0);
  for (int64_t r = 0; r < T; ++r)
    for (int64_t c = r + 1; c < T; ++c) CHECK(gw[size_t(r * T + c)] == 0.0);
}

GOLDEN_CASE(attention, "causal and not, explicit scale") {
  Fn causal = [](const std::vector<Tensor>& in) { return scaled_dot_product_attention(in[0], in[1], in[2], true); };
  Fn full = [](const std::vector<Tensor>& in) { return scaled_dot_product_attention(in[0], in[1], in[2], false); };
  Fn scaled = [](const std::vector<Tensor>& in) { return scaled_dot_product_attention(in[0], in[1], in[2], true, 0.3); };
  run_case(g, "causal", {"q", "k", "v"}, {}, causal, kDefault);
  run_case(g, "t1", {"q", "k", "v"}, {}, causal, kDefault);
  run_case(g, "noncausal", {"q", "k", "v"}, {}, full, kDefault);
  run_case(g, "scale03", {"q", "k", "v"}, {}, scaled, kDefault);
  expect_cases(g, {"causal", "t1", "noncausal", "scale03"});
}

// rope: cos/sin of angles up to ~11 rad; f32 angle rounding gives ~1e-6 absolute.
GOLDEN_CASE(rope, "HF Llama rotate_half") {
  run_case(g, "rows", {"x"}, {}, [](const std::vector<Tensor>& in) { return rope(in[0]); }, kDefault);
  run_case(g, "t1", {"x"}, {}, [](const std::vector<Tensor>& in) { return rope(in[0]); }, kDefault);
  run_case(g, "offset5", {"x"}, {}, [](const std::vector<Tensor>& in) { return rope(in[0], 10000.0, 5); }, kDefault);
  run_case(g, "theta500", {"x"}, {}, [](const std::vector<Tensor>& in) { return rope(in[0], 500.0); }, kDefault);
  expect_cases(g, {"rows", "t1", "offset5", "theta500"});
}

// torch cannot draw our Philox mask: make_fixtures.py computes it with a Python port of
// core/philox.h and stores it; torch applies it. So the fixture checks the mask (against an
// independent implementation), the scaling and the gradient. The cases are DROPOUT_CASES there.
GOLDEN_CASE(dropout, "Philox mask, p 0.05, 0.1, 0.5") {
  struct Case {
    const char* name;
    double p;
    uint64_t seed, offset;
  };
  for (const Case& c :
       {Case{"p005", 0.05, 2024, 0}, Case{"p01", 0.1, 7, 3}, Case{"p05", 0.5, 0x9E3779B97F4A7C15ull, 1}}) {
    run_case(g, c.name, {"x"}, {},
             [c](const std::vector<Tensor>& in) { return dropout(in[0], c.p, true, c.seed, c.offset); }, kDefault);
    const std::vector<double> mask = vals(g.ref(c.name, "mask", DType::f64));
    size_t differ = 0;
    for (size_t i = 0; i < mask.size(); ++i) differ += (mask[i] != 0) != philox::dropout_keep(c.seed, c.offset, i, c.p);
    INFO("dropout/" << c.name << ": mask elements that differ from the fixture's");
    CHECK(differ == 0);
  }
  expect_cases(g, {"p005", "p01", "p05"});
}

GOLDEN_CASE(l2_normalize, "dims -1 and 0") {
  run_case(g, "last", {"x"}, {}, [](const std::vector<Tensor>& in) { return l2_normalize(in[0], -1); }, kDefault);
  run_case(g, "dim0", {"x"}, {}, [](const std::vector<Tensor>& in) { return l2_normalize(in[0], 0); }, kDefault);
  expect_cases(g, {"last", "dim0"});
}

GOLDEN_CASE(cosine_similarity, "eps 1e-8") {
  Fn f = [](const std::vector<Tensor>& in) { return cosine_similarity(in[0], in[1], -1, 1e-8); };
  run_case(g, "rows", {"a", "b"}, {}, f, kDefault);
  run_case(g, "t1", {"a", "b"}, {}, f, kDefault);
  expect_cases(g, {"rows", "t1"});
}

// InfoNCE at tau 0.02 multiplies cosine errors by 50: an f32 cosine is good to ~1e-7, so logits
// carry ~5e-6 absolute error; the default tolerance covers it.
GOLDEN_CASE(info_nce, "pairs and grouped, tau 0.02") {
  Fn pairs = [](const std::vector<Tensor>& in) { return info_nce_loss(in[0], in[1], 0.02); };
  run_case(g, "pairs", {"queries", "docs"}, {}, pairs, kDefault);
  run_case(g, "aligned", {"queries", "docs"}, {}, pairs, kDefault);
  run_case(g, "grouped", {"queries", "candidates"}, {},
           [](const std::vector<Tensor>& in) { return info_nce_loss_grouped(in[0], in[1], 0.02); }, kDefault);
  expect_cases(g, {"pairs", "aligned", "grouped"});
}

namespace {
void pointwise_loss_cases(const Golden& g, bool l1) {
  for (const char* cs : {"mean", "sum", "none"}) {
    const Reduction r = reduction_named(cs);
    run_case(g, cs, {"input", "target"}, {},
             [l1, r](const std::vector<Tensor>& in) { return l1 ? l1_loss(in[0], in[1], r) : mse_loss(in[0], in[1], r); },
             kDefault);
  }
  expect_cases(g, {"mean", "sum", "none"});
}
}  // namespace

GOLDEN_CASE(l1_loss, "mean/sum/none, a zero difference") { pointwise_loss_cases(g, true); }
GOLDEN_CASE(mse_loss, "mean/sum/none") { pointwise_loss_cases(g, false); }

// Optimizers: three steps with fresh gradients each, parameters compared after every step and the
// state after the last. An f32 step changes parameters by ~1e-3 with f32 arithmetic, so parameters
// agree to ~1e-7 relative; the state to ~1e-6.
namespace {
// The three steps of one configuration; `prefix` names its cases (sgd holds two configurations).
void run_optimizer(const Golden& g, const std::string& prefix,
                   const std::function<std::unique_ptr<Optimizer>(std::vector<Tensor>)>& make,
                   const std::vector<std::string>& state_keys, Tols tols) {
  for (DType dt : {DType::f32, DType::f64}) {
    const Tol tol = dt == DType::f32 ? tols.f32 : tols.f64;
    const std::string where = g.op + " " + prefix + dtype_name(dt) + ": ";
    std::vector<Tensor> params = {g.leaf(prefix + "init", "param.p0", dt, true),
                                  g.leaf(prefix + "init", "param.p1", dt, true)};
    std::unique_ptr<Optimizer> opt = make(params);
    for (int k = 1; k <= 3; ++k) {
      const std::string s = prefix + "s" + std::to_string(k);
      for (size_t i = 0; i < params.size(); ++i)
        params[i].set_grad(g.leaf(s, "grad.p" + std::to_string(i), dt, false));
      opt->step();
      for (size_t i = 0; i < params.size(); ++i)
        expect_close(params[i], g.ref(s, "param.p" + std::to_string(i), dt), tol,
                     where + "param p" + std::to_string(i) + " after step " + std::to_string(k));
    }
    const auto state = opt->state_tensors();
    for (size_t i = 0; i < params.size(); ++i)
      for (const auto& key : state_keys) {
        const std::string name = "state." + std::to_string(i) + "." + key;
        auto it = std::find_if(state.begin(), state.end(), [&](const auto& p) { return p.first == name; });
        if (it == state.end()) {
          FAIL_CHECK(where << "no optimizer state named " << name);
          continue;
        }
        expect_close(it->second, g.ref(prefix + "final", key + ".p" + std::to_string(i), dt), tol, where + name);
      }
  }
}

constexpr Tols kOptim{{1e-5, 1e-7}, {1e-12, 1e-14}};
}  // namespace

GOLDEN_CASE(adamw, "lr 1e-3, wd 0.01") {
  run_optimizer(g, "", [](std::vector<Tensor> p) {
    return std::make_unique<AdamW>(std::move(p), AdamWOptions{1e-3, 0.9, 0.999, 1e-8, 0.01});
  }, {"exp_avg", "exp_avg_sq"}, kOptim);
  expect_cases(g, {"init", "s1", "s2", "s3", "final"});
}

GOLDEN_CASE(sgd, "momentum 0.9 with weight decay, and nesterov") {
  run_optimizer(g, "momentum_", [](std::vector<Tensor> p) {
    SGDOptions o;
    o.lr = 1e-2, o.momentum = 0.9, o.dampening = 0, o.weight_decay = 0.01, o.nesterov = false;
    return std::make_unique<SGD>(std::move(p), o);
  }, {"momentum_buffer"}, kOptim);
  run_optimizer(g, "nesterov_", [](std::vector<Tensor> p) {
    SGDOptions o;
    o.lr = 1e-2, o.momentum = 0.9, o.dampening = 0, o.weight_decay = 0, o.nesterov = true;
    return std::make_unique<SGD>(std::move(p), o);
  }, {"momentum_buffer"}, kOptim);
  expect_cases(g, {"momentum_init", "momentum_s1", "momentum_s2", "momentum_s3", "momentum_final", "nesterov_init",
                   "nesterov_s1", "nesterov_s2", "nesterov_s3", "nesterov_final"});
}

// Foundation ops (ops/ops.h). Reductions over <= 60 elements and GEMMs with K <= 7.
namespace {
using Unary = std::vector<std::pair<const char*, std::function<Tensor(const Tensor&)>>>;
void unary_cases(const Golden& g, const Unary& cases) {
  std::vector<std::string> names;
  for (const auto& [cs, op] : cases) {
    run_case(g, cs, {"x"}, {}, [op = op](const std::vector<Tensor>& in) { return op(in[0]); }, kDefault);
    names.push_back(cs);
  }
  expect_cases(g, names);
}
}  // namespace

GOLDEN_CASE(matmul, "batched, broadcast, vectors") {
  Fn mm = [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); };
  for (const char* cs : {"matmul_batched", "matmul_broadcast", "matmul_t1", "matmul_vec"})
    run_case(g, cs, {"input", "other"}, {}, mm, kDefault);
  expect_cases(g, {"matmul_batched", "matmul_broadcast", "matmul_t1", "matmul_vec"});
}

GOLDEN_CASE(reduce, "sum, mean, max, var over dims") {
  unary_cases(g, {
      {"sum_dim1", [](const Tensor& x) { return sum(x, {1}); }},
      {"sum_all", [](const Tensor& x) { return sum(x); }},
      {"mean_02_keep", [](const Tensor& x) { return mean(x, {0, 2}, true); }},
      {"max_dim2", [](const Tensor& x) { return max(x, {2}); }},
      {"max_all", [](const Tensor& x) { return max(x); }},
      {"var_dim1", [](const Tensor& x) { return var(x, {1}); }},
      {"var_all_c0", [](const Tensor& x) { return var(x, {}, 0); }},
  });
}

GOLDEN_CASE(elementwise, "exp, log, tanh, pow") {
  unary_cases(g, {
      {"exp", [](const Tensor& x) { return exp(x); }},
      {"log", [](const Tensor& x) { return log(x); }},
      {"tanh", [](const Tensor& x) { return tanh(x); }},
      {"pow2_5", [](const Tensor& x) { return pow(x, 2.5); }},
      {"pow_m1_5", [](const Tensor& x) { return pow(x, -1.5); }},
      {"pow3", [](const Tensor& x) { return pow(x, 3.0); }},
  });
}
