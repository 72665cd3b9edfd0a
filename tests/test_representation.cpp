// experiments/representation: the paper's input-representation test (docs/paper.md D). Exact
// recovery through a tiny untrained masked mixer, a falling loss, frozen weights, the
// pseudo-inverse decode, the metric's pad handling and argument errors.
#include <algorithm>
#include <cmath>
#include <functional>
#include <filesystem>
#include <numeric>

#include <unistd.h>

#include "core/factories.h"
#include "experiments/represent_experiment.h"
#include "experiments/representation.h"
#include "nn/checkpoint.h"
#include "nn/lm.h"
#include "report/csv.h"
#include "ops/matmul.h"
#include "tests/model_configs.h"
#include "tests/test_helpers.h"

using namespace mg;

namespace mg {
int run_represent(const std::vector<std::string>& args);  // experiments/cmd_represent.cpp
}

namespace {

// The small model with n=8: 500 steps take well under a second.
ModelConfig tiny(ModelKind kind) {
  ModelConfig c = test::small_model(kind);
  c.n_ctx = 8;
  return c;
}

using test::error_of;

// The tiny masked mixer the single-model tests recover inputs through (weights from seed 5).
std::unique_ptr<LanguageModel> tiny_mixer() {
  Generator gen(5);
  return make_model(tiny(ModelKind::masked_mixer), gen);
}

// Mean of loss[from, from + width).
double window_mean(const std::vector<double>& v, size_t from, size_t width) {
  return std::accumulate(v.begin() + long(from), v.begin() + long(from + width), 0.0) / double(width);
}

}  // namespace

TEST_SUITE("representation") {
  TEST_CASE("invert_spd inverts a symmetric positive-definite matrix and rejects an indefinite one") {
    const int64_t n = 7;
    std::vector<double> m(size_t(n * n));
    Tensor R = randn({n, n}, 3, TensorOptions{DType::f64});
    std::vector<double> r = R.to_vector<double>();
    for (int64_t i = 0; i < n; ++i)  // R R^T + I
      for (int64_t j = 0; j < n; ++j) {
        double s = i == j ? 1.0 : 0.0;
        for (int64_t p = 0; p < n; ++p) s += r[size_t(i * n + p)] * r[size_t(j * n + p)];
        m[size_t(i * n + j)] = s;
      }
    std::vector<double> inv = m;
    invert_spd(inv, n);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t p = 0; p < n; ++p) s += m[size_t(i * n + p)] * inv[size_t(p * n + j)];
        CHECK(std::abs(s - (i == j ? 1.0 : 0.0)) < 1e-10);
      }
    std::vector<double> bad = {1, 2, 2, 1};  // eigenvalues 3 and -1
    CHECK(error_of([&] { invert_spd(bad, 2); }).find("not positive definite (pivot 1") != std::string::npos);
  }

  TEST_CASE("pinv(W) is a left inverse of W and maps each embedding row back to its own token") {
    Tensor W = randn({64, 32}, 11);  // f32, as a model's embedding
    Tensor P = embedding_pinv(W);
    REQUIRE(P.shape() == Shape{32, 64});
    CHECK(P.dtype() == DType::f64);
    std::vector<double> I = matmul(P, W.to(DType::f64)).to_vector<double>();
    double worst = 0;
    for (int64_t i = 0; i < 32; ++i)
      for (int64_t j = 0; j < 32; ++j) worst = std::max(worst, std::abs(I[size_t(i * 32 + j)] - (i == j)));
    CHECK(worst < 1e-10);
    for (RepresentationDecode m : {RepresentationDecode::pinv, RepresentationDecode::cosine}) {
      std::vector<int32_t> top = decode_embeddings(W, W, m, 5, m == RepresentationDecode::pinv ? P : Tensor());
      REQUIRE(top.size() == 64u * 5u);
      for (int32_t v = 0; v < 64; ++v) CHECK(top[size_t(v) * 5] == v);
    }
    CHECK(error_of([] { embedding_pinv(randn({4, 8}, 1)); }).find("fewer rows than columns") != std::string::npos);
  }

  TEST_CASE("a tiny untrained masked mixer: the input is recovered exactly, weights untouched") {
    auto model = tiny_mixer();
    std::vector<Tensor> before;
    for (const Tensor& p : model->parameters()) before.push_back(p.clone());
    Tensor ids = randint(0, 64, {3, 8}, 7);
    RepresentationOptions o;
    o.seed = 1;
    o.lr = 0.02;
    RepresentationResult r = recover_input(*model, ids, o);

    CHECK(r.layer == 2);
    CHECK(r.recovered.shape() == Shape{3, 8, 32});
    CHECK(r.hamming == 0.0);
    CHECK(r.top1_accuracy == 1.0);
    CHECK(r.top1 == ids.to_vector<int32_t>());
    // The loss falls by orders of magnitude, below the paper's "close enough" scale, and its
    // 50-step window means never rise.
    REQUIRE(r.loss.size() == 501u);
    CHECK(r.loss.back() < 1e-2 * r.loss.front());
    CHECK(r.final_l1 < r.perturbation_l1);
    for (size_t w = 50; w + 50 <= 500; w += 50) CHECK(window_mean(r.loss, w, 50) <= window_mean(r.loss, w - 50, 50));
    // Frozen: no parameter gained a gradient or changed, and each still requires grad.
    auto params = model->parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      CHECK_FALSE(params[i].grad().defined());
      CHECK(params[i].requires_grad());
      CHECK(params[i].to_vector<float>() == before[i].to_vector<float>());
    }
  }

  TEST_CASE("llama and gpt run batched at every layer; the loss falls; layer 0 is trivial") {
    for (ModelKind kind : {ModelKind::llama, ModelKind::gpt}) {
      CAPTURE(model_kind_name(kind));
      Generator gen(2);
      auto model = make_model(tiny(kind), gen);
      Tensor ids = randint(0, 64, {2, 8}, 4);
      RepresentationOptions o;
      o.steps = 100;
      o.lr = 0.05;
      for (int layer : {0, 1, 2}) {
        CAPTURE(layer);
        o.layer = layer;
        RepresentationResult r = recover_input(*model, ids, o);
        CHECK(r.loss.back() < r.loss.front());
        CHECK(r.hamming >= 0.0);
        CHECK(r.hamming <= 1.0);
        if (layer == 0) CHECK(r.hamming == 0.0);
      }
      for (const Tensor& p : model->parameters()) CHECK_FALSE(p.grad().defined());
    }
  }

  TEST_CASE("l2 and cosine losses also descend") {
    auto model = tiny_mixer();
    Tensor ids = randint(0, 64, {2, 8}, 9);
    RepresentationOptions o;
    o.steps = 100;
    o.loss = RepresentationLoss::l2;
    o.lr = 0.02;
    RepresentationResult r2 = recover_input(*model, ids, o);
    CHECK(r2.loss.back() < 0.1 * r2.loss.front());
    o.loss = RepresentationLoss::cosine;
    o.lr = 20;
    RepresentationResult rc = recover_input(*model, ids, o);
    CHECK(rc.loss.back() < 0.5 * rc.loss.front());
    CHECK(rc.loss.front() <= 2.0);  // 1 - |cos| per prompt, two prompts
  }

  TEST_CASE("pad positions are left out of the metric") {
    auto model = tiny_mixer();
    // Prompt 0 is all pad (id 63) except position 0; prompt 1 has no pad.
    std::vector<int32_t> v(16, 63);
    v[0] = 5;
    for (int t = 0; t < 8; ++t) v[size_t(8 + t)] = t + 1;
    RepresentationOptions o;
    o.steps = 0;  // e_0 itself: nothing recovered, so every scored position counts as missed
    o.pad_id = 63;
    RepresentationResult r = recover_input(*model, from_vector(v, Shape{2, 8}), o);
    CHECK(std::count(r.scored.begin(), r.scored.end(), 1) == 9);
    CHECK(r.loss.size() == 1u);
    // Per-prompt fractions averaged over prompts, in [0, 1].
    CHECK(r.hamming >= 0.0);
    CHECK(r.hamming <= 1.0);
    o.steps = 300;
    RepresentationResult done = recover_input(*model, from_vector(v, Shape{2, 8}), o);
    CHECK(done.hamming == 0.0);
  }

  TEST_CASE("bad arguments are errors that name the problem") {
    auto model = tiny_mixer();
    Tensor ids = randint(0, 64, {1, 8}, 1);
    RepresentationOptions o;
    o.layer = 3;
    CHECK(error_of([&] { recover_input(*model, ids, o); }).find("layer 3 out of range") != std::string::npos);
    o.layer = -2;
    CHECK(error_of([&] { recover_input(*model, ids, o); }).find("layer -2") != std::string::npos);
    o.layer = -1;
    o.lr = -1;
    CHECK(error_of([&] { recover_input(*model, ids, o); }).find("lr") != std::string::npos);
    o.lr = 0.02;
    CHECK(error_of([&] { recover_input(*model, randint(0, 64, {8}, 1), o); }).find("[B, T]") != std::string::npos);
    CHECK(error_of([] { parse_representation_loss("l3"); }).find("l1, l2 or cosine") != std::string::npos);
    CHECK(error_of([] { parse_representation_decode("x"); }).find("pinv or cosine") != std::string::npos);
    // The model's parameters are unfrozen again after an error.
    for (const Tensor& p : model->parameters()) CHECK(p.requires_grad());
  }

  TEST_CASE("tune_representation_lr picks a step size that descends") {
    auto model = tiny_mixer();
    Tensor ids = randint(0, 64, {2, 8}, 3);
    RepresentationOptions o;
    double lr = tune_representation_lr(*model, ids, o, {1e-6, 0.02, 1e6}, 30);
    CHECK(lr == 0.02);
  }

  TEST_CASE("mixgrad represent: a checkpoint and an untrained model, CSV and figures") {
    namespace fs = std::filesystem;
    fs::path dir = fs::temp_directory_path() / ("mg_represent_test_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    const std::string yaml =
        "name: tiny\nmodel:\n  kind: masked_mixer\n  d_model: 32\n  n_layers: 2\n  n_ctx: 8\ndata:\n  vocab_size: 300\n";
    ModelConfig c = tiny(ModelKind::masked_mixer);
    c.vocab_size = 300;  // the smallest the run config accepts is 259
    Generator gen(9);
    auto model = make_model(c, gen);
    const std::string ckpt = (dir / "ckpt.safetensors").string();
    save_checkpoint(ckpt, *model, nullptr, {{"step", "7"}, {"config", yaml}});
    const std::string out = (dir / "out").string();
    CHECK(run_represent({"--checkpoint", ckpt, "--kinds", "gpt", "--random-tokens", "--vocab", "64", "--d-model", "32",
                         "--n-layers", "2", "--n-ctx", "8", "--texts", "3", "--layers", "1,2", "--out", out}) == 0);
    report::CsvTable t = report::read_csv(out + "/representation.csv");
    REQUIRE(t.rows.size() == 4u);
    const int model_col = t.column("model"), h_col = t.column("hamming_top5"), layer_col = t.column("layer");
    REQUIRE(model_col >= 0);
    REQUIRE(h_col >= 0);
    CHECK(t.rows[0][size_t(model_col)] == "tiny@7");
    CHECK(t.rows[1][size_t(layer_col)] == "2");
    CHECK(std::stod(t.rows[1][size_t(h_col)]) == 0.0);  // the checkpointed mixer recovers its input
    CHECK(t.rows[2][size_t(model_col)] == "gpt_d32");
    for (const char* f : {"representation.png", "top1.png", "recovery_tiny@7.png", "recovery_gpt_d32.png",
                          "loss_gpt_d32.png", "positions.csv", "loss_curves.csv"})
      CHECK_MESSAGE(fs::exists(fs::path(out) / f), f);
    CHECK(error_of([&] { run_represent({"--checkpoint", ckpt, "--random-tokens", "--layers", "5", "--out", out}); })
              .find("layer 5 out of range for tiny@7") != std::string::npos);
    fs::remove_all(dir);
  }

  TEST_CASE("mixgrad represent --lr-sweep: every step size at every layer, the best one reported") {
    namespace fs = std::filesystem;
    const std::string out = (fs::temp_directory_path() / ("mg_represent_sweep_" + std::to_string(::getpid()))).string();
    fs::remove_all(out);
    RepresentExperimentOptions o;
    bool help = false;
    o = parse_represent_args({"--kinds", "masked_mixer", "--random-tokens", "--vocab", "64", "--d-model", "32",
                              "--n-layers", "2", "--n-ctx", "8", "--texts", "2", "--layers", "1,2", "--steps", "100",
                              "--lr-sweep", "1e-6,0.02", "--out", out},
                             help);
    CHECK(o.lr_sweep == std::vector<double>{1e-6, 0.02});
    std::vector<RepresentRow> rows = run_represent_experiment(o);
    REQUIRE(rows.size() == 2u);
    for (const RepresentRow& r : rows) {
      CHECK(r.lr == 0.02);  // 1e-6 barely moves e_0, so it recovers nothing
      CHECK(r.scored == 16);
      CHECK(r.hamming == 0.0);
    }
    report::CsvTable t = report::read_csv(out + "/lr_sweep.csv");
    CHECK(t.rows.size() == 4u);
    CHECK(t.column("scored_positions") >= 0);
    CHECK(fs::exists(fs::path(out) / "lr_sweep.png"));
    fs::remove_all(out);
    for (const char* bad : {"0.1,x", "0.1,-1", "0.1,0.1", ","})
      CHECK_MESSAGE(error_of([&] { parse_lr_list(bad); }).find("--lr-sweep") != std::string::npos, bad);
    CHECK(error_of([&] { parse_represent_args({"--lr-sweep", "0.1", "--lr", "0.2"}, help); }).find("drop --lr") !=
          std::string::npos);
  }
}
