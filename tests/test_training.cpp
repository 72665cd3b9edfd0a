// experiments/: the training program end to end on a tiny corpus the test writes itself:
// falling loss, bit-exact resume, checkpoint round trip, and clear errors for bad input.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "experiments/run_config.h"
#include "experiments/lm_run.h"
#include "nn/checkpoint.h"
#include "nn/lm.h"
#include "report/csv.h"

using namespace mg;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("mg_training_test_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path / "corpus");
    // Small, repetitive stories: enough structure for a tiny model to learn quickly.
    const char* names[] = {"Tom", "Anna", "Lily", "Max", "Sue"};
    const char* things[] = {"ball", "cat", "tree", "boat", "cake"};
    for (int i = 0; i < 60; ++i) {
      std::ofstream f(path / "corpus" / ("story" + std::to_string(100 + i) + ".txt"));
      f << "Once upon a time " << names[i % 5] << " had a " << things[(i / 5) % 5] << ". " << names[i % 5]
        << " liked the " << things[(i / 5) % 5] << " very much. The end.";
    }
  }
  ~TempDir() { fs::remove_all(path); }
};

std::string config_text(const fs::path& dir, const std::string& out, const std::string& kind, int steps) {
  return "name: tiny\nout_dir: " + out + "\nmodel:\n  kind: " + kind +
         "\n  d_model: 16\n  n_layers: 2\n  n_ctx: 24\n  n_heads: 2\n"
         "data:\n  format: dir\n  path: " + (dir / "corpus").string() + "\n  vocab_size: 300\n  cache_dir: " +
         (dir / "cache").string() + "\n  validation:\n    fraction: 0.1\n"
         "train:\n  batch_size: 4\n  steps: " + std::to_string(steps) +
         "\n  lr: 0.01\n  warmup_steps: 2\n  eval_every: 4\n  eval_batches: 2\n  log_every: 2\n  checkpoint_every: 3\n  seed: 7\n";
}

std::vector<std::string> column(const std::string& csv, const std::string& name) {
  report::CsvTable t = report::read_csv(csv);
  int c = t.column(name);
  REQUIRE(c >= 0);
  std::vector<std::string> v;
  for (auto& r : t.rows) v.push_back(r[size_t(c)]);
  return v;
}

}  // namespace

TEST_CASE("training: loss falls, outputs are written, resume is bit-exact") {
  TempDir tmp;
  for (const std::string kind : {"masked_mixer", "llama"}) {
    CAPTURE(kind);
    const std::string a = (tmp.path / ("full_" + kind)).string(), b = (tmp.path / ("split_" + kind)).string();
    RunConfig full = parse_run_config(config_text(tmp.path, a, kind, 12), "full.yaml");
    TrainSummary s = train_run(full, {});
    CHECK(s.steps_done == 12);
    CHECK_FALSE(s.interrupted);
    for (const char* f : {"metrics.csv", "loss.png", "checkpoint.safetensors", "tokenizer.bpe", "config.yaml",
                          "samples.txt"})
      CHECK(fs::exists(fs::path(a) / f));
    std::vector<std::string> losses = column(a + "/metrics.csv", "train_loss");
    REQUIRE(losses.size() == 12);
    CHECK(std::stod(losses.back()) < std::stod(losses.front()));
    REQUIRE(!s.validation.empty());

    // Same run in two invocations: stop after 5 steps (checkpoint), then resume to the end.
    RunConfig split = parse_run_config(config_text(tmp.path, b, kind, 12), "split.yaml");
    TrainOptions first;
    first.stop_after = 5;
    TrainSummary s1 = train_run(split, first);
    CHECK(s1.interrupted);
    CHECK(s1.steps_done == 5);
    TrainOptions again;
    again.resume = true;
    TrainSummary s2 = train_run(split, again);
    CHECK(s2.steps_done == 12);
    CHECK(column(b + "/metrics.csv", "train_loss") == losses);  // every loss, bit for bit (as printed)
    CHECK(column(b + "/metrics.csv", "val_loss") == column(a + "/metrics.csv", "val_loss"));
    CHECK(column(b + "/metrics.csv", "grad_norm") == column(a + "/metrics.csv", "grad_norm"));

    // Refuses to overwrite a finished run silently.
    CHECK_THROWS_WITH_AS(train_run(full, {}), doctest::Contains("already holds a checkpoint"), Error);
  }
}

TEST_CASE("checkpoints: round trip, and corrupt or mismatched files give one clear error") {
  TempDir tmp;
  const std::string out = (tmp.path / "run").string();
  RunConfig rc = parse_run_config(config_text(tmp.path, out, "masked_mixer", 3), "c.yaml");
  train_run(rc, {});
  const std::string ckpt = out + "/checkpoint.safetensors";

  Generator gen(123);
  auto model = make_model(rc.model, gen);
  auto meta = load_checkpoint(ckpt, *model, nullptr);
  CHECK(meta.at("step") == "3");
  CHECK(meta.at("format") == kCheckpointFormat);
  // The loaded weights are the saved ones: saving again gives an identical file.
  const std::string again = (tmp.path / "again.safetensors").string();
  save_checkpoint(again, *model, nullptr, {});
  auto reload = make_model(rc.model, gen);
  load_checkpoint(again, *reload, nullptr);
  auto p0 = model->named_parameters(), p1 = reload->named_parameters();
  for (size_t i = 0; i < p0.size(); ++i) CHECK(p0[i].second.to_vector<float>() == p1[i].second.to_vector<float>());

  // Truncated file.
  const std::string bad = (tmp.path / "truncated.safetensors").string();
  {
    std::ifstream in(ckpt, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(bad, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  CHECK_THROWS_WITH_AS(load_checkpoint(bad, *model, nullptr), doctest::Contains("truncated.safetensors"), Error);
  // A model of another width: the error names the tensor and both shapes, and the model is unchanged.
  ModelConfig wide = rc.model;
  wide.d_model = 32;
  auto other = make_model(wide, gen);
  auto before = other->named_parameters()[0].second.to_vector<float>();
  CHECK_THROWS_WITH_AS(load_checkpoint(ckpt, *other, nullptr), doctest::Contains("checkpoint has [300, 16]"), Error);
  CHECK(other->named_parameters()[0].second.to_vector<float>() == before);
  // Not a checkpoint at all.
  std::ofstream(tmp.path / "junk.safetensors") << "not a safetensors file";
  CHECK_THROWS_AS(load_checkpoint((tmp.path / "junk.safetensors").string(), *model, nullptr), Error);
  CHECK_THROWS_WITH_AS(load_checkpoint((tmp.path / "missing.safetensors").string(), *model, nullptr),
                       doctest::Contains("missing.safetensors"), Error);
  // Resuming a finished run with a config of another architecture fails before training.
  RunConfig changed = parse_run_config(config_text(tmp.path, out, "masked_mixer", 6), "c.yaml");
  changed.model.d_model = 32;
  TrainOptions resume;
  resume.resume = true;
  CHECK_THROWS_WITH_AS(train_run(changed, resume), doctest::Contains("checkpoint has"), Error);
  // No temporary files are left behind anywhere in the run directory.
  for (auto& e : fs::recursive_directory_iterator(out)) CHECK(e.path().filename().string().find(".tmp") == std::string::npos);
}

TEST_CASE("configs: unknown keys, wrong types and bad values are named") {
  CHECK_THROWS_WITH_AS(parse_run_config("model:\n  d_modle: 8\n", "x.yaml"),
                       doctest::Contains("x.yaml: model.d_modle: unknown key"), Error);
  CHECK_THROWS_WITH_AS(parse_run_config("train:\n  lr: fast\n", "x.yaml"),
                       doctest::Contains("x.yaml: train.lr: expected a number, got 'fast'"), Error);
  CHECK_THROWS_WITH_AS(parse_run_config("model:\n  kind: rnn\n", "x.yaml"),
                       doctest::Contains("model.kind: 'rnn' is not one of masked_mixer, llama, gpt"), Error);
  CHECK_THROWS_WITH_AS(parse_run_config("train:\n  steps: 0\n", "x.yaml"), doctest::Contains("train.steps"), Error);
  CHECK_THROWS_WITH_AS(parse_run_config("model:\n  n_heads: 3\n  kind: llama\n", "x.yaml"),
                       doctest::Contains("n_heads"), Error);
  CHECK_THROWS_WITH_AS(parse_run_config("model: [1, 2]\n", "x.yaml"), doctest::Contains("must be a mapping"), Error);
  CHECK_THROWS_WITH_AS(parse_run_config("train: {lr: 1\n", "x.yaml"), doctest::Contains("x.yaml"), Error);
  CHECK_THROWS_WITH_AS(load_run_config("/nonexistent/run.yaml"), doctest::Contains("does not exist"), Error);
  RunConfig ok = parse_run_config("model:\n  kind: llama\n  d_model: 64\n", "ok.yaml");
  CHECK(ok.name == "ok");
  CHECK(ok.model.d_model == 64);
  CHECK(ok.out_dir == "runs/ok");
}
