#pragma once
// The encoder of an autoencoder (nn/autoencoder.h) as a language model of the same family, so
// that it can be fine-tuned and scored as an embedder like any pretrained language model: the
// paper's "encoder of an autoencoder as the backbone, position -1" (docs/paper.md E.3, F).
//
// The language model is make_model(ae.config()): the same kind, d_model, n_ctx, mixer form and
// vocabulary, and n_layers = the autoencoder's encoder depth (config.n_layers is the depth of
// EACH of encoder and decoder). Its weights, by state-dict name:
//   mixer:  wte.weight                       <- wte.weight
//           mixerblocks.N.*                  <- encoderblocks.N.*
//           lm_head.weight                   <- lm_head.weight
//   llama:  model.embed_tokens.weight        <- wte.weight
//           model.layers.N.*                 <- encoder.model.model.layers.N.*
//           model.norm.weight                =  ones [d]
//           lm_head.weight                   <- lm_head.weight
// The decoder blocks are dropped. The autoencoder's lm_head reads decoder outputs, so as the
// language model's head it predicts nothing useful; it is carried only so the checkpoint has
// every tensor a language model has (embeddings never use the head).
//
// Guarantees: lm.hidden_states(ids, L) equals ae.encoder_states(ids) (the same ops on the same
// weights), so with left padding the last position is the autoencoder's z = ae.encode(ids).
// The mixer has no final norm, so its last-block output IS its embedding. Llama's embedding is
// taken after its final RMSNorm (experiments/embedding.h), which the autoencoder's encoder does
// not have: with weight ones, RMSNorm only divides each vector by a positive number
// (x / sqrt(mean(x^2) + eps)), so every cosine similarity between embeddings -- all that
// retrieval scores -- equals that of the autoencoder's z.
#include <memory>

#include "nn/autoencoder.h"
#include "nn/lm.h"
#include "nn/module.h"

namespace mg {

// The language model's state dict (names above) holding ae's encoder weights: tensors that share
// memory with ae's parameters (detached), plus llama's fresh norm of ones.
StateDict encoder_lm_state_dict(const Autoencoder& ae);

// make_model(ae.config()) (drawn from a fixed generator, then overwritten) loaded strictly with
// encoder_lm_state_dict(ae): its parameters are copies, in ae's dtype and on its device.
std::unique_ptr<LanguageModel> encoder_language_model(const Autoencoder& ae);

}  // namespace mg
