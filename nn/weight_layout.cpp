#include "nn/weight_layout.h"

#include "autograd/grad_mode.h"
#include "ops/shape_ops.h"

namespace mg {

namespace {

const char* const kMultiheadSuffixes[] = {"conv.proj_head.weight", "conv.proj_head.bias", "conv.convs.weight",
                                          "conv.convs.bias"};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The embedding a tied lm_head shares, per family.
std::string embedding_name(ModelKind k) {
  switch (k) {
    case ModelKind::masked_mixer: return "wte.weight";
    case ModelKind::llama: return "model.embed_tokens.weight";
    case ModelKind::gpt: return "transformer.tokens_embed.weight";
  }
  return "";
}

bool multihead(const ModelConfig& c) {
  return c.kind == ModelKind::masked_mixer && c.mixer_form == MixerForm::multihead;
}

Tensor plain(const Tensor& t) { return t.detach().to(kCPU).to(DType::f32).contiguous().clone(); }

}  // namespace

const char* weight_layout_name(WeightLayout l) { return l == WeightLayout::pytorch ? "pytorch" : "hf"; }

WeightLayout parse_weight_layout(const std::string& s) {
  if (s == "pytorch") return WeightLayout::pytorch;
  if (s == "hf") return WeightLayout::hf;
  throw Error("unknown weight layout '" + s + "' (expected pytorch or hf)");
}

StateDict export_state_dict(const LanguageModel& model, WeightLayout /*layout: the two differ only in config.json*/) {
  NoGradGuard no_grad;
  const ModelConfig& c = model.config();
  const int64_t H = c.mixer_heads;
  StateDict out;
  for (const auto& [name, t] : model.state_dict()) {
    if (multihead(c) && ends_with(name, "conv.proj_head.weight")) {
      const std::string base = name.substr(0, name.size() - std::string("weight").size());
      const int64_t rows = t.size(0) / H;
      for (int64_t h = 0; h < H; ++h) out.emplace_back(base + std::to_string(h) + ".weight", plain(t.narrow(0, h * rows, rows)));
      continue;
    }
    if (multihead(c) && ends_with(name, "conv.proj_head.bias")) {
      const std::string base = name.substr(0, name.size() - std::string("bias").size());
      const int64_t rows = t.size(0) / H;
      for (int64_t h = 0; h < H; ++h) out.emplace_back(base + std::to_string(h) + ".bias", plain(t.narrow(0, h * rows, rows)));
      continue;
    }
    if (multihead(c) && ends_with(name, "conv.convs.weight")) {
      const std::string base = name.substr(0, name.size() - std::string("weight").size());
      for (int64_t h = 0; h < H; ++h) out.emplace_back(base + std::to_string(h) + ".weight", plain(t.select(0, h).unsqueeze(2)));
      continue;
    }
    if (multihead(c) && ends_with(name, "conv.convs.bias")) {
      const std::string base = name.substr(0, name.size() - std::string("bias").size());
      for (int64_t h = 0; h < H; ++h) out.emplace_back(base + std::to_string(h) + ".bias", plain(t.select(0, h)));
      continue;
    }
    out.emplace_back(name, plain(t));
    if (c.resolved_tie_weights() && name == embedding_name(c.kind)) out.emplace_back("lm_head.weight", plain(t));
  }
  return out;
}

std::map<std::string, Tensor> import_state_dict(const std::map<std::string, Tensor>& tensors, const ModelConfig& c,
                                                WeightLayout /*layout*/) {
  NoGradGuard no_grad;
  std::map<std::string, Tensor> out = tensors;
  if (!multihead(c)) return out;
  const int64_t H = c.mixer_heads;
  // Per block: gather "<prefix>conv.proj_head.<h>.weight" ... into our stacked tensors.
  for (int64_t b = 0; b < c.n_layers; ++b) {
    const std::string block = "mixerblocks." + std::to_string(b) + ".";
    for (const char* suffix : kMultiheadSuffixes) {
      const std::string ours = block + suffix;
      const std::string s(suffix);
      const std::string leaf = ends_with(s, ".weight") ? "weight" : "bias";
      const std::string base = block + s.substr(0, s.size() - leaf.size());  // "...conv.proj_head."
      std::vector<Tensor> parts;
      std::string missing;
      for (int64_t h = 0; h < H; ++h) {
        auto it = out.find(base + std::to_string(h) + "." + leaf);
        if (it == out.end()) missing += " " + base + std::to_string(h) + "." + leaf;
        else parts.push_back(it->second);
      }
      if (parts.empty()) continue;  // our stacked name (or nothing: load_state_dict reports it)
      MG_CHECK(missing.empty(), "multi-head mixer weights: some heads are missing:", missing);
      for (int64_t h = 0; h < H; ++h) out.erase(base + std::to_string(h) + "." + leaf);
      const bool convs = s.find("convs") != std::string::npos;
      if (convs && leaf == "weight") {
        for (auto& p : parts) {
          MG_CHECK(p.dim() == 3 && p.size(2) == 1, base, "N.weight: expected Conv1d weights [n, n, 1], got ",
                   shape_str(p.shape()));
          p = p.squeeze(2);
        }
        out[ours] = stack(parts, 0);
      } else if (convs) {
        out[ours] = stack(parts, 0);
      } else {
        out[ours] = cat(parts, 0);
      }
    }
  }
  return out;
}

}  // namespace mg
