#pragma once
// The model configurations the model tests build from, so each test size is written once. Both
// have two layers, and a masked mixer's multihead form 2 heads and expanded form expansion 2
// (fields the flat form ignores).
#include <cstdint>
#include <vector>

#include "core/factories.h"
#include "nn/model_config.h"

namespace mg::test {

inline ModelConfig two_layer_model(ModelKind kind, MixerForm form, int64_t vocab, int64_t d_model, int64_t n_ctx,
                                   int64_t n_heads) {
  ModelConfig c;
  c.kind = kind;
  c.vocab_size = vocab;
  c.d_model = d_model;
  c.n_layers = 2;
  c.n_ctx = n_ctx;
  c.n_heads = n_heads;
  c.mixer_form = form;
  c.mixer_heads = 2;
  c.mixer_expansion = 2;
  return c;
}

// V=11, d=8, n=6, 2 attention heads: small enough for an f64 gradcheck of every parameter.
inline ModelConfig tiny_model(ModelKind kind, MixerForm form = MixerForm::flat) {
  return two_layer_model(kind, form, 11, 8, 6, 2);
}

// V=64, d=32, n=16, 4 attention heads: trains for hundreds of steps in a moment.
inline ModelConfig small_model(ModelKind kind, MixerForm form = MixerForm::flat) {
  return two_layer_model(kind, form, 64, 32, 16, 4);
}

// A named configuration, for SUBCASEs over model families and forms.
struct ModelVariant {
  const char* name;
  ModelConfig config;
};

// Token ids v as an i32 [B, T] tensor.
inline Tensor ids_tensor(const std::vector<int32_t>& v, int64_t B, int64_t T) { return from_vector(v, Shape{B, T}); }

// A sequence of tiny-vocabulary ids that fills the tiny context (6 tokens).
inline const std::vector<int32_t> kTinySequence = {3, 7, 1, 10, 4, 2};

// kTinySequence as ids [1, 6]; with changed_at = s >= 0, the token at position s is replaced by
// another id ((t + 5) % 11), for causality tests.
inline Tensor tiny_sequence_ids(int64_t changed_at = -1) {
  std::vector<int32_t> ids = kTinySequence;
  if (changed_at >= 0) ids[size_t(changed_at)] = (ids[size_t(changed_at)] + 5) % 11;
  return ids_tensor(ids, 1, int64_t(ids.size()));
}

}  // namespace mg::test
