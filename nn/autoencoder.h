#pragma once
// The paper's autoencoders (docs/paper.md F): a masked-mixer one and a Llama-style transformer one.
//
//   ids -> wte -> L encoder blocks (causal) -> z = X[:, -1, :]   (the last position: with left
//   padding, the last real token; causality makes it the only position that has seen them all)
//   -> z repeated to every position [B, T, D] -> L decoder blocks (own weights, also causal)
//   -> lm_head -> logits [B, T, V], trained by the UNSHIFTED cross-entropy of logits[:, t]
//   against ids[:, t] (reconstruction_loss), pads ignored.
//
// Tokens reach the logits only through z: the decoder's input is the same vector at every
// position, so its positions differ only through what is position-indexed in its blocks (the
// mixer's [n, n] mixing matrices and biases; RoPE in the transformer). For the transformer that
// is nothing that matters: with identical inputs every value vector is identical, so causal
// attention returns that same vector at every position whatever RoPE does to q and k, and the
// decoder's output -- hence its logits -- is the same at every position. The transformer
// autoencoder can therefore only learn a bag of tokens per sequence, which is part of why the
// paper finds it far worse than the mixer one (docs/paper.md F table). This is the paper's
// architecture, reproduced as is.
//
// Both run without dropout (the paper's mixer autoencoders use p = 0.05, placement unstated;
// the project trains every model without dropout, see nn/lm.h). config.n_layers is L, the depth
// of EACH of encoder and decoder; tie_weights is not supported.
//
// State-dict names follow the paper's code (mixer_lm/mixer_autoencoder.py AutoencodingMixer,
// mixer_lm/transformer_autoencoder.py AutoencodingTransformer, both @2270414):
//   both:         wte.weight [V, d] ... lm_head.weight [V, d]   (torch defaults: N(0, 1), U(+-1/sqrt(d)))
//   mixer:        encoderblocks.N.<MixerBlock names>, decoderblocks.N.<MixerBlock names>
//                 (as mixerblocks.N.* in nn/masked_mixer.h)
//   transformer:  encoder.model.model.layers.N.<LlamaDecoderLayer names>, decoder.model.model.layers.N.*
//                 (as model.layers.N.* in nn/llama.h; HF init N(0, init_std)). The paper's encoder
//                 and decoder are AbbreviatedModel(LlamaForCausalLM(config)); each LlamaForCausalLM
//                 also carries an embed_tokens, a final norm and an lm_head that the autoencoder
//                 never uses. Those are not built here, so a paper checkpoint loads with
//                 strict = false (they come back as `unexpected`), and ours loads into the
//                 paper's model with torch's strict=False.
#include <cstdint>
#include <memory>

#include "nn/layers.h"
#include "nn/llama.h"
#include "nn/masked_mixer.h"
#include "nn/model_config.h"
#include "nn/module.h"
#include "ops/reduction.h"

namespace mg {

class Autoencoder : public Module {
  // First, so it is validated before any parameter is built.
  ModelConfig config_;
  const char* name_;

 public:
  const ModelConfig& config() const { return config_; }

  // ids [B, T] i32 (1 <= T <= n_ctx) -> logits [B, T, V]. Training data are left-padded to
  // n_ctx; pass ids of that shape to see the model as trained.
  Tensor forward(const Tensor& ids) { return decode(encode(ids), ids.size(1)); }
  // The bottleneck z = the encoder's output at the last position: [B, D]. Differentiable in the
  // parameters. This is the autoencoder's sentence embedding (retrieval).
  Tensor encode(const Tensor& ids) const;
  // z [B, D] repeated to T positions (1 <= T <= n_ctx), through the decoder and lm_head:
  // logits [B, T, V]. Differentiable in z.
  Tensor decode(const Tensor& z, int64_t T) const;
  // The encoder's output at every position, [B, T, D] (its last row is z).
  Tensor encoder_states(const Tensor& ids) const;

  Embedding wte;
  std::unique_ptr<Linear> lm_head;  // registered last, after the derived class's blocks

 protected:
  // Validates config (kind `expected`, no tied weights), builds and registers wte.
  Autoencoder(ModelConfig config, ModelKind expected, const char* name, Generator& gen, TensorOptions opts);
  // Builds and registers lm_head; derived constructors call it after registering their blocks.
  void add_head(Generator& gen, TensorOptions opts);
  virtual Tensor run_encoder(const Tensor& x) const = 0;  // [B, T, D] -> [B, T, D]
  virtual Tensor run_decoder(const Tensor& x) const = 0;
};

// Masked-mixer autoencoder (paper: AutoencodingMixer). Any mixer_form works; the paper's is flat.
class MixerAutoencoder : public Autoencoder {
 public:
  MixerAutoencoder(const ModelConfig& config, Generator& gen, TensorOptions opts = {});

  ModuleList<MixerBlock> encoderblocks, decoderblocks;

 protected:
  Tensor run_encoder(const Tensor& x) const override;
  Tensor run_decoder(const Tensor& x) const override;
};

// The paper's AbbreviatedModel(LlamaForCausalLM(config)): L Llama decoder layers run on given
// activations with RoPE positions 0..T-1, causal, no final norm. Only the layers are built; they
// sit at model.model.layers.N, where the paper's state dict has them.
class AbbreviatedLlama : public Module {
 public:
  AbbreviatedLlama(const ModelConfig& config, Generator& gen, TensorOptions opts);
  Tensor forward(const Tensor& x) const;  // [B, T, d] -> [B, T, d]

  struct Body : Module {  // LlamaModel ("model.model")
    Body(const ModelConfig& config, Generator& gen, TensorOptions opts);
    ModuleList<LlamaDecoderLayer> layers;
  };
  struct CausalLM : Module {  // LlamaForCausalLM ("model")
    CausalLM(const ModelConfig& config, Generator& gen, TensorOptions opts);
    Body model;
  };
  CausalLM model;
};

// Transformer autoencoder (paper: AutoencodingTransformer).
class TransformerAutoencoder : public Autoencoder {
 public:
  TransformerAutoencoder(const ModelConfig& config, Generator& gen, TensorOptions opts = {});

  AbbreviatedLlama encoder, decoder;

 protected:
  Tensor run_encoder(const Tensor& x) const override { return encoder.forward(x); }
  Tensor run_decoder(const Tensor& x) const override { return decoder.forward(x); }
};

// The autoencoder of config.kind (masked_mixer -> MixerAutoencoder, llama ->
// TransformerAutoencoder; gpt throws), parameters drawn from gen in registration order and
// placed per opts (f32 or f64, any device).
std::unique_ptr<Autoencoder> make_autoencoder(const ModelConfig& config, Generator& gen, TensorOptions opts = {});

// Exact parameter count of make_autoencoder(config) from the shapes alone.
int64_t autoencoder_num_parameters(const ModelConfig& config);

// The reconstruction loss (docs/paper.md F): cross-entropy of logits[:, t] against labels[:, t] for
// every t, NO shift; positions whose label is ignore_index are skipped (the batcher's labels
// carry kIgnoreIndex = -100 at padding). logits [B, T, V], labels i32 [B, T]. Mean over the
// scored positions, or their sum.
Tensor reconstruction_loss(const Tensor& logits, const Tensor& labels, int64_t ignore_index = -100,
                           Reduction reduction = Reduction::mean);

}  // namespace mg
