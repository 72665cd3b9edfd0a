#include "experiments/export.h"

#include <cstdio>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/safetensors.h"
#include "data/bpe_tokenizer.h"
#include "data/hf_tokenizer_json.h"
#include "data/shards.h"
#include "experiments/args.h"
#include "experiments/interop_dir.h"
#include "experiments/model_config_json.h"
#include "experiments/run_config.h"
#include "nn/checkpoint.h"
#include "nn/weight_layout.h"

namespace mg {

namespace fs = std::filesystem;

namespace {
constexpr const char* kUsage =
    "usage: mixgrad export --checkpoint RUN/checkpoint.safetensors --to pytorch|hf OUT_DIR\n"
    "  writes OUT_DIR/model.safetensors (weights only, PyTorch / Hugging Face names), config.json,\n"
    "  tokenizer.json (Hugging Face) and config.yaml (the run's config); docs/interop.md";
}  // namespace

int run_export(const std::vector<std::string>& argv) {
  for (const auto& a : argv)
    if (a == "--help" || a == "-h") {
      std::printf("%s\n", kUsage);
      return 0;
    }
  Args a("export", argv, {"checkpoint", "to"}, {});
  MG_CHECK(a.has("checkpoint"), "export: --checkpoint PATH is required\n", kUsage);
  MG_CHECK(a.has("to"), "export: --to pytorch|hf is required\n", kUsage);
  const WeightLayout layout = parse_weight_layout(a.get("to", ""));
  const std::string out = a.positional("OUT_DIR");
  const std::string ckpt = a.get("checkpoint", "");

  // The run: its config (in the checkpoint), tokenizer.bpe beside it, the weights.
  const auto meta = read_checkpoint_metadata(ckpt);
  auto cfg = meta.find("config");
  MG_CHECK(cfg != meta.end(), "export: checkpoint '", ckpt, "' carries no config");
  const RunConfig rc = parse_run_config(cfg->second, ckpt + " [config]");
  require_language_model(rc, ckpt, "export");
  const std::string tok_path = (fs::path(ckpt).parent_path() / "tokenizer.bpe").string();
  const BpeTokenizer tok = BpeTokenizer::load(tok_path);
  if (auto fp = meta.find("tokenizer.fingerprint"); fp != meta.end())
    MG_CHECK(fp->second == std::to_string(tokenizer_fingerprint(tok)), "export: ", tok_path,
             " is not the tokenizer ", ckpt, " was trained with");
  Generator gen(0);
  std::unique_ptr<LanguageModel> model = make_model(rc.model, gen);
  load_checkpoint(ckpt, *model, nullptr);
  // Checked before anything is written (gpt with ffn_mult != 4 has no HF config).
  const std::string config_json = model_config_json(rc.model, tok.eos_id(), tok.pad_id());
  const std::string tokenizer_json = hf_tokenizer_json(tok);

  StagingDir stage(out, "export");
  save_safetensors(stage.file("model.safetensors"), export_state_dict(*model, layout),
                   {{"format", "pt"}, {"mixgrad.layout", weight_layout_name(layout)}, {"mixgrad.model", rc.model.summary()}});
  write_file_atomically(stage.file("config.json"), config_json);
  write_file_atomically(stage.file("tokenizer.json"), tokenizer_json);
  write_file_atomically(stage.file("config.yaml"), rc.source_yaml);
  stage.commit();
  std::printf("exported %s (%s, %lld parameters) as %s weights to %s\n", ckpt.c_str(), rc.model.summary().c_str(),
              (long long)model->num_parameters(), weight_layout_name(layout), out.c_str());
  return 0;
}

}  // namespace mg
