// nn/autoencoder: the paper's mixer and transformer autoencoders (docs/paper.md F). Gradchecks of the
// reconstruction loss w.r.t. every parameter, the bottleneck (tokens reach the logits only
// through z), causality of encoder and decoder, learning to reconstruct, names and checkpoints;
// and the training program (experiments/autoencode) end to end on a tiny corpus.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "experiments/autoencode.h"
#include "experiments/data_prep.h"
#include "nn/autoencoder.h"
#include "nn/checkpoint.h"
#include "nn/optim.h"
#include "ops/inplace.h"
#include "tests/lm_train_step.h"
#include "tests/model_configs.h"
#include "tests/temp_dir.h"
#include "tests/test_helpers.h"

using namespace mg;
using namespace mg::test;

namespace {

const TensorOptions kF64{DType::f64};
constexpr int32_t kPad = 0;

// L=2 on each side.
ModelConfig tiny(ModelKind kind) { return tiny_model(kind); }

using Variant = ModelVariant;
std::vector<Variant> variants() {
  return {{"mixer", tiny(ModelKind::masked_mixer)}, {"transformer", tiny(ModelKind::llama)}};
}

// The autoencoder of config c in f64, its weights drawn from Generator(seed).
std::unique_ptr<Autoencoder> f64_autoencoder(const ModelConfig& c, uint64_t seed) {
  Generator gen(seed);
  return make_autoencoder(c, gen, kF64);
}

// Two left-padded sequences (the training layout): the second has two pads in front.
Tensor sample_ids() { return ids_tensor({3, 7, 1, 10, 4, 2, kPad, kPad, 8, 6, 5, 9}, 2, 6); }
// The batcher's labels: the ids with kIgnoreIndex (-100) at the padding positions.
Tensor sample_labels() { return ids_tensor({3, 7, 1, 10, 4, 2, -100, -100, 8, 6, 5, 9}, 2, 6); }

}  // namespace

// ---- gradients ------------------------------------------------------------------------------

TEST_CASE("autoencoders: gradcheck of the reconstruction loss w.r.t. every parameter (f64)") {
  for (const Variant& v : variants()) {
    SUBCASE(v.name) {
      auto model = f64_autoencoder(v.config, 21);
      Tensor ids = sample_ids(), labels = sample_labels();
      auto params = model->named_parameters();
      CHECK(params.size() == (v.config.kind == ModelKind::masked_mixer ? 2 + 2 * 2 * 10 : 2 + 2 * 2 * 9));
      check_grad_each([&] { return reconstruction_loss(model->forward(ids), labels); }, params);
    }
  }
}

TEST_CASE("autoencoders: gradcheck of decode w.r.t. z (the repeat's backward sums over positions)") {
  for (const Variant& v : variants()) {
    SUBCASE(v.name) {
      auto model = f64_autoencoder(v.config, 22);
      Tensor labels = sample_labels();
      check_grad([&](const std::vector<Tensor>& in) { return reconstruction_loss(model->decode(in[0], 6), labels); },
                 {leaf64({2, 8}, 5)});
      check_grad([&](const std::vector<Tensor>& in) { return model->decode(in[0], 3); }, {leaf64_strided({2, 8}, 6)});
    }
  }
}

TEST_CASE("reconstruction_loss: unshifted mean cross-entropy over the non-ignored positions") {
  const int64_t B = 2, T = 3, V = 5;
  Tensor logits = randn({B, T, V}, 3, kF64);
  Tensor labels = ids_tensor({-100, 4, 0, 2, 2, 1}, B, T);
  std::vector<double> lv = vals(logits);
  std::vector<int32_t> y = labels.to_vector<int32_t>();
  double total = 0;
  int n = 0;
  for (int64_t r = 0; r < B * T; ++r) {
    if (y[size_t(r)] == -100) continue;
    double m = -1e300, s = 0;
    for (int64_t k = 0; k < V; ++k) m = std::max(m, lv[size_t(r * V + k)]);
    for (int64_t k = 0; k < V; ++k) s += std::exp(lv[size_t(r * V + k)] - m);
    total += m + std::log(s) - lv[size_t(r * V + y[size_t(r)])];
    ++n;
  }
  check_close(reconstruction_loss(logits, labels), {total / n}, 1e-12);
  check_close(reconstruction_loss(logits, labels, -100, Reduction::sum), {total}, 1e-12);
  CHECK_THROWS_WITH_AS(reconstruction_loss(logits, ids_tensor({1, 2}, 1, 2)), doctest::Contains("reconstruction_loss"),
                       Error);
  check_grad([&](const std::vector<Tensor>& in) { return reconstruction_loss(in[0], labels); },
             {leaf64_transposed({B, T, V}, 9)});
}

// ---- the bottleneck and causality -----------------------------------------------------------

TEST_CASE("autoencoders: forward == decode(encode); z is the encoder's last position; every token reaches z") {
  for (const Variant& v : variants()) {
    SUBCASE(v.name) {
      auto model = f64_autoencoder(v.config, 23);
      Tensor ids = sample_ids();
      Tensor z = model->encode(ids);
      REQUIRE(z.shape() == Shape{2, 8});
      // The logits depend on the tokens only through z: the decoder takes z alone.
      CHECK(max_abs_diff(model->forward(ids), model->decode(z, 6)) == 0.0);
      CHECK(max_abs_diff(z, model->encoder_states(ids).select(1, 5)) == 0.0);
      // Every position, the first one included, reaches z and so the logits.
      Tensor z0 = model->encode(tiny_sequence_ids()), l0 = model->forward(tiny_sequence_ids());
      for (int64_t s = 0; s < 6; ++s) {
        const Tensor changed = tiny_sequence_ids(s);
        CAPTURE(s);
        CHECK(max_abs_diff(model->encode(changed), z0) > 1e-6);
        CHECK(max_abs_diff(model->forward(changed), l0) > 1e-6);
      }
    }
  }
}

TEST_CASE("autoencoders: a token that does not reach z cannot change the logits, although it changes the encoder") {
  // Cut every path between positions in the encoder (mixer: token-mixing matrices and biases
  // zeroed; transformer: value projections zeroed, so attention adds nothing): each encoder
  // position then sees only its own token, and z only the last one. Changing an earlier token
  // changes the encoder's output at its position, but the logits -- at every position, that one
  // included -- stay bit-identical: nothing but z feeds the decoder.
  for (const Variant& v : variants()) {
    SUBCASE(v.name) {
      auto model = f64_autoencoder(v.config, 24);
      {
        NoGradGuard no_grad;
        for (auto& [name, p] : model->named_parameters()) {
          const bool enc = name.rfind("encoder", 0) == 0;
          const bool cut = v.config.kind == ModelKind::masked_mixer ? name.find(".conv.") != std::string::npos
                                                                    : name.find(".v_proj.") != std::string::npos;
          if (enc && cut) assign_(p, zeros(p.shape(), kF64));
        }
      }
      Tensor h0 = model->encoder_states(tiny_sequence_ids()), l0 = model->forward(tiny_sequence_ids());
      for (int64_t s = 0; s < 5; ++s) {
        const Tensor changed = tiny_sequence_ids(s);
        CAPTURE(s);
        Tensor h = model->encoder_states(changed);
        CHECK(max_abs_diff(h.narrow(1, s, 1), h0.narrow(1, s, 1)) > 1e-6);  // the encoder saw it
        CHECK(max_abs_diff(h.select(1, 5), h0.select(1, 5)) == 0.0);        // z did not
        CHECK(max_abs_diff(model->forward(changed), l0) == 0.0);
      }
      // The last token is z's own: changing it changes the logits.
      std::vector<int32_t> last = kTinySequence;
      last[5] = 9;
      CHECK(max_abs_diff(model->forward(ids_tensor(last, 1, 6)), l0) > 1e-6);
    }
  }
}

TEST_CASE("autoencoders: encoder and decoder are causal") {
  for (const Variant& v : variants()) {
    SUBCASE(v.name) {
      auto model = f64_autoencoder(v.config, 25);
      Tensor h0 = model->encoder_states(tiny_sequence_ids());
      for (int64_t s = 1; s < 6; ++s) {
        CAPTURE(s);
        CHECK(max_abs_diff(model->encoder_states(tiny_sequence_ids(s)).narrow(1, 0, s), h0.narrow(1, 0, s)) == 0.0);
      }
      // Decoder: a shorter decode is the prefix of the longer one.
      Tensor z = randn({2, 8}, 4, kF64);
      Tensor full = model->decode(z, 6);
      for (int64_t T = 1; T < 6; ++T) CHECK(max_abs_diff(model->decode(z, T), full.narrow(1, 0, T)) < 1e-12);
    }
  }
}

TEST_CASE("transformer autoencoder: the decoder's logits are the same at every position (attention over equal values)") {
  Generator gen(26);
  auto model = make_autoencoder(tiny(ModelKind::llama), gen, kF64);
  Tensor logits = model->forward(sample_ids());
  double worst = 0;
  for (int64_t t = 1; t < 6; ++t) worst = std::max(worst, max_abs_diff(logits.select(1, t), logits.select(1, 0)));
  CHECK(worst < 1e-12);
  // The mixer's decoder distinguishes positions through its position-indexed mixing weights.
  Generator gen2(26);
  auto mixer = make_autoencoder(tiny(ModelKind::masked_mixer), gen2, kF64);
  Tensor ml = mixer->forward(sample_ids());
  CHECK(max_abs_diff(ml.select(1, 5), ml.select(1, 0)) > 1e-3);
}

// ---- learning -------------------------------------------------------------------------------

TEST_CASE("autoencoders learn to reconstruct a handful of sequences (f32, AdamW)") {
  // Four sequences of 8 distinct tokens (vocabulary 16), no padding.
  const std::vector<int32_t> data = {1, 2,  3, 4, 5,  6,  7,  8,  9, 10, 11, 12, 13, 14, 15, 1,
                                     8, 6,  4, 2, 15, 13, 11, 9,  3, 14, 5,  12, 7,  10, 1,  6};
  Tensor ids = ids_tensor(data, 4, 8);
  for (const Variant& v : variants()) {
    SUBCASE(v.name) {
      ModelConfig c = v.config;
      c.vocab_size = 16;
      c.d_model = 32;
      c.n_ctx = 8;
      c.n_layers = 2;
      c.n_heads = 2;
      Generator gen(27);
      auto model = make_autoencoder(c, gen);
      AdamW opt(model->parameters(), AdamWOptions{3e-3, 0.9, 0.999, 1e-8, 0});
      const std::pair<double, double> losses = minimize(opt, 300, [&] { return reconstruction_loss(model->forward(ids), ids); });
      const double first = losses.first, last = losses.second;
      INFO("loss " << first << " -> " << last);
      REQUIRE(std::isfinite(last));
      if (c.kind == ModelKind::masked_mixer) {
        // Exact reconstruction: every token is the argmax at its position.
        CHECK(last < 0.05 * first);
        NoGradGuard no_grad;
        std::vector<float> lg = model->forward(ids).to_vector<float>();
        int wrong = 0;
        for (size_t r = 0; r < data.size(); ++r) {
          auto row = lg.begin() + long(r * 16);
          if (std::max_element(row, row + 16) - row != data[r]) ++wrong;
        }
        CHECK(wrong == 0);
      } else {
        // Equal logits at every position: the best it can do is each sequence's bag of tokens,
        // a loss of ln 8 (8 distinct tokens per sequence). It gets there, and no further.
        CHECK(last < first - 0.5);
        CHECK(last > std::log(8.0) - 1e-3);
        CHECK(last < std::log(8.0) + 0.1);
      }
    }
  }
}

// ---- names, counts, checkpoints -------------------------------------------------------------

TEST_CASE("autoencoders: state-dict names follow the paper's code; parameter counts") {
  Generator gen(28);
  auto mixer = make_autoencoder(tiny(ModelKind::masked_mixer), gen);
  auto tr = make_autoencoder(tiny(ModelKind::llama), gen);
  std::map<std::string, Shape> m, t;
  for (auto& [n, p] : mixer->named_parameters()) m[n] = p.shape();
  for (auto& [n, p] : tr->named_parameters()) t[n] = p.shape();
  const int64_t V = 11, d = 8, n = 6, f = 32;
  CHECK(mixer->named_parameters().front().first == "wte.weight");
  CHECK(mixer->named_parameters().back().first == "lm_head.weight");
  CHECK(m.at("wte.weight") == Shape{V, d});
  CHECK(m.at("encoderblocks.0.conv.weight") == Shape{n, n, 1});
  CHECK(m.at("encoderblocks.1.seq_layernorm.bias") == Shape{d});
  CHECK(m.at("decoderblocks.1.conv.bias") == Shape{n});
  CHECK(m.at("decoderblocks.0.patch_ff.0.weight") == Shape{f, d});
  CHECK(m.at("lm_head.weight") == Shape{V, d});
  CHECK_FALSE(m.count("encoderblocks.2.conv.weight"));
  CHECK(tr->named_parameters().front().first == "wte.weight");
  CHECK(tr->named_parameters().back().first == "lm_head.weight");
  CHECK(t.at("encoder.model.model.layers.0.self_attn.q_proj.weight") == Shape{d, d});
  CHECK(t.at("encoder.model.model.layers.1.mlp.down_proj.weight") == Shape{d, f});
  CHECK(t.at("decoder.model.model.layers.1.post_attention_layernorm.weight") == Shape{d});
  CHECK_FALSE(t.count("encoder.model.model.norm.weight"));  // no final norm
  // Mixer: 2Vd + 2L (8d^2 + 9d + n^2 + n) (docs/paper.md A.11's block); Llama: 2Vd + 2L (4d^2 + 3df + 2d).
  CHECK(mixer->num_parameters() == 2 * V * d + 2 * 2 * (8 * d * d + 9 * d + n * n + n));
  CHECK(tr->num_parameters() == 2 * V * d + 2 * 2 * (4 * d * d + 3 * d * f + 2 * d));
  CHECK(autoencoder_num_parameters(tiny(ModelKind::masked_mixer)) == mixer->num_parameters());
  CHECK(autoencoder_num_parameters(tiny(ModelKind::llama)) == tr->num_parameters());
  // Unsupported configs are refused by name.
  CHECK_THROWS_WITH_AS(make_autoencoder(tiny(ModelKind::gpt), gen), doctest::Contains("gpt"), Error);
  ModelConfig tied = tiny(ModelKind::masked_mixer);
  tied.tie_weights = true;
  CHECK_THROWS_WITH_AS(make_autoencoder(tied, gen), doctest::Contains("tie_weights"), Error);
  CHECK_THROWS_WITH_AS(mixer->encode(ids_tensor({1, 2, 3, 4, 5, 6, 7}, 1, 7)), doctest::Contains("n_ctx"), Error);
}

TEST_CASE("autoencoders: checkpoint save/load round trip by name") {
  TempDir tmp("mg_autoencoder_test");
  for (const Variant& v : variants()) {
    SUBCASE(v.name) {
      Generator g1(29), g2(30);
      auto a = make_autoencoder(v.config, g1);
      auto b = make_autoencoder(v.config, g2);
      Tensor ids = sample_ids();
      REQUIRE(max_abs_diff(a->forward(ids), b->forward(ids)) > 1e-4);
      const std::string path = tmp.file(std::string(v.name) + ".safetensors");
      save_checkpoint(path, *a, nullptr, {{"note", "test"}});
      auto meta = load_checkpoint(path, *b, nullptr);
      CHECK(meta.at("note") == "test");
      auto pa = a->named_parameters(), pb = b->named_parameters();
      REQUIRE(pa.size() == pb.size());
      for (size_t i = 0; i < pa.size(); ++i) {
        CHECK(pa[i].first == pb[i].first);
        CHECK(pa[i].second.to_vector<float>() == pb[i].second.to_vector<float>());
      }
      CHECK(max_abs_diff(a->forward(ids), b->forward(ids)) == 0.0);
      // The other kind's checkpoint does not load: the error names missing parameters.
      Variant other = v.config.kind == ModelKind::llama ? variants()[0] : variants()[1];
      auto c = make_autoencoder(other.config, g2);
      CHECK_THROWS_WITH_AS(load_checkpoint(path, *c, nullptr), doctest::Contains("missing"), Error);
    }
  }
}

// ---- the training program (experiments/autoencode) -------------------------------------------

namespace {

std::string ae_config(const TempDir& tmp, const std::string& out, const std::string& kind, int steps,
                      const std::string& extra_top = "autoencoder: true\n", const std::string& pad_side = "left") {
  return extra_top + "name: tiny_ae\nout_dir: " + out + "\nmodel:\n  kind: " + kind +
         "\n  d_model: 16\n  n_layers: 1\n  n_ctx: 24\n  n_heads: 2\n"
         "data:\n  format: dir\n  path: " + tmp.file("corpus") + "\n  vocab_size: 300\n  cache_dir: " +
         tmp.file("cache") + "\n  pad_side: " + pad_side + "\n  validation:\n    fraction: 0.1\n"
         "train:\n  batch_size: 4\n  steps: " + std::to_string(steps) +
         "\n  lr: 0.01\n  warmup_steps: 2\n  eval_every: 5\n  eval_batches: 0\n  log_every: 2\n  checkpoint_every: 4\n  seed: 7\n";
}

}  // namespace

TEST_CASE("autoencode: train, resume bit-exactly, reload, evaluate and embed; configs checked") {
  TempDir tmp("mg_autoencode_run");
  const char* names[] = {"Tom", "Anna", "Lily", "Max", "Sue"};
  const char* things[] = {"ball", "cat", "tree", "boat", "cake"};
  for (int i = 0; i < 60; ++i)
    tmp.write("corpus/story" + std::to_string(100 + i) + ".txt",
              std::string("Once upon a time ") + names[i % 5] + " had a " + things[(i / 5) % 5] + ". The end.");
  for (const std::string kind : {"masked_mixer", "llama"}) {
    CAPTURE(kind);
    const std::string a = tmp.file("full_" + kind), b = tmp.file("split_" + kind);
    RunConfig rc = parse_run_config(ae_config(tmp, a, kind, 10), "ae.yaml");
    CHECK(rc.autoencoder);
    TrainSummary s = train_autoencoder(rc, {});
    CHECK(s.steps_done == 10);
    for (const char* f : {"metrics.csv", "loss.png", "checkpoint.safetensors", "tokenizer.bpe", "samples.txt"})
      CHECK(std::filesystem::exists(std::filesystem::path(a) / f));
    REQUIRE(s.validation.size() == 2);
    CHECK(s.validation.back().loss < s.validation.front().loss);
    CHECK(s.num_parameters == autoencoder_num_parameters(rc.model));

    // Stop after 3 steps, resume to the end: the same losses as the uninterrupted run.
    RunConfig split = parse_run_config(ae_config(tmp, b, kind, 10), "ae.yaml");
    TrainOptions first;
    first.stop_after = 3;
    CHECK(train_autoencoder(split, first).interrupted);
    TrainOptions again;
    again.resume = true;
    TrainSummary s2 = train_autoencoder(split, again);
    REQUIRE(s2.validation.size() == 2);  // at steps 5 and 10
    CHECK(s2.validation.front().loss == s.validation.front().loss);
    CHECK(s2.validation.back().loss == s.validation.back().loss);

    // The run reloads; the evaluation over the whole validation split is the run's last one.
    AutoencoderRun r = load_autoencoder_run(a);
    CHECK(r.rc.model.kind == rc.model.kind);
    PreparedData d = prepare_data(r.rc.data);
    BatcherOptions bo = run_batcher_options(r.rc, r.tok);
    bo.shuffle = false;
    ValidationBatches vb(d.validation, bo);
    AutoencoderEval e = evaluate_autoencoder(*r.model, vb, 0);
    CHECK(std::abs(e.loss - s.validation.back().loss) < 1e-5 * (1 + e.loss));
    CHECK(e.token_accuracy >= 0.0);
    CHECK(e.token_accuracy <= 1.0);
    CHECK(e.tokens > 0);
    CHECK(e.bag_of_tokens > 0.1);
    // The transformer's position-blind decoder cannot beat the bag-of-tokens bound.
    if (kind == "llama") CHECK(e.loss >= e.bag_of_tokens - 1e-6);

    // Embeddings are z of each sequence left-padded to n_ctx, independent of the batch.
    std::vector<std::vector<int32_t>> seqs = {{5, 6, 7}, {8, 9, 10, 11, 12}, {13}};
    Tensor z = autoencoder_embeddings(*r.model, seqs, r.tok.pad_id(), 2);
    REQUIRE(z.shape() == Shape{3, 16});
    std::vector<int32_t> padded(24, r.tok.pad_id());
    padded[21] = 5, padded[22] = 6, padded[23] = 7;
    Tensor z0 = r.model->encode(ids_tensor(padded, 1, 24));
    CHECK(max_abs_diff(z.narrow(0, 0, 1), z0) < 1e-6);
    CHECK(max_abs_diff(autoencoder_embeddings(*r.model, {seqs[0]}, r.tok.pad_id(), 1), z0) < 1e-6);
    CHECK(reconstruct(*r.model, seqs[1], r.tok.pad_id()).size() == 5);
  }
  // An autoencoder config is not a language-model config, and vice versa; right padding is refused.
  RunConfig ae = parse_run_config(ae_config(tmp, tmp.file("x"), "masked_mixer", 2), "ae.yaml");
  CHECK_THROWS_WITH_AS(train_run(ae, {}), doctest::Contains("mixgrad autoencode train"), Error);
  RunConfig lm = parse_run_config(ae_config(tmp, tmp.file("x"), "masked_mixer", 2, ""), "lm.yaml");
  CHECK_THROWS_WITH_AS(train_autoencoder(lm, {}), doctest::Contains("autoencoder: true"), Error);
  RunConfig right = parse_run_config(ae_config(tmp, tmp.file("x"), "masked_mixer", 2, "autoencoder: true\n", "right"),
                                     "r.yaml");
  CHECK_THROWS_WITH_AS(train_autoencoder(right, {}), doctest::Contains("pad_side: left"), Error);
  RunConfig gpt = parse_run_config(ae_config(tmp, tmp.file("x"), "gpt", 2), "g.yaml");
  CHECK_THROWS_WITH_AS(train_autoencoder(gpt, {}), doctest::Contains("masked_mixer or llama"), Error);
  CHECK_THROWS_WITH_AS(parse_run_config("autoencoder: maybe\n", "bad.yaml"), doctest::Contains("autoencoder"), Error);
}
