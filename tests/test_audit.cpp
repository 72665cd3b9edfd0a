// experiments/audit.h (`mixgrad audit`): on tiny masked mixers (flat, expanded, multihead), Llama
// and GPT-1 every gradient entry agrees with f64 central differences within the bound, a wrong
// gradient is caught, masked token-mixing gradients are exactly zero (and a nonzero one is
// caught), and audit.safetensors holds the tensors under the documented names.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "autograd/instrument.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "experiments/audit.h"
#include "experiments/run_config.h"
#include "nn/checkpoint.h"
#include "nn/lm.h"
#include "nn/lm_loss.h"
#include "temp_dir.h"

using namespace mg;

namespace {

// A tiny run config: V = 260 (the smallest data.vocab_size allowed is 259), d = 8, 2 layers,
// n = 6, 2 heads; the multihead mixer has 2 heads, the expanded one expansion 2. Its corpus
// (`corpus_dir`, default: a path that does not exist) is a directory of .txt files.
std::string tiny_config(const test::TempDir& dir, const std::string& kind, const std::string& form,
                        const std::string& corpus_dir = "") {
  return "name: tiny_" + kind + "_" + form + "\nmodel:\n  kind: " + kind + "\n  mixer_form: " + form +
         "\n  d_model: 8\n  n_layers: 2\n  n_ctx: 6\n  n_heads: 2\n  mixer_heads: 2\n  mixer_expansion: 2\n"
         "data:\n  format: dir\n  path: " + (corpus_dir.empty() ? dir.file("no_corpus") : corpus_dir) +
         "\n  vocab_size: 260\n  cache_dir: " + dir.file("cache") +
         "\n  validation:\n    fraction: 0.1\n"
         "train:\n  batch_size: 2\n  lr: 0.01\n  warmup_steps: 2\n  steps: 10\n  seed: 5\n";
}

struct Variant {
  const char* kind;
  const char* form;
};
const Variant kVariants[] = {{"masked_mixer", "flat"},
                             {"masked_mixer", "expanded"},
                             {"masked_mixer", "multihead"},
                             {"llama", "flat"},
                             {"gpt", "flat"}};

AuditOptions tiny_options(const test::TempDir& dir, const Variant& v) {
  AuditOptions o;
  o.config = dir.write(std::string(v.kind) + "_" + v.form + ".yaml", tiny_config(dir, v.kind, v.form));
  o.out = dir.file(std::string("out_") + v.kind + "_" + v.form);
  o.data = "synthetic";
  o.quiet = true;
  return o;
}

}  // namespace

TEST_CASE("audit: every gradient entry of tiny mixers, Llama and GPT-1 matches f64 finite differences") {
  test::TempDir dir("mg_audit");
  for (const Variant& v : kVariants) {
    const std::string label = std::string(v.kind) + " " + v.form;
    CAPTURE(label);
    const AuditOptions o = tiny_options(dir, v);
    const AuditResult r = run_audit_experiment(o);
    CHECK(r.fd_ok);
    CHECK(r.worst_rel <= kAuditDefaultBound);
    MESSAGE(label << ": worst FD rel err " << r.worst_rel << " (" << r.worst_param
                   << "), worst abs " << r.worst_abs);
    // Tiny models have every entry of every parameter checked.
    int64_t checked = 0;
    for (const FdRow& f : r.fd) {
      CHECK(f.checked == numel(f.shape));
      checked += f.checked;
    }
    CHECK(checked == r.num_parameters);
    CHECK(r.loss == doctest::Approx(r.loss_f64).epsilon(1e-5));
    const bool mixer = std::string(v.kind) == "masked_mixer";
    CHECK(r.masked_applicable == mixer);
    if (mixer) {
      // 2 layers; flat: one [6, 6] matrix (15 above the diagonal); expanded: [12, 6] (15 + 6*0
      // ... every (i, j) with j > i) and [6, 12]; multihead: 2 heads of [6, 6]; f32 and f64.
      const int64_t per_block = std::string(v.form) == "flat"       ? 15
                                : std::string(v.form) == "expanded" ? 15 + (15 + 6 * 6)
                                                                    : 2 * 15;
      CHECK(r.masked_checked == 2 * 2 * per_block);
      CHECK(r.masked_nonzero == 0);
    }
    CHECK(r.ok());
    for (const NormRow& n : r.norms) {
      CHECK(std::isfinite(n.grad_norm));
      // Zero-initialised biases (GPT) have no ratio; every other parameter moves.
      if (n.weight_norm > 0) CHECK(n.adamw_ratio > 0);
    }
    CHECK(std::filesystem::exists(o.out + "/norms.png"));
    CHECK(std::filesystem::exists(o.out + "/fd_check.csv"));
  }
}

TEST_CASE("audit: audit.safetensors holds logits, loss and every gradient under its state-dict name") {
  test::TempDir dir("mg_audit");
  const AuditOptions o = tiny_options(dir, kVariants[0]);
  const AuditResult r = run_audit_experiment(o);
  const SafetensorsFile f = load_safetensors(o.out + "/audit.safetensors");
  // The same model and batch, built here: the saved tensors are its f32 logits, loss and gradients.
  RunConfig rc = load_run_config(o.config);
  Generator gen(rc.train.seed);
  auto model = make_model(rc.model, gen);
  const Tensor ids = f.get("inputs");
  CHECK(ids.shape() == Shape{2, 6});
  Tensor logits = model->forward(ids);
  Tensor loss = shifted_lm_loss(logits, f.get("labels"));
  loss.backward();
  CHECK(f.get("logits").to_vector<float>() == logits.to_vector<float>());
  CHECK(f.get("loss").item() == loss.item());
  CHECK(f.get("loss").item() == r.loss);
  CHECK(f.contains("grad.mixerblocks.0.conv.weight"));
  int grads = 0;
  for (const auto& entry : model->named_parameters()) {
    // a named copy, not a structured binding: clang 14 cannot capture bindings in CAPTURE's lambda
    const std::string& name = entry.first;
    const Tensor& p = entry.second;
    CAPTURE(name);
    REQUIRE(f.contains("grad." + name));
    CHECK(f.get("grad." + name).to_vector<float>() == p.grad().to_vector<float>());
    ++grads;
  }
  CHECK(f.tensors.size() == size_t(4 + grads));  // inputs, labels, logits, loss, the gradients
  CHECK(f.metadata.at("model") == r.model);
}

TEST_CASE("audit: a wrong gradient fails the finite-difference check") {
  test::TempDir dir("mg_audit");
  for (const Variant& v : {kVariants[0], kVariants[4]}) {
    const std::string label = v.kind;
    CAPTURE(label);
    AuditOptions o = tiny_options(dir, v);
    // Sampled mode (the largest |gradient| of each parameter and 3 random entries): the
    // corrupted entry is the largest, so it is among those checked.
    o.fd_all_below = 0;
    o.fd_samples = 4;
    const std::string target = std::string(v.kind) == "gpt" ? "transformer.h.1.mlp.c_fc.weight"
                                                            : "mixerblocks.1.patch_ff.0.weight";
    // A gradient 0.1% too large in one entry: the kind of error a wrong backward formula gives.
    o.after_f64_backward = [&](Module& m) {
      for (const auto& [name, p] : m.named_parameters())
        if (name == target) {
          Tensor g = p.grad();
          double* d = g.data_ptr<double>();
          int64_t best = 0;
          for (int64_t i = 0; i < g.numel(); ++i)
            if (std::abs(d[i]) > std::abs(d[best])) best = i;
          d[best] *= 1.001;
          return;
        }
      FAIL("no parameter ", target);
    };
    const AuditResult r = run_audit_experiment(o);
    CHECK_FALSE(r.fd_ok);
    CHECK_FALSE(r.ok());
    CHECK(r.worst_param == target);
    CHECK(r.worst_rel > 2 * kAuditDefaultBound);
  }
}

TEST_CASE("audit: a nonzero masked (upper-triangle) gradient fails, however small") {
  test::TempDir dir("mg_audit");
  for (const Variant& v : {kVariants[0], kVariants[1], kVariants[2]}) {
    const std::string label = v.form;
    CAPTURE(label);
    AuditOptions o = tiny_options(dir, v);
    o.fd_all_below = 0;
    o.fd_samples = 2;
    const std::string target = std::string(v.form) == "flat"       ? "mixerblocks.0.conv.weight"
                               : std::string(v.form) == "expanded" ? "mixerblocks.0.conv.2.weight"
                                                                   : "mixerblocks.0.conv.convs.weight";
    o.after_f64_backward = [&](Module& m) {
      for (const auto& [name, p] : m.named_parameters())
        if (name == target) p.grad().data_ptr<double>()[1] = 1e-300;  // row 0, column 1: above the diagonal
    };
    const AuditResult r = run_audit_experiment(o);
    CHECK(r.masked_nonzero == 1);
    CHECK(r.masked_first_bad.find(target) == 0);
    CHECK(r.fd_ok);  // far below what finite differences can see
    CHECK_FALSE(r.ok());
  }
}

TEST_CASE("audit: the batch from the config's corpus, and from a checkpoint with its AdamW moments") {
  test::TempDir dir("mg_audit");
  test::write_story_corpus(dir);
  AuditOptions o;
  o.config = dir.write("mixer.yaml", tiny_config(dir, "masked_mixer", "flat", dir.file("corpus")));
  o.out = dir.file("out_corpus");
  o.quiet = true;
  o.fd_all_below = 0;
  AuditResult r = run_audit_experiment(o);
  CHECK(r.data.rfind("corpus:", 0) == 0);
  CHECK(r.ok());

  // A checkpoint of a model that has taken one AdamW step.
  RunConfig rc = load_run_config(o.config);
  Generator gen(3);
  auto model = make_model(rc.model, gen);
  AdamW opt(model->parameters());
  shifted_lm_loss(model->forward(load_safetensors(o.out + "/audit.safetensors").get("inputs")),
                  load_safetensors(o.out + "/audit.safetensors").get("labels"))
      .backward();
  opt.step();
  const std::string ckpt = dir.file("run/checkpoint.safetensors");
  std::filesystem::create_directories(dir.file("run"));
  save_checkpoint(ckpt, *model, &opt, {{"config", rc.source_yaml}, {"step", "1"}});
  AuditOptions c;
  c.checkpoint = ckpt;
  c.out = dir.file("out_ckpt");
  c.data = "synthetic";
  c.quiet = true;
  c.fd_all_below = 0;
  r = run_audit_experiment(c);
  CHECK(r.ok());
  CHECK(r.lr_note.find("checkpoint's AdamW moments") != std::string::npos);
  CHECK(r.lr == doctest::Approx(0.005));  // warmup: step 1 of 2 at peak 0.01
}

TEST_CASE("audit: bad input gets one clear error") {
  test::TempDir dir("mg_audit");
  AuditOptions o;
  o.checkpoint = dir.file("missing.safetensors");
  o.out = dir.file("out_bad");
  o.quiet = true;
  CHECK_THROWS_WITH_AS(run_audit_experiment(o), doctest::Contains("missing.safetensors"), Error);
  o.checkpoint.clear();
  o.config = dir.write("bad.yaml", "model:\n  kind: masked_mixer\n  d_modle: 8\n");
  CHECK_THROWS_WITH_AS(run_audit_experiment(o), doctest::Contains("d_modle"), Error);
  bool help = false;
  CHECK_THROWS_WITH_AS(parse_audit_args({"x.yaml", "--fd-sample", "3"}, help), doctest::Contains("--fd-sample"), Error);
  CHECK_THROWS_WITH_AS(parse_audit_args({}, help), doctest::Contains("CONFIG.yaml"), Error);
  CHECK_THROWS_WITH_AS(parse_audit_args({"x.yaml", "--checkpoint", "c"}, help), doctest::Contains("exactly one"), Error);
  o.config = dir.write("ok.yaml", tiny_config(dir, "llama", "flat"));
  o.data = "corpus";  // the config's corpus directory does not exist
  CHECK_THROWS_AS(run_audit_experiment(o), Error);
  o.data = "sometimes";
  CHECK_THROWS_WITH_AS(run_audit_experiment(o), doctest::Contains("--data"), Error);
  CHECK_FALSE(std::filesystem::exists(o.out));
}

TEST_CASE("audit --activations: every module's output and its gradient, under the module's path") {
  test::TempDir dir("mg_audit");
  for (const Variant& v : {kVariants[1], kVariants[3]}) {
    const std::string label = std::string(v.kind) + " " + v.form;
    CAPTURE(label);
    AuditOptions o = tiny_options(dir, v);
    o.activations = true;
    o.fd_all_below = 0;
    o.fd_samples = 1;
    const AuditResult r = run_audit_experiment(o);
    CHECK(r.ok());
    const SafetensorsFile f = load_safetensors(o.out + "/audit.safetensors");
    const bool mixer = std::string(v.kind) == "masked_mixer";
    // The last module's output is the logits; its gradient is d(mean loss)/d(logits).
    const Tensor head = f.get("act.lm_head");
    CHECK(head.to_vector<float>() == f.get("logits").to_vector<float>());
    const std::vector<float> g = f.get("act_grad.lm_head").to_vector<float>();
    // Row t of the gradient is (softmax(logits[t]) - onehot(label[t+1])) / (scored positions):
    // each row sums to zero, the last position of each sequence predicts nothing.
    const int64_t V = head.size(2), T = head.size(1);
    for (int64_t row = 0; row < head.size(0) * T; ++row) {
      double sum = 0, mag = 0;
      for (int64_t k = 0; k < V; ++k) {
        sum += g[size_t(row * V + k)];
        mag += std::abs(g[size_t(row * V + k)]);
      }
      CHECK(std::abs(sum) < 1e-7);
      if (row % T == T - 1) CHECK(mag == 0);
      else CHECK(mag > 0);
    }
    const std::string block = mixer ? "mixerblocks.1" : "model.layers.1";
    const std::string mix = mixer ? "mixerblocks.0.conv" : "model.layers.0.self_attn";
    for (const std::string& m : {block, mix, std::string(mixer ? "wte" : "model.embed_tokens")}) {
      CAPTURE(m);
      CHECK(f.contains("act." + m));
      CHECK(f.contains("act_grad." + m));
      CHECK(f.get("act." + m).shape() == Shape{2, 6, 8});
    }
    CHECK_FALSE(f.contains(mixer ? "act.mixerblocks" : "act.model.layers"));  // a ModuleList, not a module
    CHECK(r.activations_saved >= 8);
  }
}

TEST_CASE("audit --detect-anomaly: a non-finite weight is reported at the op that first made NaN") {
  test::TempDir dir("mg_audit");
  AuditOptions o = tiny_options(dir, kVariants[0]);
  RunConfig rc = load_run_config(o.config);
  Generator gen(1);
  auto model = make_model(rc.model, gen);
  for (const auto& [name, p] : model->named_parameters())
    if (name == "mixerblocks.1.conv.bias") p.data_ptr<float>()[2] = NAN;
  AuditOptions c = o;
  c.config.clear();
  c.checkpoint = dir.file("nan.safetensors");
  save_checkpoint(c.checkpoint, *model, nullptr, {{"config", rc.source_yaml}});
  CHECK_THROWS_WITH_AS(run_audit_experiment(c), doctest::Contains("loss of the batch is nan"), Error);
  c.detect_anomaly = true;
  CHECK_THROWS_WITH_AS(run_audit_experiment(c), doctest::Contains("mixerblocks.1.conv"), Error);
  // Finite models pass in anomaly mode.
  o.detect_anomaly = true;
  o.fd_all_below = 0;
  o.fd_samples = 1;
  CHECK(run_audit_experiment(o).ok());
}
