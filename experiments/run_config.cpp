#include "experiments/run_config.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "experiments/yaml_reader.h"

namespace mg {

namespace {

void read_model(YamlSection s, ModelConfig& m) {
  std::string kind = model_kind_name(m.kind), form = mixer_form_name(m.mixer_form);
  s.get_choice("kind", kind, {"masked_mixer", "llama", "gpt"});
  m.kind = parse_model_kind(kind);
  s.get("vocab_size", m.vocab_size);
  s.get("d_model", m.d_model);
  s.get("n_layers", m.n_layers);
  s.get("n_ctx", m.n_ctx);
  s.get("n_heads", m.n_heads);
  s.get("ffn_mult", m.ffn_mult);
  s.get_choice("mixer_form", form, {"flat", "expanded", "multihead", "kernel"});
  m.mixer_form = parse_mixer_form(form);
  s.get("mixer_expansion", m.mixer_expansion);
  s.get("mixer_heads", m.mixer_heads);
  s.get("mixer_kernel", m.mixer_kernel);
  s.get("tie_weights", m.tie_weights);
  s.get("norm_eps", m.norm_eps);
  s.get("rope_theta", m.rope_theta);
  s.get("init_std", m.init_std);
  s.finish();
}

void read_data(YamlSection s, DataConfig& d) {
  s.get_choice("format", d.corpus.format, {"gutenberg", "text", "jsonl", "json", "dir"});
  s.get("path", d.corpus.path);
  s.get("field", d.corpus.field);
  s.get("separator", d.corpus.separator);
  int64_t mdb = int64_t(d.corpus.max_document_bytes);
  s.get("max_document_bytes", mdb);
  MG_CHECK(mdb > 0, "data.max_document_bytes must be positive, got ", mdb);
  d.corpus.max_document_bytes = size_t(mdb);
  int64_t maxd = int64_t(d.max_documents);
  s.get("max_documents", maxd);
  MG_CHECK(maxd >= 0, "data.max_documents must be >= 0, got ", maxd);
  d.max_documents = uint64_t(maxd);
  s.get("vocab_size", d.vocab_size);
  MG_CHECK(d.vocab_size > 258 && d.vocab_size <= kMaxShardVocab, "data.vocab_size must be in (258, ", kMaxShardVocab,
           "], got ", d.vocab_size);
  s.get("tokenizer", d.tokenizer);
  s.get("cache_dir", d.cache_dir);
  {
    YamlSection v = s.section("validation");
    std::string mode = "hash";
    v.get_choice("mode", mode, {"hash", "first", "last"});
    d.split.mode = mode == "hash" ? ValidationSplit::Mode::hash
                   : mode == "first" ? ValidationSplit::Mode::first
                                     : ValidationSplit::Mode::last;
    v.get("fraction", d.split.fraction);
    MG_CHECK(d.split.fraction >= 0 && d.split.fraction <= 1, "data.validation.fraction must be in [0, 1]");
    int64_t c = int64_t(d.split.count);
    v.get("count", c);
    d.split.count = uint64_t(c);
    v.finish();
  }
  std::string batching = "per_document", side = "right";
  s.get_choice("batching", batching, {"per_document", "packed"});
  d.batching = batching == "packed" ? BatchMode::packed : BatchMode::per_document;
  s.get_choice("pad_side", side, {"right", "left"});
  d.pad_side = side == "left" ? PadSide::left : PadSide::right;
  s.finish();
}

void read_train(YamlSection s, TrainSettings& t) {
  s.get("batch_size", t.batch_size);
  s.get("grad_accum_steps", t.grad_accum_steps);
  s.get("steps", t.steps);
  s.get("lr", t.lr);
  s.get("warmup_steps", t.warmup_steps);
  std::string decay = t.decay == DecayKind::linear ? "linear" : t.decay == DecayKind::cosine ? "cosine" : "constant";
  s.get_choice("decay", decay, {"linear", "cosine", "constant"});
  t.decay = decay == "linear" ? DecayKind::linear : decay == "cosine" ? DecayKind::cosine : DecayKind::constant;
  s.get("min_lr", t.min_lr);
  s.get("weight_decay", t.weight_decay);
  s.get("beta1", t.beta1);
  s.get("beta2", t.beta2);
  s.get("eps", t.eps);
  s.get("grad_clip", t.grad_clip);
  s.get("eval_every", t.eval_every);
  s.get("eval_batches", t.eval_batches);
  s.get("log_every", t.log_every);
  s.get("checkpoint_every", t.checkpoint_every);
  int64_t seed = int64_t(t.seed);
  s.get("seed", seed);
  t.seed = uint64_t(seed);
  s.get("threads", t.threads);
  s.get("device", t.device);
  s.get_choice("precision", t.precision, {"f32", "bf16"});
  s.get("deterministic", t.deterministic);
  s.get("detect_anomaly", t.detect_anomaly);
  s.get("reduce_bucket_mb", t.reduce_bucket_mb);
  s.get("reduce_overlap", t.reduce_overlap);
  s.get("time_limit_minutes", t.time_limit_minutes);
  s.finish();
  validate_train_settings(t, s.file());
}

}  // namespace

RunConfig parse_run_config(const std::string& text, const std::string& label) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw Error("config file '" + label + "': " + e.what());
  }
  RunConfig rc;
  rc.source_yaml = text;
  YamlSection top(root, label, "");
  rc.name = std::filesystem::path(label).stem().string();
  top.get("name", rc.name);
  top.get("out_dir", rc.out_dir);
  if (rc.out_dir.empty()) rc.out_dir = "runs/" + rc.name;
  top.get("autoencoder", rc.autoencoder);
  read_model(top.section("model"), rc.model);
  read_data(top.section("data"), rc.data);
  read_train(top.section("train"), rc.train);
  top.finish();
  // The model's vocabulary is the tokenizer's; a different value in model: is a mistake.
  if (top.section("model").has("vocab_size"))
    MG_CHECK(rc.model.vocab_size == rc.data.vocab_size, label, ": model.vocab_size ", rc.model.vocab_size,
             " differs from data.vocab_size ", rc.data.vocab_size, " (the tokenizer's size); set only data.vocab_size");
  rc.model.vocab_size = rc.data.vocab_size;
  try {
    rc.model.validate();
  } catch (const Error& e) {
    throw Error(label + ": model: " + e.what());
  }
  return rc;
}

RunConfig load_run_config(const std::string& path) {
  MG_CHECK(std::filesystem::is_regular_file(path), "config file '", path, "' does not exist");
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  MG_CHECK(in.good() || in.eof(), "config file '", path, "' cannot be read");
  return parse_run_config(ss.str(), path);
}

void require_language_model(const RunConfig& rc, const std::string& source, const std::string& command) {
  MG_CHECK(!rc.autoencoder, command, ": ", source, " is an autoencoder run (autoencoder: true), not a language model; "
           "use `mixgrad autoencode`");
}

}  // namespace mg
