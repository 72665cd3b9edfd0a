// An autoencoder's encoder as a language model (nn/autoencoder_encoder.h) and the program that
// writes it as a checkpoint (experiments/encoder_export.h, `mixgrad autoencode encoder`): the
// language model's last-position state of a left-padded input is the autoencoder's z, its
// embedding (experiments/embedding.h) is z for the mixer and has z's cosines for Llama; the
// checkpoint loads as a language model and records its source; non-autoencoder runs are refused.
#include <cmath>
#include <filesystem>
#include <map>

#include "autograd/grad_mode.h"
#include "data/shards.h"
#include "experiments/autoencode.h"
#include "experiments/embedding.h"
#include "experiments/encoder_export.h"
#include "experiments/lm_run.h"
#include "nn/autoencoder_encoder.h"
#include "nn/checkpoint.h"
#include "ops/inplace.h"
#include "tests/model_configs.h"
#include "tests/temp_dir.h"
#include "tests/test_helpers.h"

using namespace mg;
using namespace mg::test;

namespace {

constexpr int32_t kPad = 0;

std::vector<ModelVariant> variants() {
  return {{"mixer flat", small_model(ModelKind::masked_mixer)},
          {"mixer multihead", small_model(ModelKind::masked_mixer, MixerForm::multihead)},
          {"llama", small_model(ModelKind::llama)}};
}

// Three sequences of different lengths, left-padded to n_ctx (16) as the autoencoder trains.
PaddedBatch left_padded(int64_t n_ctx) {
  const std::vector<std::vector<int32_t>> seqs = {{5, 9, 17, 3}, {40, 2, 2, 8, 33, 61, 7, 12, 19}, {63}};
  const std::vector<int64_t> rows = {0, 1, 2};
  return pad_batch(seqs, rows, kPad, PadSide::left, n_ctx);
}

// Cosine similarity of every row of a with every row of b ([N, D] each), row-major.
std::vector<double> cosines(const Tensor& a, const Tensor& b) {
  const int64_t n = a.size(0), d = a.size(1);
  std::vector<double> x = vals(a), y = vals(b), out;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double dot = 0, nx = 0, ny = 0;
      for (int64_t k = 0; k < d; ++k) {
        dot += x[size_t(i * d + k)] * y[size_t(j * d + k)];
        nx += x[size_t(i * d + k)] * x[size_t(i * d + k)];
        ny += y[size_t(j * d + k)] * y[size_t(j * d + k)];
      }
      out.push_back(dot / std::sqrt(nx * ny));
    }
  return out;
}

// Checks that lm is ae's encoder: hidden states, z at the last position, and the embedding.
void check_is_encoder(Autoencoder& ae, LanguageModel& lm) {
  const ModelConfig& c = ae.config();
  PaddedBatch b = left_padded(c.n_ctx);
  Tensor z = ae.encode(b.ids);
  Tensor h = lm.hidden_states(b.ids, int(c.n_layers));
  CHECK(max_abs_diff(h, ae.encoder_states(b.ids)) < 1e-6);
  CHECK(max_abs_diff(h.select(1, c.n_ctx - 1), z) < 1e-6);
  // The embedding `retrieve --position last --pad-side left` takes.
  Tensor e = embed_batch(lm, b, EmbedPosition::last);
  REQUIRE(e.shape() == z.shape());
  if (c.kind == ModelKind::masked_mixer) {
    CHECK(max_abs_diff(e, z) < 1e-6);  // no final norm
  } else {
    // The final RMSNorm of ones divides each z by its root mean square: the same cosines.
    std::vector<double> zv = vals(z), ev = vals(e);
    const int64_t d = c.d_model;
    for (int64_t i = 0; i < z.size(0); ++i) {
      double ms = 0;
      for (int64_t k = 0; k < d; ++k) ms += zv[size_t(i * d + k)] * zv[size_t(i * d + k)] / double(d);
      for (int64_t k = 0; k < d; ++k)
        CHECK(std::abs(ev[size_t(i * d + k)] - zv[size_t(i * d + k)] / std::sqrt(ms + c.resolved_norm_eps())) < 1e-5);
    }
    CHECK(max_abs_diff(e, z) > 1e-3);  // the norm did rescale
  }
  std::vector<double> cz = cosines(z, z), ce = cosines(e, e);
  for (size_t i = 0; i < cz.size(); ++i) CHECK(std::abs(cz[i] - ce[i]) < 1e-6);
}

}  // namespace

TEST_CASE("encoder_language_model: the language model's last-position state of a left-padded input is z") {
  for (const ModelVariant& v : variants()) {
    SUBCASE(v.name) {
      Generator gen(31);
      auto ae = make_autoencoder(v.config, gen);
      auto lm = encoder_language_model(*ae);
      CHECK(lm->config().kind == v.config.kind);
      CHECK(lm->num_layers() == v.config.n_layers);
      check_is_encoder(*ae, *lm);

      // The weights by name: encoder blocks kept, decoder blocks dropped, llama's norm ones.
      std::map<std::string, Tensor> p;
      for (auto& [n, t] : lm->named_parameters()) p[n] = t;
      std::map<std::string, Tensor> a;
      for (auto& [n, t] : ae->named_parameters()) a[n] = t;
      const bool mixer = v.config.kind == ModelKind::masked_mixer;
      const int64_t d = v.config.d_model, V = v.config.vocab_size;
      CHECK(max_abs_diff(p.at(mixer ? "wte.weight" : "model.embed_tokens.weight"), a.at("wte.weight")) == 0.0);
      CHECK(max_abs_diff(p.at("lm_head.weight"), a.at("lm_head.weight")) == 0.0);
      if (mixer) {
        CHECK(max_abs_diff(p.at("mixerblocks.1.patch_ff.2.weight"), a.at("encoderblocks.1.patch_ff.2.weight")) == 0.0);
        CHECK(max_abs_diff(p.at("mixerblocks.1.patch_ff.2.weight"), a.at("decoderblocks.1.patch_ff.2.weight")) > 1e-3);
      } else {
        CHECK(max_abs_diff(p.at("model.layers.1.self_attn.k_proj.weight"),
                           a.at("encoder.model.model.layers.1.self_attn.k_proj.weight")) == 0.0);
        CHECK(vals(p.at("model.norm.weight")) == std::vector<double>(size_t(d), 1.0));
      }
      // An LM holds wte, L blocks and lm_head (+ llama's norm): the autoencoder less its decoder.
      const int64_t blocks = (ae->num_parameters() - 2 * V * d) / 2;
      CHECK(lm->num_parameters() == 2 * V * d + blocks + (mixer ? 0 : d));
      CHECK(lm->num_parameters() == lm->config().expected_num_parameters());
      // Copies: changing the language model leaves the autoencoder as it was.
      Tensor before = ae->encode(left_padded(v.config.n_ctx).ids);
      {
        NoGradGuard no_grad;
        fill_(lm->token_embedding_weight(), 0.5);
      }
      CHECK(max_abs_diff(ae->encode(left_padded(v.config.n_ctx).ids), before) == 0.0);
    }
  }
}

// ---- the program ----------------------------------------------------------------------------

namespace {

std::string run_config(const TempDir& tmp, const std::string& out, const std::string& kind, bool autoencoder) {
  return std::string(autoencoder ? "autoencoder: true\n" : "") + "name: tiny\nout_dir: " + out +
         "\nmodel:\n  kind: " + kind + "\n  d_model: 16\n  n_layers: 2\n  n_ctx: 24\n  n_heads: 2\n"
         "data:\n  format: dir\n  path: " + tmp.file("corpus") + "\n  vocab_size: 300\n  cache_dir: " +
         tmp.file("cache") + "\n  pad_side: left\n  validation:\n    fraction: 0.1\n"
         "train:\n  batch_size: 4\n  steps: 3\n  lr: 0.01\n  warmup_steps: 1\n  eval_every: 0\n  log_every: 1\n"
         "  checkpoint_every: 0\n  seed: 7\n";
}

}  // namespace

TEST_CASE("autoencode encoder: the exported checkpoint loads as a language model that embeds as the encoder") {
  namespace fs = std::filesystem;
  TempDir tmp("mg_ae_encoder");
  write_story_corpus(tmp);
  for (const std::string kind : {"masked_mixer", "llama"}) {
    CAPTURE(kind);
    const std::string run = tmp.file("ae_" + kind), out = tmp.file("enc_" + kind);
    train_autoencoder(parse_run_config(run_config(tmp, run, kind, true), "ae.yaml"), {});
    EncoderExport ex = export_autoencoder_encoder(run, out);
    for (const char* f : {"checkpoint.safetensors", "tokenizer.bpe", "config.yaml"}) CHECK(fs::exists(fs::path(out) / f));
    CHECK(read_file(out + "/tokenizer.bpe") == read_file(run + "/tokenizer.bpe"));
    CHECK(read_file(out + "/config.yaml").find("autoencoder") != std::string::npos);  // in the comment only

    // Loaded as `mixgrad retrieve --checkpoint` loads a language model.
    auto meta = read_checkpoint_metadata(ex.checkpoint);
    RunConfig rc = parse_run_config(meta.at("config"), "meta");
    CHECK_FALSE(rc.autoencoder);
    CHECK(rc.name == "tiny_encoder");
    CHECK(rc.model.summary() == parse_run_config(run_config(tmp, run, kind, true), "ae.yaml").model.summary());
    CHECK(load_run_config(out + "/config.yaml").model.summary() == rc.model.summary());
    CHECK(fs::path(meta.at("autoencoder.source_run")).filename() == fs::path(run).filename());
    CHECK(meta.at("autoencoder.source_step") == "3");
    CHECK(meta.at("tokenizer.fingerprint") == std::to_string(tokenizer_fingerprint(BpeTokenizer::load(out + "/tokenizer.bpe"))));
    Generator gen(5);
    auto lm = make_model(rc.model, gen);
    load_checkpoint(ex.checkpoint, *lm, nullptr);
    AutoencoderRun r = load_autoencoder_run(run);
    check_is_encoder(*r.model, *lm);
  }

  // Refused, with nothing written: a language-model run, a missing run, an existing output.
  const std::string lm_run = tmp.file("lm_run");
  fs::create_directories(lm_run);
  {
    RunConfig rc = parse_run_config(run_config(tmp, lm_run, "masked_mixer", false), "lm.yaml");
    Generator gen(1);
    auto lm = make_model(rc.model, gen);
    save_checkpoint(lm_run + "/checkpoint.safetensors", *lm, nullptr, {{"config", rc.source_yaml}});
  }
  CHECK_THROWS_WITH_AS(export_autoencoder_encoder(lm_run, tmp.file("o1")), doctest::Contains("is not an autoencoder run"),
                       Error);
  CHECK_FALSE(fs::exists(tmp.file("o1")));
  CHECK_THROWS_WITH_AS(export_autoencoder_encoder(tmp.file("no_such_run"), tmp.file("o2")),
                       doctest::Contains("no checkpoint at"), Error);
  CHECK_FALSE(fs::exists(tmp.file("o2")));
  CHECK_THROWS_WITH_AS(export_autoencoder_encoder(tmp.file("ae_llama"), tmp.file("enc_masked_mixer")),
                       doctest::Contains("already exists"), Error);
  // No staging directory is left behind either.
  for (const auto& e : fs::directory_iterator(tmp.path)) {
    const std::string name = e.path().filename().string();
    CHECK_MESSAGE(name.rfind("o1", 0) != 0, name);
    CHECK_MESSAGE(name.rfind("o2", 0) != 0, name);
    CHECK_MESSAGE(name.find(".tmp.") == std::string::npos, name);
  }
}
