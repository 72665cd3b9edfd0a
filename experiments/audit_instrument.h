#pragma once
// The instrumented parts of `mixgrad audit` (autograd/instrument.h): every module's output
// activation and its gradient, and anomaly mode around the audit's backward passes.
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace mg {

// While alive and enabled, records the output of every module the forward runs: the output of
// module P is the last op output reported under P or a module inside it (the module's return
// value, for modules that end in an op). Paths under which no op ran directly are containers
// (ModuleList "mixerblocks") and are left out. Disabled, it does nothing.
class ActivationRecorder {
 public:
  explicit ActivationRecorder(bool enabled);
  ~ActivationRecorder();
  ActivationRecorder(const ActivationRecorder&) = delete;
  ActivationRecorder& operator=(const ActivationRecorder&) = delete;

  // Call after the forward and before backward: stops recording and asks every recorded
  // activation that is part of the graph to keep its gradient.
  void finish_forward();
  // After backward: appends "act.<path>" (the output) and "act_grad.<path>" (its gradient, when
  // one reached it) for every module in the order first run; returns the number of modules.
  int64_t append(std::vector<std::pair<std::string, Tensor>>& out) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Anomaly mode (autograd/anomaly.h) for a scope when enabled: the first op whose output or
// gradient holds a NaN or Inf throws mg::Error naming the op, its module and `context`.
// Disabled, it does nothing.
class AnomalyScope {
 public:
  AnomalyScope(bool enabled, const std::string& context);
  ~AnomalyScope();
  AnomalyScope(const AnomalyScope&) = delete;
  AnomalyScope& operator=(const AnomalyScope&) = delete;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace mg
