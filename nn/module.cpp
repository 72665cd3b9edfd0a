#include "nn/module.h"

#include <set>
#include <unordered_map>

#include "autograd/grad_mode.h"
#include "ops/inplace.h"

namespace mg {

Module::~Module() = default;

void Module::check_new_name(const std::string& name) const {
  MG_CHECK(!name.empty() && name.find('.') == std::string::npos, "Module: invalid name '", name,
           "' (must be non-empty and contain no '.')");
  for (const auto& [n, _] : params_) MG_CHECK(n != name, "Module: name '", name, "' registered twice");
  for (const auto& [n, _] : children_) MG_CHECK(n != name, "Module: name '", name, "' registered twice");
}

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  check_new_name(name);
  MG_CHECK(t.defined(), "Module: parameter '", name, "' is undefined");
  MG_CHECK(t.is_leaf(), "Module: parameter '", name, "' must be a leaf tensor (detach it first)");
  if (!t.requires_grad()) t.set_requires_grad(true);
  params_.emplace_back(name, t);
  return t;
}

void Module::add_child(const std::string& name, Module& child) {
  check_new_name(name);
  MG_CHECK(&child != this, "Module: cannot register a module as its own child ('", name, "')");
  children_.emplace_back(name, &child);
  if (!child.parent_) {
    child.parent_ = this;
    child.name_ = name;
  }
}

std::string Module::module_path() const {
  std::string path = name_;
  for (const Module* m = parent_; m && m->parent_; m = m->parent_) path = m->name_ + "." + path;
  return path;
}

void Module::collect(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out) const {
  for (const auto& [n, t] : params_) out.emplace_back(prefix + n, t);
  for (const auto& [n, m] : children_) m->collect(prefix + n + ".", out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> all, unique;
  collect("", all);
  std::set<const TensorImpl*> seen;
  for (auto& p : all)
    if (seen.insert(p.second.impl()).second) unique.push_back(std::move(p));
  return unique;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> r;
  for (auto& [_, t] : named_parameters()) r.push_back(t);
  return r;
}

StateDict Module::state_dict() const {
  StateDict r;
  for (auto& [n, t] : named_parameters()) r.emplace_back(n, t.detach());
  return r;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (auto& [_, t] : named_parameters()) n += t.numel();
  return n;
}

LoadStateDictResult Module::load_state_dict(const StateDict& state, bool strict) {
  std::map<std::string, Tensor> m;
  for (const auto& [n, t] : state) {
    MG_CHECK(m.emplace(n, t).second, "load_state_dict: checkpoint lists '", n, "' twice");
  }
  return load_state_dict(m, strict);
}

LoadStateDictResult Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  std::vector<std::pair<std::string, Tensor>> all;
  collect("", all);
  // Group the names of each parameter (several when tied), in registration order.
  std::vector<const TensorImpl*> order;
  std::unordered_map<const TensorImpl*, std::vector<std::string>> names;
  std::unordered_map<const TensorImpl*, Tensor> tensor_of;
  std::set<std::string> known;
  for (const auto& [n, t] : all) {
    if (!names.count(t.impl())) {
      order.push_back(t.impl());
      tensor_of[t.impl()] = t;
    }
    names[t.impl()].push_back(n);
    known.insert(n);
  }

  LoadStateDictResult result;
  std::vector<std::string> problems;
  std::vector<std::pair<Tensor, Tensor>> copies;  // (destination parameter, source)
  for (const TensorImpl* key : order) {
    const Tensor& dst = tensor_of[key];
    const std::string* found = nullptr;
    for (const std::string& n : names[key]) {
      auto it = state.find(n);
      if (it == state.end()) continue;
      const Tensor& src = it->second;
      if (!src.defined()) {
        problems.push_back(n + ": checkpoint tensor is undefined");
      } else if (!is_floating(src.dtype())) {
        problems.push_back(n + ": checkpoint has dtype " + dtype_name(src.dtype()) + ", expected a float type");
      } else if (src.shape() != dst.shape()) {
        problems.push_back(n + ": checkpoint has " + shape_str(src.shape()) + ", model has " + shape_str(dst.shape()));
      } else if (!found) {
        found = &n;
        copies.emplace_back(dst, src);
      }
    }
    bool any_present = false;
    for (const std::string& n : names[key]) any_present = any_present || state.count(n);
    if (!any_present) result.missing.push_back(names[key].front());
  }
  for (const auto& [n, _] : state)
    if (!known.count(n)) result.unexpected.push_back(n);

  if (strict) {
    if (!result.missing.empty()) {
      std::string s = "missing from the checkpoint: ";
      for (size_t i = 0; i < result.missing.size(); ++i) s += (i ? ", " : "") + result.missing[i];
      problems.insert(problems.begin(), s);
    }
    if (!result.unexpected.empty()) {
      std::string s = "unexpected in the checkpoint (not in the model): ";
      for (size_t i = 0; i < result.unexpected.size(); ++i) s += (i ? ", " : "") + result.unexpected[i];
      problems.insert(problems.begin() + (result.missing.empty() ? 0 : 1), s);
    }
  }
  if (!problems.empty()) {
    std::string msg = "load_state_dict: " + std::to_string(problems.size()) + " problem(s); nothing was loaded:";
    for (const std::string& p : problems) msg += "\n  " + p;
    throw Error(msg);
  }

  NoGradGuard no_grad;
  for (auto& [dst, src] : copies) assign_(dst, src.device() == dst.device() ? src.detach() : src.detach().to(dst.device()));
  return result;
}

void Module::zero_grad() {
  for (Tensor& p : parameters()) p.zero_grad();
}

void Module::convert(bool to_device, Device device, DType dtype) {
  MG_CHECK(to_device || dtype == DType::f32 || dtype == DType::f64 || dtype == DType::bf16,
           "Module::to: parameters must be floating, asked for ", dtype_name(dtype));
  NoGradGuard no_grad;
  for (Tensor& p : parameters()) {
    Tensor src = p.detach();
    Tensor moved = to_device ? src.to(device) : src.to(dtype);
    if (moved.same(src)) continue;  // already there
    moved = moved.contiguous();
    // Rewrite the parameter's own impl, so every handle to it follows.
    TensorImpl* impl = p.impl();
    impl->storage = moved.storage();
    impl->shape = moved.shape();
    impl->strides = moved.strides();
    impl->offset = moved.offset();
    impl->dtype = moved.dtype();
    impl->device = moved.device();
    impl->grad.reset();
    impl->grad_accumulator.reset();
  }
}

Module& Module::to(Device device) {
  convert(true, device, DType::f32);
  return *this;
}

Module& Module::to(DType dtype) {
  convert(false, kCPU, dtype);
  return *this;
}

}  // namespace mg
