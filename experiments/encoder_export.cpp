#include "experiments/encoder_export.h"

#include <filesystem>

#include <yaml-cpp/yaml.h>

#include "core/atomic_file.h"
#include "data/shards.h"
#include "experiments/autoencode.h"
#include "experiments/interop_dir.h"
#include "nn/autoencoder_encoder.h"
#include "nn/checkpoint.h"

namespace mg {

namespace fs = std::filesystem;

std::string encoder_lm_config_yaml(const RunConfig& ae, const std::string& source_run, const std::string& out_dir) {
  YAML::Node root = YAML::Load(ae.source_yaml);
  MG_CHECK(root.IsMap(), "encoder_lm_config_yaml: the autoencoder config of '", ae.name, "' is not a YAML map");
  root.remove("autoencoder");
  root["name"] = ae.name + "_encoder";
  root["out_dir"] = out_dir;
  YAML::Emitter e;
  e << root;
  MG_CHECK(e.good(), "encoder_lm_config_yaml: cannot write the config of '", ae.name, "': ", e.GetLastError());
  // One comment line per path so that no path can end the comment early.
  std::string text = "# The encoder of autoencoder run " + fs::path(source_run).filename().string() +
                     " as a language model (`mixgrad autoencode encoder`, nn/autoencoder_encoder.h): n_layers is the\n"
                     "# encoder's depth; the autoencoder's lm_head is carried but predicts nothing. Embed with\n"
                     "# --position last --pad-side left (the autoencoder's z).\n";
  return text + e.c_str() + "\n";
}

EncoderExport export_autoencoder_encoder(const std::string& run_dir, const std::string& out_dir) {
  const std::string ckpt = (fs::path(run_dir) / "checkpoint.safetensors").string();
  MG_CHECK(fs::exists(ckpt), "autoencode encoder: no checkpoint at '", ckpt,
           "' (an autoencoder run directory, trained with `mixgrad autoencode train`)");
  const auto meta = read_checkpoint_metadata(ckpt);
  {
    auto cfg = meta.find("config");
    MG_CHECK(cfg != meta.end(), "autoencode encoder: checkpoint '", ckpt, "' carries no config");
    const RunConfig rc = parse_run_config(cfg->second, ckpt + " [config]");
    MG_CHECK(rc.autoencoder, "autoencode encoder: '", run_dir,
             "' is not an autoencoder run (its config has no `autoencoder: true`); a language-model "
             "checkpoint needs no export: pass it to `mixgrad retrieve --checkpoint` as it is");
  }
  AutoencoderRun r = load_autoencoder_run(run_dir);
  const std::string tok_path = (fs::path(run_dir) / "tokenizer.bpe").string();
  const std::string fingerprint = std::to_string(tokenizer_fingerprint(r.tok));
  if (auto fp = meta.find("tokenizer.fingerprint"); fp != meta.end())
    MG_CHECK(fp->second == fingerprint, "autoencode encoder: ", tok_path, " is not the tokenizer ", ckpt,
             " was trained with");

  EncoderExport ex;
  ex.checkpoint = (fs::path(out_dir) / "checkpoint.safetensors").string();
  if (auto st = meta.find("step"); st != meta.end()) ex.source_step = st->second;
  const std::string yaml = encoder_lm_config_yaml(r.rc, run_dir, out_dir);
  ex.rc = parse_run_config(yaml, (fs::path(out_dir) / "config.yaml").string());
  require_language_model(ex.rc, out_dir, "autoencode encoder");
  std::unique_ptr<LanguageModel> lm = encoder_language_model(*r.model);
  ex.num_parameters = lm->num_parameters();

  StagingDir stage(out_dir, "autoencode encoder");
  std::error_code ec;
  const std::string source = fs::absolute(run_dir, ec).lexically_normal().string();
  save_checkpoint(stage.file("checkpoint.safetensors"), *lm, nullptr,
                  {{"config", yaml},
                   {"model", "encoder of autoencoder " + r.rc.name + ": " + ex.rc.model.summary()},
                   {"tokenizer.fingerprint", fingerprint},
                   {"autoencoder.source_run", ec ? run_dir : source},
                   {"autoencoder.source_checkpoint", ckpt},
                   {"autoencoder.source_step", ex.source_step}});
  fs::copy_file(tok_path, stage.file("tokenizer.bpe"), ec);
  MG_CHECK(!ec, "autoencode encoder: cannot copy ", tok_path, ": ", ec.message());
  write_file_atomically(stage.file("config.yaml"), yaml);
  stage.commit();
  return ex;
}

}  // namespace mg
