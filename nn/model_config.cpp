#include "nn/model_config.h"

#include <array>
#include <cmath>
#include <limits>
#include <sstream>
#include <utility>

#include "core/error.h"

namespace mg {

namespace {

// The names of an enum's values, in declaration order, for printing and parsing.
template <class E, size_t N>
using NameTable = std::array<std::pair<E, const char*>, N>;
constexpr NameTable<ModelKind, 3> kModelKindNames{
    {{ModelKind::masked_mixer, "masked_mixer"}, {ModelKind::llama, "llama"}, {ModelKind::gpt, "gpt"}}};
constexpr NameTable<MixerForm, 4> kMixerFormNames{{{MixerForm::flat, "flat"},
                                                   {MixerForm::expanded, "expanded"},
                                                   {MixerForm::multihead, "multihead"},
                                                   {MixerForm::kernel, "kernel"}}};

template <class E, size_t N>
const char* name_in(const NameTable<E, N>& table, E value) {
  for (const auto& [v, name] : table)
    if (v == value) return name;
  return "?";
}

// The value named s; throws "unknown <what> 's' (expected a, b or c)".
template <class E, size_t N>
E parse_name(const NameTable<E, N>& table, const std::string& s, const char* what) {
  std::string expected;
  for (size_t i = 0; i < N; ++i) {
    if (s == table[i].second) return table[i].first;
    expected += (i == 0 ? "" : i + 1 == N ? " or " : ", ") + std::string(table[i].second);
  }
  throw Error(std::string("unknown ") + what + " '" + s + "' (expected " + expected + ")");
}

}  // namespace

const char* model_kind_name(ModelKind k) { return name_in(kModelKindNames, k); }
const char* mixer_form_name(MixerForm f) { return name_in(kMixerFormNames, f); }
ModelKind parse_model_kind(const std::string& s) { return parse_name(kModelKindNames, s, "model kind"); }
MixerForm parse_mixer_form(const std::string& s) { return parse_name(kMixerFormNames, s, "mixer form"); }

bool ModelConfig::resolved_tie_weights() const {
  return tie_weights.value_or(kind == ModelKind::gpt);
}

double ModelConfig::resolved_norm_eps() const {
  return norm_eps.value_or(kind == ModelKind::llama ? 1e-6 : 1e-5);
}

namespace {

// The parameter count in 128-bit arithmetic: with every size below 2^31 (validate() checks that
// first) no product of the formulas can overflow, however absurd the config.
__int128 parameter_count(const ModelConfig& c) {
  using W = __int128;
  const W d = c.d_model, n = c.n_ctx, V = c.vocab_size, f = W(c.ffn_mult) * c.d_model;
  const W head = c.resolved_tie_weights() ? 0 : V * d;
  const W n_layers = c.n_layers, mixer_expansion = c.mixer_expansion, mixer_heads = c.mixer_heads,
          mixer_kernel = c.mixer_kernel;
  switch (c.kind) {
    case ModelKind::masked_mixer: {
      W mix = 0;
      switch (c.mixer_form) {
        case MixerForm::flat: mix = n * n + n; break;
        case MixerForm::expanded: {
          const W e = mixer_expansion * n;
          mix = (e * n + e) + (n * e + n);
          break;
        }
        case MixerForm::multihead: mix = (d * d + d) + mixer_heads * (n * n + n) + (d * d + d); break;
        case MixerForm::kernel: mix = mixer_kernel * n * n + n; break;
      }
      const W block = 2 * d + mix + 2 * d + (d * f + f) + (f * d + d);
      return V * d + n_layers * block + head;
    }
    case ModelKind::llama: {
      const W block = 4 * d * d + 3 * d * f + 2 * d;
      return V * d + n_layers * block + d + head;
    }
    case ModelKind::gpt: {
      const W block = (d * 3 * d + 3 * d) + (d * d + d) + 2 * d + (d * f + f) + (f * d + d) + 2 * d;
      return V * d + n * d + n_layers * block + head;
    }
  }
  return 0;
}

}  // namespace

void ModelConfig::validate() const {
  auto positive = [](const char* field, int64_t v) {
    MG_CHECK(v > 0, "ModelConfig.", field, " = ", v, " must be positive");
  };
  positive("vocab_size", vocab_size);
  MG_CHECK(vocab_size <= std::numeric_limits<int32_t>::max(), "ModelConfig.vocab_size = ", vocab_size,
           " does not fit the i32 token ids");
  positive("d_model", d_model);
  positive("n_layers", n_layers);
  positive("n_ctx", n_ctx);
  positive("ffn_mult", ffn_mult);
  MG_CHECK(resolved_norm_eps() > 0 && std::isfinite(resolved_norm_eps()), "ModelConfig.norm_eps = ",
           resolved_norm_eps(), " must be positive and finite");
  if (kind == ModelKind::masked_mixer) {
    if (mixer_form == MixerForm::expanded) positive("mixer_expansion", mixer_expansion);
    if (mixer_form == MixerForm::kernel) positive("mixer_kernel", mixer_kernel);
    if (mixer_form == MixerForm::multihead) {
      positive("mixer_heads", mixer_heads);
      MG_CHECK(d_model % mixer_heads == 0, "ModelConfig.mixer_heads = ", mixer_heads, " must divide d_model = ",
               d_model);
    }
  } else {
    positive("n_heads", n_heads);
    MG_CHECK(d_model % n_heads == 0, "ModelConfig.n_heads = ", n_heads, " must divide d_model = ", d_model);
    MG_CHECK(init_std > 0 && std::isfinite(init_std), "ModelConfig.init_std = ", init_std,
             " must be positive and finite");
  }
  if (kind == ModelKind::llama) {
    MG_CHECK((d_model / n_heads) % 2 == 0, "ModelConfig.n_heads = ", n_heads, " gives head_dim ", d_model / n_heads,
             ", which must be even for RoPE");
    MG_CHECK(rope_theta > 0 && std::isfinite(rope_theta), "ModelConfig.rope_theta = ", rope_theta,
             " must be positive and finite");
  }
  // Absurd sizes (a typo, a corrupt checkpoint's config) are refused here, before building the
  // model would overflow a size or spend hours allocating: every size below 2^31 and at most
  // kMaxParameters parameters in all.
  for (const auto& [field, v] : {std::pair<const char*, int64_t>{"d_model", d_model}, {"n_layers", n_layers},
                                 {"n_ctx", n_ctx}, {"n_heads", n_heads}, {"ffn_mult", ffn_mult},
                                 {"mixer_expansion", mixer_expansion}, {"mixer_heads", mixer_heads},
                                 {"mixer_kernel", mixer_kernel}})
    MG_CHECK(v <= std::numeric_limits<int32_t>::max(), "ModelConfig.", field, " = ", v, " is too large (at most ",
             std::numeric_limits<int32_t>::max(), ")");
  const __int128 params = parameter_count(*this);
  MG_CHECK(params <= kMaxParameters, "ModelConfig: ", summary(), " would have ", double(params),
           " parameters, more than the limit of ", double(kMaxParameters), " (check d_model, n_layers, n_ctx)");
}

int64_t ModelConfig::expected_num_parameters() const {
  const __int128 n = parameter_count(*this);
  MG_CHECK(n <= std::numeric_limits<int64_t>::max(), "ModelConfig: ", summary(), ": parameter count overflows int64");
  return int64_t(n);
}

std::string ModelConfig::summary() const {
  std::ostringstream os;
  os << model_kind_name(kind) << " d=" << d_model << " L=" << n_layers << " n=" << n_ctx << " V=" << vocab_size;
  if (kind == ModelKind::masked_mixer) {
    os << ' ' << mixer_form_name(mixer_form);
    if (mixer_form == MixerForm::expanded) os << " e=" << mixer_expansion;
    if (mixer_form == MixerForm::multihead) os << " H=" << mixer_heads;
    if (mixer_form == MixerForm::kernel) os << " k=" << mixer_kernel;
  } else {
    os << " h=" << n_heads;
  }
  if (resolved_tie_weights()) os << " tied";
  return os.str();
}

}  // namespace mg
