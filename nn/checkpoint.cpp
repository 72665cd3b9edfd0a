#include "nn/checkpoint.h"

#include "autograd/grad_mode.h"
#include "core/safetensors.h"
#include "ops/inplace.h"

namespace mg {

namespace {
const std::string kOptPrefix = "optimizer.";

void check_format(const std::string& path, const std::map<std::string, std::string>& meta) {
  auto it = meta.find("format");
  MG_CHECK(it != meta.end(), "checkpoint '", path, "': no 'format' metadata; not a mixgrad checkpoint");
  MG_CHECK(it->second == kCheckpointFormat, "checkpoint '", path, "': format '", it->second, "', expected '",
           kCheckpointFormat, "'");
}
}  // namespace

void save_checkpoint(const std::string& path, const Module& model, Optimizer* optimizer,
                     std::map<std::string, std::string> metadata) {
  std::vector<std::pair<std::string, Tensor>> tensors = model.state_dict();
  if (optimizer) {
    for (auto& [name, t] : optimizer->state_tensors()) tensors.emplace_back(kOptPrefix + name, t);
    metadata["optimizer.step"] = std::to_string(optimizer->step_count());
  }
  metadata["format"] = kCheckpointFormat;
  save_safetensors(path, tensors, metadata);
}

std::map<std::string, std::string> read_checkpoint_metadata(const std::string& path) {
  SafetensorsFile f = load_safetensors(path);
  check_format(path, f.metadata);
  return f.metadata;
}

std::map<std::string, std::string> load_checkpoint(const std::string& path, Module& model, Optimizer* optimizer) {
  SafetensorsFile f = load_safetensors(path);
  check_format(path, f.metadata);
  std::map<std::string, Tensor> params, opt_state;
  for (auto& [name, t] : f.tensors) {
    if (name.rfind(kOptPrefix, 0) == 0) opt_state[name.substr(kOptPrefix.size())] = t;
    else params[name] = t;
  }
  // Validate the optimizer part before touching the model, so a failure changes nothing.
  std::vector<std::pair<std::string, Tensor>> targets;
  int64_t steps = 0;
  if (optimizer) {
    std::string problems;
    for (auto& [name, live] : optimizer->state_tensors()) {
      auto it = opt_state.find(name);
      if (it == opt_state.end()) {
        problems += "\n  optimizer." + name + ": missing";
        continue;
      }
      if (it->second.shape() != live.shape())
        problems += "\n  optimizer." + name + ": checkpoint has " + shape_str(it->second.shape()) + ", optimizer has " +
                    shape_str(live.shape());
      targets.emplace_back(name, live);
    }
    auto st = f.metadata.find("optimizer.step");
    if (st == f.metadata.end()) problems += "\n  metadata optimizer.step: missing";
    else {
      try {
        steps = std::stoll(st->second);
      } catch (...) {
        problems += "\n  metadata optimizer.step: '" + st->second + "' is not an integer";
      }
    }
    MG_CHECK(problems.empty(), "checkpoint '", path, "' does not fit the optimizer:", problems);
  }
  try {
    model.load_state_dict(params, /*strict=*/true);
  } catch (const Error& e) {
    throw Error("checkpoint '" + path + "': " + e.what());
  }
  if (optimizer) {
    NoGradGuard no_grad;
    for (auto& [name, live] : targets) assign_(live, opt_state[name].to(live.device()).to(live.dtype()));
    optimizer->set_step_count(steps);
  }
  return f.metadata;
}

}  // namespace mg
