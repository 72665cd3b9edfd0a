#pragma once
// The architecture of one of the paper's three language-model families (docs/paper.md A, B.1, B.2).
// A plain struct with defaults; the YAML loader fills it and calls validate(). Runtime choices
// (device, dtype) are not part of it: pass them to make_model or call Module::to.
#include <cstdint>
#include <optional>
#include <string>

namespace mg {

enum class ModelKind { masked_mixer, llama, gpt };
// Token mixing of a masked mixer: one [n, n] matrix (A.1), two matrices [e*n, n] and [n, e*n]
// with GELU between (A.3), H heads with their own [n, n] matrix (A.5), or k masked [n, n] taps
// whose kernel slides along the feature axis (A.4, the "fully convolutional" mixer).
enum class MixerForm { flat, expanded, multihead, kernel };

struct ModelConfig {
  ModelKind kind = ModelKind::masked_mixer;
  int64_t vocab_size = 4096;
  int64_t d_model = 512;
  int64_t n_layers = 8;
  int64_t n_ctx = 512;       // tokens per sample: the mixer's matrix size, GPT's position table
  int64_t n_heads = 4;       // attention heads (llama, gpt)
  int64_t ffn_mult = 4;      // MLP hidden = ffn_mult * d_model (all three families)
  MixerForm mixer_form = MixerForm::flat;
  int64_t mixer_expansion = 1;  // e of the expanded form
  int64_t mixer_heads = 2;      // H of the multihead form
  int64_t mixer_kernel = 4;     // k of the kernel form (the paper's runs: 4)
  // Unset means the family's default: tie_weights false for mixer and llama, true for gpt (HF);
  // norm_eps 1e-5 (LayerNorm: mixer, gpt) or 1e-6 (RMSNorm: llama).
  std::optional<bool> tie_weights;
  std::optional<double> norm_eps;
  double rope_theta = 10000.0;  // llama only
  double init_std = 0.02;       // llama and gpt (HF initializer_range)

  bool resolved_tie_weights() const;
  double resolved_norm_eps() const;
  // Throws mg::Error naming the first bad field and why ("ModelConfig.n_heads = 3 must divide d_model = 8"),
  // including a size of 2^31 or more and a model of more than kMaxParameters parameters.
  void validate() const;
  // 2^36 (about 69 billion, 256 GiB of f32 weights): far beyond any model here, small enough that
  // no parameter count or tensor size of a valid config overflows.
  static constexpr int64_t kMaxParameters = int64_t(1) << 36;
  // Exact parameter count of the model make_model builds (unique tensors: a tied lm_head counts
  // once), from the shapes alone, without allocating anything.
  int64_t expected_num_parameters() const;
  // "masked_mixer d=512 L=8 n=512 V=4096 flat", for logs.
  std::string summary() const;
};

const char* model_kind_name(ModelKind k);   // "masked_mixer", "llama", "gpt"
const char* mixer_form_name(MixerForm f);   // "flat", "expanded", "multihead", "kernel"
// Parse the names above; throw mg::Error listing the accepted names.
ModelKind parse_model_kind(const std::string& s);
MixerForm parse_mixer_form(const std::string& s);

}  // namespace mg
