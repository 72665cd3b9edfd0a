#include "experiments/import.h"

#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/read_file.h"
#include "core/safetensors.h"
#include "data/bpe_tokenizer.h"
#include "data/hf_tokenizer_json.h"
#include "data/shards.h"
#include "experiments/args.h"
#include "experiments/eval_ids.h"
#include "experiments/interop_dir.h"
#include "experiments/model_config_json.h"
#include "experiments/run_config.h"
#include "nn/checkpoint.h"
#include "nn/weight_layout.h"

namespace mg {

namespace fs = std::filesystem;

namespace {

constexpr const char* kUsage =
    "usage: mixgrad import --from pytorch|hf WEIGHTS.safetensors [--config config.json|CONFIG.yaml]\n"
    "                      --tokenizer tokenizer.json|tokenizer.bpe --out DIR\n"
    "  makes a run directory (checkpoint.safetensors, config.yaml, tokenizer.bpe) from PyTorch /\n"
    "  Hugging Face weights; --config defaults to config.json beside the weights; docs/interop.md";

bool ends_with(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// Rows of the vocabulary-indexed tensors, from the file's token ids to ours:
// out[i] = in[file_id_of[i]].
Tensor permute_rows(const Tensor& t, const std::vector<int32_t>& file_id_of) {
  Tensor src = t.to(DType::f32).contiguous();
  Tensor dst = src.clone();
  const int64_t V = src.size(0), row = src.numel() / V;
  const float* s = src.data_ptr<float>();
  float* d = dst.data_ptr<float>();
  for (int64_t i = 0; i < V; ++i) {
    const int64_t from = i < int64_t(file_id_of.size()) ? file_id_of[size_t(i)] : i;
    std::copy(s + from * row, s + (from + 1) * row, d + i * row);
  }
  return dst;
}

}  // namespace

int run_import(const std::vector<std::string>& argv) {
  for (const auto& a : argv)
    if (a == "--help" || a == "-h") {
      std::printf("%s\n", kUsage);
      return 0;
    }
  Args a("import", argv, {"from", "config", "tokenizer", "out"}, {});
  MG_CHECK(a.has("from"), "import: --from pytorch|hf is required\n", kUsage);
  MG_CHECK(a.has("tokenizer"), "import: --tokenizer tokenizer.json|tokenizer.bpe is required\n", kUsage);
  MG_CHECK(a.has("out"), "import: --out DIR is required\n", kUsage);
  const WeightLayout layout = parse_weight_layout(a.get("from", ""));
  const std::string weights = a.positional("WEIGHTS.safetensors");
  const std::string tok_path = a.get("tokenizer", "");
  const std::string out = a.get("out", "");
  const std::string cfg_path = a.get("config", (fs::path(weights).parent_path() / "config.json").string());
  for (const auto& [what, p] : {std::pair<const char*, std::string>{"weights", weights}, {"--tokenizer", tok_path},
                                {a.has("config") ? "--config" : "config (default: config.json beside the weights)",
                                 cfg_path}})
    MG_CHECK(fs::is_regular_file(p), "import: ", what, " file '", p, "' does not exist");

  // The tokenizer, in our id layout, and where the file's ids differ from ours.
  BpeTokenizer tok;
  std::vector<int32_t> file_id_of;  // our id -> the tokenizer file's id (empty: the same)
  std::string tok_note;
  if (ends_with(tok_path, ".json")) {
    HfTokenizer hf = load_hf_tokenizer_json(tok_path);
    tok = hf.bpe;
    if (!hf.same_as_bpe()) file_id_of = hf.hf_ids;
    tok_note = hf.pretokenizer_difference();
  } else {
    tok = BpeTokenizer::load(tok_path);
  }

  // The run config: ours (YAML) as it is, or a config.json turned into one.
  std::string yaml;
  const std::string name = fs::path(out).filename().string();
  const bool from_yaml = ends_with(cfg_path, ".yaml") || ends_with(cfg_path, ".yml");
  if (from_yaml) {
    yaml = read_file_or_throw(cfg_path);
  } else {
    const ModelConfig mc = parse_model_config_json(read_file_or_throw(cfg_path), cfg_path);
    MG_CHECK(mc.vocab_size == tok.vocab_size(), "import: ", cfg_path, " has vocab_size ", mc.vocab_size, ", the tokenizer ",
             tok_path, " has ", tok.vocab_size(), " tokens; they must agree");
    yaml = "# made by mixgrad import from " + cfg_path + "\nname: " + name + "\n" + model_config_yaml(mc) +
           "data:\n  vocab_size: " + std::to_string(tok.vocab_size()) + "\n";
  }
  const RunConfig rc = parse_run_config(yaml, cfg_path);
  require_language_model(rc, cfg_path, "import");
  MG_CHECK(rc.model.vocab_size == tok.vocab_size(), "import: ", cfg_path, " has vocab_size ", rc.model.vocab_size,
           ", the tokenizer ", tok_path, " has ", tok.vocab_size(), " tokens; they must agree");

  // The weights, renamed to ours, rows in our token order, loaded strictly.
  SafetensorsFile f = load_safetensors(weights);
  std::map<std::string, Tensor> tensors(f.tensors.begin(), f.tensors.end());
  std::map<std::string, Tensor> state = import_state_dict(tensors, rc.model, layout);
  if (!file_id_of.empty())
    for (const char* n : {"wte.weight", "lm_head.weight", "model.embed_tokens.weight", "transformer.tokens_embed.weight"})
      if (auto it = state.find(n); it != state.end() && it->second.dim() == 2 && it->second.size(0) == tok.vocab_size())
        it->second = permute_rows(it->second, file_id_of);
  Generator gen(0);
  std::unique_ptr<LanguageModel> model = make_model(rc.model, gen);
  try {
    model->load_state_dict(state, /*strict=*/true);
  } catch (const Error& e) {
    throw Error("import: '" + weights + "' does not fit " + rc.model.summary() + " (" + weight_layout_name(layout) +
                " layout): " + e.what());
  }

  const std::string fingerprint = std::to_string(tokenizer_fingerprint(tok));
  StagingDir stage(out, "import");
  tok.save(stage.file("tokenizer.bpe"));
  write_file_atomically(stage.file("config.yaml"), yaml);
  std::map<std::string, std::string> meta = {{"model", rc.model.summary()},
                                             {"config", yaml},
                                             {"tokenizer.fingerprint", fingerprint},
                                             {"imported.weights", weights},
                                             {"imported.layout", weight_layout_name(layout)},
                                             {"imported.tokenizer", tok_path}};
  if (!tok_note.empty()) meta["imported.tokenizer_note"] = tok_note;
  if (!from_yaml) meta[kImportedWithoutData] = "the run config came from " + cfg_path + ": it has no data section";
  save_checkpoint(stage.file("checkpoint.safetensors"), *model, nullptr, meta);
  stage.commit();
  if (!tok_note.empty()) std::fprintf(stderr, "import: note: %s\n", tok_note.c_str());
  std::printf("imported %s (%s, %lld parameters) into %s\n", weights.c_str(), rc.model.summary().c_str(),
              (long long)model->num_parameters(), out.c_str());
  return 0;
}

}  // namespace mg
