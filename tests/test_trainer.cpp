// The one training loop (train/trainer.h): steps, validation hooks, metrics, checkpoints,
// bit-exact resume of model, optimizer and data position, the run-directory lock, settings checks.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/factories.h"
#include "core/safetensors.h"
#include "nn/checkpoint.h"
#include "nn/layers.h"
#include "ops/losses.h"
#include "ops/ops.h"
#include "report/csv.h"
#include "tests/temp_dir.h"
#include "train/run_lock.h"
#include "train/trainer.h"

using namespace mg;

namespace {

// y = x A for a fixed A; batches drawn from a counter, so the position is one number.
class RegressionSource : public DataSource<std::pair<Tensor, Tensor>> {
 public:
  std::pair<Tensor, Tensor> next() override {
    Tensor x = randn({8, 4}, 1000 + cursor_++);
    Tensor a = randn({4, 2}, 7);
    return {x, matmul(x, a)};
  }
  SourceState state() const override { return {{"data.cursor", std::to_string(cursor_)}}; }
  void restore(const SourceState& s, const std::string& where) override {
    cursor_ = state_uint(s, "data.cursor", where);
  }
  uint64_t cursor_ = 0;
};

struct Fixture {
  explicit Fixture(uint64_t seed = 3) : gen(seed), model(4, 2, true, gen) {}
  Generator gen;
  Linear model;
  RegressionSource data;
  StepLoss loss(const std::pair<Tensor, Tensor>& b) { return {mse_loss(model.forward(b.first), b.second), 8}; }
};

TrainSettings small(int64_t steps) {
  TrainSettings s;
  s.steps = steps;
  s.lr = 0.05;
  s.warmup_steps = 2;
  s.log_every = 3;
  s.eval_every = 4;
  s.checkpoint_every = 5;
  return s;
}

std::vector<float> weights(const Module& m) {
  std::vector<float> w;
  for (const auto& p : m.parameters()) {
    auto v = p.contiguous().to_vector<float>();
    w.insert(w.end(), v.begin(), v.end());
  }
  return w;
}

TrainResult fit(Fixture& f, const TrainSettings& s, RunControl c, TrainHooks h = {}) {
  Trainer t(f.model, s, std::move(c));
  return t.fit<std::pair<Tensor, Tensor>>(f.data, [&](const auto& b) { return f.loss(b); }, h);
}

}  // namespace

TEST_CASE("Trainer: the loss falls; validation at eval_every and the last step; metrics and a checkpoint") {
  test::TempDir dir("mg_trainer");
  Fixture f;
  int validations = 0;
  TrainHooks h;
  h.validate = [&] {
    ++validations;
    return 1.0;
  };
  std::vector<int64_t> logged;
  h.on_log = [&](int64_t step, double) { logged.push_back(step); };
  TrainSettings s = small(10);
  s.lr = 0.2;
  TrainResult r = fit(f, s, {dir.file("run"), false, -1, "t", false}, h);
  REQUIRE(r.losses.size() == 10);
  CHECK((r.losses[7] + r.losses[8] + r.losses[9]) < 0.5 * (r.losses[0] + r.losses[1] + r.losses[2]));
  CHECK(validations == 3);  // steps 4, 8 and the last (10)
  CHECK(logged == std::vector<int64_t>{3, 6, 9, 10});
  CHECK(r.steps_done == 10);
  CHECK_FALSE(r.interrupted);
  report::CsvTable t = report::read_csv(dir.file("run/metrics.csv"));
  REQUIRE(t.rows.size() == 10);
  CHECK(t.rows[3][4] == "1");     // val_loss at step 4
  CHECK(t.rows[4][4].empty());    // none at step 5
  CHECK(t.rows[9][5] == "80");    // tokens: 10 steps x 8
  CHECK(std::filesystem::exists(dir.file("run/checkpoint.safetensors")));
  CHECK(std::filesystem::exists(dir.file("run/loss.png")));
  auto meta = read_checkpoint_metadata(dir.file("run/checkpoint.safetensors"));
  CHECK(meta.at("step") == "10");
  CHECK(meta.at("data.cursor") == "10");
}

TEST_CASE("Trainer: a stopped and resumed run is bitwise the uninterrupted one, metrics columns included") {
  test::TempDir dir("mg_trainer");
  Fixture whole;
  TrainResult full = fit(whole, small(12), {dir.file("whole"), false, -1, "", false});

  Fixture part;
  TrainResult first = fit(part, small(12), {dir.file("split"), false, 7, "", false});
  CHECK(first.interrupted);
  CHECK(first.stop_reason == "stop_after");
  CHECK(first.steps_done == 7);
  // A fresh process: new model (other init), new source, everything from the checkpoint.
  Fixture again(99);
  TrainResult second = fit(again, small(12), {dir.file("split"), true, -1, "", false});
  CHECK(second.first_step == 7);
  CHECK(second.steps_done == 12);
  std::vector<double> joined = first.losses;
  joined.insert(joined.end(), second.losses.begin(), second.losses.end());
  CHECK(joined == full.losses);
  CHECK(weights(again.model) == weights(whole.model));
  // metrics.csv: the same rows; tokens continue across the resume.
  report::CsvTable a = report::read_csv(dir.file("whole/metrics.csv")), b = report::read_csv(dir.file("split/metrics.csv"));
  REQUIRE(a.rows.size() == b.rows.size());
  for (size_t i = 0; i < a.rows.size(); ++i)
    for (int c : {0, 1, 2, 3, 5}) CHECK(a.rows[i][size_t(c)] == b.rows[i][size_t(c)]);
}

TEST_CASE("Trainer: refuses a second writer, an existing checkpoint, and a resume without one") {
  test::TempDir dir("mg_trainer");
  Fixture f;
  {
    RunLock held(dir.file("busy"), "a test holding the lock");
    CHECK_THROWS_WITH_AS(fit(f, small(3), {dir.file("busy"), false, -1, "", false}),
                         doctest::Contains("in use by another run (pid"), Error);
  }
  CHECK_NOTHROW(fit(f, small(3), {dir.file("busy"), false, -1, "", false}));  // released
  CHECK_THROWS_WITH_AS(fit(f, small(3), {dir.file("busy"), false, -1, "", false}),
                       doctest::Contains("already holds a checkpoint"), Error);
  CHECK_THROWS_WITH_AS(fit(f, small(3), {dir.file("empty"), true, -1, "", false}),
                       doctest::Contains("no checkpoint at"), Error);
  // A checkpoint without the source's position: one clear error, nothing changed.
  Fixture g;
  fit(g, small(3), {dir.file("nopos"), false, -1, "", false});
  // The same checkpoint without the source position.
  SafetensorsFile ck = load_safetensors(dir.file("nopos/checkpoint.safetensors"));
  ck.metadata.erase("data.cursor");
  std::vector<std::pair<std::string, Tensor>> tensors(ck.tensors.begin(), ck.tensors.end());
  save_safetensors(dir.file("nopos/checkpoint.safetensors"), tensors, ck.metadata);
  CHECK_THROWS_WITH_AS(fit(f, small(3), {dir.file("nopos"), true, -1, "", false}),
                       doctest::Contains("'data.cursor' is missing"), Error);
}

TEST_CASE("Trainer: settings are checked with the key named") {
  Fixture f;
  auto refuses = [&](void (*edit)(TrainSettings&), const char* key) {
    TrainSettings s = small(5);
    edit(s);
    CHECK_THROWS_WITH_AS(Trainer(f.model, s, {}), doctest::Contains(key), Error);
  };
  refuses([](TrainSettings& s) { s.steps = 0; }, "train.steps");
  refuses([](TrainSettings& s) { s.steps = -5; }, "train.steps");
  refuses([](TrainSettings& s) { s.min_lr = 1.0; }, "train.min_lr");
  refuses([](TrainSettings& s) { s.lr = NAN; }, "train.lr");
  refuses([](TrainSettings& s) { s.warmup_steps = 6; }, "train.warmup_steps");
  refuses([](TrainSettings& s) { s.beta2 = 1.0; }, "train.beta2");
  refuses([](TrainSettings& s) { s.precision = "fp8"; }, "train.precision");
  refuses([](TrainSettings& s) { s.device = "tpu"; }, "train.device");
}

TEST_CASE("Trainer: a non-finite loss stops the run naming the step") {
  Fixture f;
  TrainSettings s = small(5);
  s.lr = 1e30;
  s.grad_clip = 0;
  s.warmup_steps = 0;
  CHECK_THROWS_WITH_AS(fit(f, s, {"", false, -1, "blowup", false}), doctest::Contains("at step"), Error);
}
