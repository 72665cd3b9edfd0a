// Op/module instrumentation (autograd/instrument.h) and anomaly mode (autograd/anomaly.h): ops
// report their outputs under the state-dict path of the module that ran them, and the first
// NaN/Inf, forward or backward, throws naming the op, the module and the step.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <set>
#include <string>

#include "autograd/anomaly.h"
#include "autograd/instrument.h"
#include "core/error.h"
#include "core/factories.h"
#include "nn/layers.h"
#include "nn/lm_loss.h"
#include "nn/lm.h"
#include "nn/model_config.h"
#include "ops/losses.h"
#include "ops/ops.h"
#include "tests/model_configs.h"
#include "train/trainer.h"

using namespace mg;

namespace {

std::unique_ptr<LanguageModel> tiny(ModelKind kind, MixerForm form = MixerForm::flat) {
  Generator gen(5);
  return make_model(test::tiny_model(kind, form), gen);
}

// Sets one element of the parameter `name` (CPU f32) to `value`.
void poison(Module& m, const std::string& name, int64_t flat, float value) {
  for (auto& [n, p] : m.named_parameters())
    if (n == name) {
      p.data_ptr<float>()[flat] = value;
      return;
    }
  FAIL("no parameter ", name);
}

std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("instrument: ops report under the state-dict path of the module that ran them, forward and backward") {
  for (MixerForm form : {MixerForm::flat, MixerForm::expanded, MixerForm::multihead}) {
    CAPTURE(int(form));
    auto model = tiny(ModelKind::masked_mixer, form);
    std::set<std::string> fwd, bwd;
    size_t forward_events = 0;
    {
      OpObserverGuard g([&](const OpEvent& ev) {
        (ev.backward ? bwd : fwd).insert(ev.module_path + ":" + ev.op);
        if (!ev.backward) {
          ++forward_events;
          CHECK(ev.output->defined());
          CHECK(ev.input_index == -1);
          CHECK(ev.seconds >= 0);
        }
      });
      Tensor ids = test::tiny_sequence_ids();
      shifted_lm_loss(model->forward(ids), ids).backward();
    }
    CHECK(forward_events > 20);
    CHECK(fwd.count("wte:embedding"));
    CHECK(fwd.count("mixerblocks.0.seq_layernorm:layer_norm"));
    CHECK(fwd.count("mixerblocks.1.patch_ff.0:matmul"));
    CHECK(fwd.count("lm_head:matmul"));
    CHECK(bwd.count("mixerblocks.1.patch_layernorm:layer_norm"));
    CHECK(bwd.count("lm_head:matmul"));
    if (form == MixerForm::flat) CHECK(fwd.count("mixerblocks.0.conv:masked_token_mix"));
    if (form == MixerForm::expanded) CHECK(fwd.count("mixerblocks.1.conv.2:masked_token_mix"));
    if (form == MixerForm::multihead) {
      CHECK(fwd.count("mixerblocks.0.conv.convs:masked_token_mix_heads"));
      CHECK(bwd.count("mixerblocks.0.conv.convs:masked_token_mix_heads"));
      CHECK(fwd.count("mixerblocks.0.conv.proj_head:matmul_bias"));  // a Linear with a bias
    }
    // Every path names a module of the state dict.
    std::set<std::string> prefixes{""};
    for (auto& [n, p] : model->named_parameters())
      for (size_t i = n.find('.'); i != std::string::npos; i = n.find('.', i + 1)) prefixes.insert(n.substr(0, i));
    for (const auto& s : fwd) CHECK_MESSAGE(prefixes.count(s.substr(0, s.find(':'))), s);
  }
  CHECK(current_module_path().empty());
}

TEST_CASE("instrument: Llama and GPT paths; observers nest; nothing reported without one") {
  for (ModelKind kind : {ModelKind::llama, ModelKind::gpt}) {
    auto model = tiny(kind);
    std::set<std::string> outer, inner;
    Tensor ids = test::tiny_sequence_ids();
    OpObserverGuard a([&](const OpEvent& ev) { outer.insert(ev.module_path + ":" + ev.op); });
    {
      OpObserverGuard b([&](const OpEvent& ev) { inner.insert(ev.module_path + ":" + ev.op); });
      shifted_lm_loss(model->forward(ids), ids).backward();
    }
    CHECK(outer == inner);
    if (kind == ModelKind::llama) {
      CHECK(inner.count("model.layers.1.self_attn:scaled_dot_product_attention"));
      CHECK(inner.count("model.layers.0.self_attn:rope"));
      CHECK(inner.count("model.layers.0.mlp:swiglu"));
      CHECK(inner.count("model.norm:rms_norm"));
    } else {
      CHECK(inner.count("transformer.h.0.attn.c_attn:matmul_bias"));
      CHECK(inner.count("transformer.h.1.ln_2:layer_norm"));
    }
  }
  CHECK_FALSE(observing());
}

TEST_CASE("instrument: every op of a training step times itself (no unscoped reports)") {
  for (ModelKind kind : {ModelKind::masked_mixer, ModelKind::llama}) {
    auto model = tiny(kind);
    const size_t before = detail::unscoped_reports();
    OpObserverGuard g([](const OpEvent&) {});
    Tensor ids = test::tiny_sequence_ids();
    shifted_lm_loss(model->forward(ids), ids).backward();
    CHECK(detail::unscoped_reports() == before);
  }
}

TEST_CASE("anomaly: a NaN parameter is caught at the first op whose output it reaches, with op and module") {
  auto model = tiny(ModelKind::masked_mixer);
  poison(*model, "mixerblocks.1.patch_layernorm.weight", 3, std::numeric_limits<float>::quiet_NaN());
  AnomalyModeGuard anomaly;
  anomaly.set_context("step 7");
  Tensor ids = test::tiny_sequence_ids();
  const std::string msg = message_of([&] { shifted_lm_loss(model->forward(ids), ids); });
  INFO(msg);
  CHECK(msg.find("forward output of op 'layer_norm'") != std::string::npos);
  CHECK(msg.find("module 'mixerblocks.1.patch_layernorm'") != std::string::npos);
  CHECK(msg.find("NaN at [0, 0, 3]") != std::string::npos);
  CHECK(msg.find("f32[1, 6, 8]") != std::string::npos);  // the output's shape
  CHECK(msg.find("step 7") != std::string::npos);
}

TEST_CASE("anomaly: an Inf that only the backward makes names the backward node and its module") {
  // sqrt is finite at 0 but its gradient there is Inf.
  Tensor x = from_vector(std::vector<float>{4, 0, 1}, Shape{3}).set_requires_grad(true);
  Tensor loss;
  {
    ModuleScope probe("probe");
    ModuleScope inner("root");
    loss = sum(sqrt(x));
  }
  AnomalyModeGuard anomaly;
  const std::string msg = message_of([&] { loss.backward(); });
  CHECK(msg.find("backward of op 'sqrt', gradient for input 0") != std::string::npos);
  CHECK(msg.find("module 'probe.root'") != std::string::npos);
  CHECK(msg.find("Inf at [1]") != std::string::npos);
}

TEST_CASE("anomaly: train.detect_anomaly makes the Trainer name the op and the step of the first overflow") {
  Generator gen(3);
  Linear model(4, 2, true, gen);
  TrainSettings s;
  s.steps = 5;
  s.lr = 1e30;
  s.grad_clip = 0;
  s.warmup_steps = 0;
  s.eval_every = 0;
  s.detect_anomaly = true;
  Trainer t(model, s, {"", false, -1, "blowup", false});
  struct Data : DataSource<int> {
    int next() override { return i++; }
    SourceState state() const override { return {}; }
    void restore(const SourceState&, const std::string&) override {}
    int i = 0;
  } data;
  const std::string msg = message_of([&] {
    t.fit<int>(data, [&](const int& i) {
      Tensor x = randn({8, 4}, 100 + uint64_t(i));
      return StepLoss{mse_loss(model.forward(x), zeros({8, 2})), 8};
    });
  });
  INFO(msg);
  CHECK(msg.rfind("anomaly: ", 0) == 0);
  CHECK(msg.find("step 2") != std::string::npos);  // step 1's update makes the weights ~1e30
  CHECK(msg.find("in module") != std::string::npos);
}
