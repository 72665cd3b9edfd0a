#pragma once
// Module: a named tree of parameters, in the spirit of torch.nn.Module.
//
// A module registers its own parameters (leaf tensors with requires_grad) and its child modules
// by name, in order; named_parameters() walks the tree depth first and joins names with dots
// ("mixerblocks.0.conv.weight"), which are the names of PyTorch's state dict, so checkpoints
// move between the two both ways.
//
// A tensor registered under several names (tied weights: a GPT lm_head that reuses the token
// embedding) is ONE parameter: named_parameters(), parameters(), state_dict() and
// num_parameters() list it once, under the first name reached (PyTorch's dedup rule), and
// load_state_dict() accepts it under any of its names.
//
// Children are held by reference, so a Module can be neither copied nor moved; build models on
// the heap (make_model returns a unique_ptr) and keep lists of blocks in a ModuleList.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/instrument.h"
#include "core/tensor.h"

namespace mg {

// Name -> tensor in registration order (what save_safetensors takes).
using StateDict = std::vector<std::pair<std::string, Tensor>>;

struct LoadStateDictResult {
  std::vector<std::string> missing;     // model parameters the checkpoint lacks (strict=false only)
  std::vector<std::string> unexpected;  // checkpoint entries the model lacks (strict=false only)
};

class Module {
 public:
  Module() = default;
  virtual ~Module();
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  Module(Module&&) = delete;
  Module& operator=(Module&&) = delete;

  // Unique parameters with their dotted names, depth first in registration order.
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<Tensor> parameters() const;
  // The parameters as detached tensors that share their memory (writing into one writes the model).
  StateDict state_dict() const;
  int64_t num_parameters() const;

  // Copies every checkpoint tensor into the parameter of the same name, in place (device and
  // dtype converted), so optimizers and other holders of the parameters see the new values.
  // Checks everything first and writes nothing when it throws. Throws ONE mg::Error listing all
  // problems: with strict, missing and unexpected names; always, shape mismatches
  // ("mixerblocks.0.conv.weight: checkpoint has [512, 512, 1], model has [256, 256, 1]").
  // A tied parameter is satisfied by any of its names; when several are given, the first in
  // the model's registration order is copied.
  LoadStateDictResult load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);
  LoadStateDictResult load_state_dict(const StateDict& state, bool strict = true);

  // This module's dotted name from the root of its tree ("mixerblocks.3.conv"; "" for the
  // root), the prefix of its parameters' state-dict names. A module registered under several
  // names keeps the first.
  std::string module_path() const;
  // Opens the module's path for the ops of its forward (autograd/instrument.h); every forward
  // starts with `ModuleScope scope = forward_scope();`.
  ModuleScope forward_scope() const { return ModuleScope(ModuleScope::Absolute{module_path()}); }

  // Drops every parameter's .grad.
  void zero_grad();
  // Moves / converts every parameter in place: the Tensor handles held by the model (and by
  // anyone else) stay valid and see the new memory, like PyTorch's `param.data = ...`.
  // Gradients are dropped. Build optimizers after these calls: their state is per device/dtype.
  Module& to(Device device);
  Module& to(DType dtype);

 protected:
  // Registers a parameter (made a leaf requiring grad) under `name` (no dots) and returns it.
  Tensor register_parameter(const std::string& name, Tensor t);
  // Registers a child module under `name` (no dots); the child must outlive this module.
  template <class M>
  M& register_module(const std::string& name, M& child) {
    add_child(name, child);
    return child;
  }

 private:
  void add_child(const std::string& name, Module& child);
  void check_new_name(const std::string& name) const;
  // Every (name, tensor) pair, duplicates of tied tensors included.
  void collect(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out) const;
  void convert(bool to_device, Device device, DType dtype);

  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<std::pair<std::string, Module*>> children_;
  const Module* parent_ = nullptr;  // first module that registered this one
  std::string name_;                // the name it registered this one under
};

// Children named "0", "1", ... (torch.nn.ModuleList), owned by the list.
template <class M>
class ModuleList : public Module {
 public:
  M& push_back(std::unique_ptr<M> m) {
    items_.push_back(std::move(m));
    return register_module(std::to_string(items_.size() - 1), *items_.back());
  }
  size_t size() const { return items_.size(); }
  M& operator[](size_t i) const { return *items_[i]; }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }

 private:
  std::vector<std::unique_ptr<M>> items_;
};

}  // namespace mg
