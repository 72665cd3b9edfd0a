#pragma once
// Checkpoints: one safetensors file holding the model's parameters under their PyTorch names
// (so `safetensors.torch.load_file` gives a state dict PyTorch can load, after dropping the
// "optimizer." entries), the optimizer's state under "optimizer.<state name>", and string
// metadata (format version, step, data position, the run's config...). Written atomically: a
// crash mid-write leaves the previous checkpoint intact and no partial file.
#include <map>
#include <string>

#include "nn/module.h"
#include "nn/optim.h"

namespace mg {

inline constexpr const char* kCheckpointFormat = "mixgrad-checkpoint-1";

// `optimizer` may be null (weights only). metadata gains "format" and "optimizer.step".
void save_checkpoint(const std::string& path, const Module& model, Optimizer* optimizer,
                     std::map<std::string, std::string> metadata);

// Reads only the metadata (cheap checks before building a model). Throws naming the file when it
// is not a mixgrad checkpoint.
std::map<std::string, std::string> read_checkpoint_metadata(const std::string& path);

// Loads parameters (strict: every parameter present with its shape) and, when `optimizer` is
// given, its state and step count. Everything is checked before anything is written: on any
// error (corrupt/truncated file, missing or mismatched tensor) the model and optimizer are
// unchanged and one mg::Error names the file and every problem. Returns the metadata.
std::map<std::string, std::string> load_checkpoint(const std::string& path, Module& model, Optimizer* optimizer);

}  // namespace mg
