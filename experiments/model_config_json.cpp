#include "experiments/model_config_json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <vector>

#include "core/error.h"
#include "core/json.h"

namespace mg {

namespace {

// The shortest decimal that reads back as v.
std::string num(double v) {
  char buf[64];
  for (int p = 1; p <= 17; ++p) {
    std::snprintf(buf, sizeof buf, "%.*g", p, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

struct JsonObjectWriter {
  std::string s = "{";
  void raw(const std::string& key, const std::string& value) {
    s += s.size() > 1 ? ",\n  " : "\n  ";
    append_json_string(s, key);
    s += ": " + value;
  }
  void str(const std::string& key, const std::string& value) {
    std::string v;
    append_json_string(v, value);
    raw(key, v);
  }
  void i(const std::string& key, int64_t v) { raw(key, std::to_string(v)); }
  void d(const std::string& key, double v) { raw(key, num(v)); }
  void b(const std::string& key, bool v) { raw(key, v ? "true" : "false"); }
  std::string done() { return s + "\n}\n"; }
};

// Reads the members of a config.json object, remembering which were used, so unknown keys can
// be reported.
struct Reader {
  const JsonValue& obj;
  std::string what;
  std::set<std::string> used;

  const JsonValue* get(const std::string& key) {
    used.insert(key);
    return obj.find(key);
  }
  [[noreturn]] void bad(const std::string& key, const std::string& msg) const {
    throw Error("config.json '" + what + "': " + key + " " + msg);
  }
  int64_t integer(const std::string& key, bool required, int64_t fallback) {
    const JsonValue* v = get(key);
    if (!v || v->kind == JsonValue::Kind::null) {
      if (required) bad(key, "is missing");
      return fallback;
    }
    if (v->kind != JsonValue::Kind::number || v->number != std::floor(v->number) || std::fabs(v->number) > 1e15)
      bad(key, "must be an integer, got " + v->kind_phrase());
    return int64_t(v->number);
  }
  double real(const std::string& key, double fallback) {
    const JsonValue* v = get(key);
    if (!v || v->kind == JsonValue::Kind::null) return fallback;
    if (v->kind != JsonValue::Kind::number) bad(key, "must be a number, got " + v->kind_phrase());
    return v->number;
  }
  bool boolean(const std::string& key, bool fallback) {
    const JsonValue* v = get(key);
    if (!v || v->kind == JsonValue::Kind::null) return fallback;
    if (v->kind != JsonValue::Kind::boolean) bad(key, "must be true or false, got " + v->kind_phrase());
    return v->boolean;
  }
  std::string string(const std::string& key, const std::string& fallback) {
    const JsonValue* v = get(key);
    if (!v || v->kind == JsonValue::Kind::null) return fallback;
    if (!v->is_string()) bad(key, "must be a string, got " + v->kind_phrase());
    return v->string;
  }
  void ignore(std::initializer_list<const char*> keys) {
    for (const char* k : keys) used.insert(k);
  }
  // Keys HF writes that change nothing for a forward pass here.
  void ignore_hf_bookkeeping() {
    ignore({"architectures", "transformers_version", "torch_dtype", "use_cache", "bos_token_id", "eos_token_id",
            "pad_token_id", "_name_or_path", "model_type", "mixgrad_note"});
  }
  void finish() const {
    for (const auto& [k, v] : obj.object)
      if (!used.count(k)) throw Error("config.json '" + what + "': unknown key '" + k + "'");
  }
};

}  // namespace

std::string model_config_json(const ModelConfig& c, int eos_id, int pad_id) {
  JsonObjectWriter w;
  switch (c.kind) {
    case ModelKind::llama:
      w.raw("architectures", "[\"LlamaForCausalLM\"]");
      w.str("model_type", "llama");
      w.i("vocab_size", c.vocab_size);
      w.i("hidden_size", c.d_model);
      w.i("intermediate_size", c.ffn_mult * c.d_model);
      w.i("num_hidden_layers", c.n_layers);
      w.i("num_attention_heads", c.n_heads);
      w.i("num_key_value_heads", c.n_heads);
      w.i("head_dim", c.d_model / c.n_heads);
      w.str("hidden_act", "silu");
      w.i("max_position_embeddings", c.n_ctx);
      w.d("initializer_range", c.init_std);
      w.d("rms_norm_eps", c.resolved_norm_eps());
      w.d("rope_theta", c.rope_theta);
      w.raw("rope_scaling", "null");
      w.b("attention_bias", false);
      w.d("attention_dropout", 0.0);
      w.b("mlp_bias", false);
      w.i("pretraining_tp", 1);
      w.b("tie_word_embeddings", c.resolved_tie_weights());
      w.i("bos_token_id", eos_id);
      w.i("eos_token_id", eos_id);
      w.i("pad_token_id", pad_id);
      w.str("torch_dtype", "float32");
      break;
    case ModelKind::gpt:
      MG_CHECK(c.ffn_mult == 4, "config.json: Hugging Face's OpenAIGPT has an MLP of 4 * n_embd; this model has ffn_mult ",
               c.ffn_mult, " (export with --to pytorch)");
      w.raw("architectures", "[\"OpenAIGPTLMHeadModel\"]");
      w.str("model_type", "openai-gpt");
      w.i("vocab_size", c.vocab_size);
      w.i("n_positions", c.n_ctx);
      w.i("n_embd", c.d_model);
      w.i("n_layer", c.n_layers);
      w.i("n_head", c.n_heads);
      w.str("afn", "gelu");  // OpenAIGPT's "gelu" is the tanh approximation (its own ACT_FNS)
      w.d("resid_pdrop", 0.0);
      w.d("embd_pdrop", 0.0);
      w.d("attn_pdrop", 0.0);
      w.d("layer_norm_epsilon", c.resolved_norm_eps());
      w.d("initializer_range", c.init_std);
      w.b("tie_word_embeddings", c.resolved_tie_weights());
      w.i("eos_token_id", eos_id);
      w.i("pad_token_id", pad_id);
      w.str("torch_dtype", "float32");
      break;
    case ModelKind::masked_mixer:
      w.str("model_type", "mixgrad_masked_mixer");
      w.str("mixgrad_note", "no transformers class; weights in the paper's LanguageMixer layout (docs/interop.md)");
      w.i("vocab_size", c.vocab_size);
      w.i("d_model", c.d_model);
      w.i("n_layers", c.n_layers);
      w.i("n_ctx", c.n_ctx);
      w.i("ffn_mult", c.ffn_mult);
      w.str("mixer_form", mixer_form_name(c.mixer_form));
      w.i("mixer_expansion", c.mixer_expansion);
      w.i("mixer_heads", c.mixer_heads);
      w.i("mixer_kernel", c.mixer_kernel);
      w.b("tie_weights", c.resolved_tie_weights());
      w.d("norm_eps", c.resolved_norm_eps());
      w.i("eos_token_id", eos_id);
      w.i("pad_token_id", pad_id);
      break;
  }
  return w.done();
}

ModelConfig parse_model_config_json(const std::string& text, const std::string& what) {
  const JsonValue root = parse_json(text, "config.json '" + what + "'");
  MG_CHECK(root.is_object(), "config.json '", what, "': not a JSON object");
  Reader r{root, what, {}};
  const std::string type = r.string("model_type", "");
  ModelConfig c;
  if (type == "llama") {
    c.kind = ModelKind::llama;
    c.vocab_size = r.integer("vocab_size", true, 0);
    c.d_model = r.integer("hidden_size", true, 0);
    c.n_layers = r.integer("num_hidden_layers", true, 0);
    c.n_heads = r.integer("num_attention_heads", true, 0);
    MG_CHECK(c.d_model > 0 && c.n_heads > 0, "config.json '", what, "': hidden_size and num_attention_heads must be positive");
    const int64_t inter = r.integer("intermediate_size", true, 0);
    if (inter % c.d_model != 0)
      r.bad("intermediate_size", "= " + std::to_string(inter) + " is not a multiple of hidden_size = " +
                                     std::to_string(c.d_model) + " (our MLP is ffn_mult * d_model)");
    c.ffn_mult = inter / c.d_model;
    if (r.integer("num_key_value_heads", false, c.n_heads) != c.n_heads)
      r.bad("num_key_value_heads", "differs from num_attention_heads: grouped-query attention is not implemented");
    if (r.integer("head_dim", false, c.d_model / c.n_heads) != c.d_model / c.n_heads)
      r.bad("head_dim", "must be hidden_size / num_attention_heads");
    if (r.string("hidden_act", "silu") != "silu") r.bad("hidden_act", "must be \"silu\"");
    c.n_ctx = r.integer("max_position_embeddings", false, 2048);
    c.init_std = r.real("initializer_range", 0.02);
    c.norm_eps = r.real("rms_norm_eps", 1e-6);
    c.rope_theta = r.real("rope_theta", 10000.0);
    if (const JsonValue* v = r.get("rope_scaling"); v && v->kind != JsonValue::Kind::null)
      r.bad("rope_scaling", "is set: RoPE scaling is not implemented");
    if (r.boolean("attention_bias", false)) r.bad("attention_bias", "is true: attention biases are not implemented");
    if (r.boolean("mlp_bias", false)) r.bad("mlp_bias", "is true: MLP biases are not implemented");
    if (r.integer("pretraining_tp", false, 1) != 1) r.bad("pretraining_tp", "must be 1");
    c.tie_weights = r.boolean("tie_word_embeddings", false);
    r.ignore({"attention_dropout"});
  } else if (type == "openai-gpt") {
    c.kind = ModelKind::gpt;
    c.vocab_size = r.integer("vocab_size", false, 40478);
    c.n_ctx = r.integer("n_positions", false, 512);
    c.d_model = r.integer("n_embd", false, 768);
    c.n_layers = r.integer("n_layer", false, 12);
    c.n_heads = r.integer("n_head", false, 12);
    c.ffn_mult = 4;
    if (r.string("afn", "gelu") != "gelu") r.bad("afn", "must be \"gelu\" (OpenAIGPT's tanh GELU)");
    c.norm_eps = r.real("layer_norm_epsilon", 1e-5);
    c.init_std = r.real("initializer_range", 0.02);
    c.tie_weights = r.boolean("tie_word_embeddings", true);
    r.ignore({"resid_pdrop", "embd_pdrop", "attn_pdrop", "summary_type", "summary_use_proj", "summary_activation",
              "summary_proj_to_labels", "summary_first_dropout", "predict_special_tokens", "n_ctx"});
  } else if (type == "mixgrad_masked_mixer") {
    c.kind = ModelKind::masked_mixer;
    c.vocab_size = r.integer("vocab_size", true, 0);
    c.d_model = r.integer("d_model", true, 0);
    c.n_layers = r.integer("n_layers", true, 0);
    c.n_ctx = r.integer("n_ctx", true, 0);
    c.ffn_mult = r.integer("ffn_mult", false, c.ffn_mult);
    c.mixer_form = parse_mixer_form(r.string("mixer_form", mixer_form_name(c.mixer_form)));
    c.mixer_expansion = r.integer("mixer_expansion", false, c.mixer_expansion);
    c.mixer_heads = r.integer("mixer_heads", false, c.mixer_heads);
    c.mixer_kernel = r.integer("mixer_kernel", false, c.mixer_kernel);
    c.tie_weights = r.boolean("tie_weights", false);
    c.norm_eps = r.real("norm_eps", 1e-5);
  } else {
    throw Error("config.json '" + what + "': model_type '" + type +
                "' is not supported (llama, openai-gpt or mixgrad_masked_mixer)");
  }
  r.ignore_hf_bookkeeping();
  r.finish();
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error("config.json '" + what + "': " + e.what());
  }
  return c;
}

std::string model_config_yaml(const ModelConfig& c) {
  std::string y = "model:\n";
  auto kv = [&](const char* k, const std::string& v) { y += std::string("  ") + k + ": " + v + "\n"; };
  kv("kind", model_kind_name(c.kind));
  kv("d_model", std::to_string(c.d_model));
  kv("n_layers", std::to_string(c.n_layers));
  kv("n_ctx", std::to_string(c.n_ctx));
  kv("n_heads", std::to_string(c.n_heads));
  kv("ffn_mult", std::to_string(c.ffn_mult));
  kv("mixer_form", mixer_form_name(c.mixer_form));
  kv("mixer_expansion", std::to_string(c.mixer_expansion));
  kv("mixer_heads", std::to_string(c.mixer_heads));
  kv("mixer_kernel", std::to_string(c.mixer_kernel));
  kv("tie_weights", c.resolved_tie_weights() ? "true" : "false");
  kv("norm_eps", num(c.resolved_norm_eps()));
  kv("rope_theta", num(c.rope_theta));
  kv("init_std", num(c.init_std));
  return y;
}

}  // namespace mg
