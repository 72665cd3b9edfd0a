#pragma once
// Op and module instrumentation: the hooks that anomaly mode (autograd/anomaly.h), the profiler
// (`mixgrad profile`), the graph picture (`mixgrad graph`) and the audit are built on.
//
// Every differentiable op reports one forward event for its output (through record(), whether
// or not it records a backward node; forward-only ops through report_forward()), and the
// backward engine reports one event per gradient a node produces. Events carry the op name, the
// dotted path of the module that ran the op (the state-dict prefix, e.g. "mixerblocks.3.conv")
// and the op's own wall time.
//
// Observers are THREAD-LOCAL: an OpObserverGuard sees the ops run on the thread that installed
// it (all of mixgrad's ops run on the caller's thread; OpenMP workers inside a kernel are part
// of that op). Guards nest: every installed observer sees every event, innermost first.
// With no observer installed an op pays one thread-local load and branch; the module path is
// kept regardless (one string per module call), so backward nodes can name their module.
#include <functional>
#include <memory>
#include <string>

#include "core/tensor.h"

namespace mg {

// Module paths: a model's forward wraps each child module call so ops know where they run.
// `name` is the child's registered name ("mixerblocks", "3", "conv"); the path is the names of
// the open scopes joined by dots. An empty name adds nothing (the root model).
class ModuleScope {
 public:
  explicit ModuleScope(const std::string& name);
  // Sets the path outright (nn::Module::forward_scope() passes the module's own dotted path, so
  // a block called straight from a model's loop still gets "mixerblocks.3").
  struct Absolute {
    std::string path;
  };
  explicit ModuleScope(Absolute path);
  ~ModuleScope();
  ModuleScope(const ModuleScope&) = delete;
  ModuleScope& operator=(const ModuleScope&) = delete;

 private:
  std::shared_ptr<const std::string> prev_;
  bool pushed_ = false;
};

// Dotted path of the module now running, e.g. "mixerblocks.3.conv" ("" outside any module).
// Uses the same names as Module::named_parameters() / the state dict.
std::string current_module_path();
// The same path as a shared handle (never null), cheap to keep in every backward node.
std::shared_ptr<const std::string> current_module_path_ref();

struct OpEvent {
  const char* op;            // op name as used by record() / the op table
  std::string module_path;   // current_module_path() when the op ran (forward) / was recorded (backward)
  bool backward;             // false: a forward op output; true: a backward node's output gradient(s)
  const Tensor* output;      // forward: the op's output; backward: one gradient w.r.t. an input (may be undefined)
  int input_index;           // backward: which input the gradient is for (-1: see below); forward: -1
  double seconds;            // wall time of this op (forward or backward)
  // Backward specifics. A node with n inputs reports n events (input_index 0..n-1); the node's
  // apply() time is on the first and the others carry 0, so summing `seconds` over events sums
  // time without double counting. A node that returns no gradients (AccumulateGrad, which adds
  // into a leaf's .grad) reports one event with input_index -1 and an undefined output. The
  // engine's own summing of two gradients that reach one tensor reports op "grad_sum"
  // (input_index -1, output = the sum).
  int num_inputs = 0;        // backward: the node's input count; forward: the op's input count
  uint64_t node_id = 0;      // backward: the node's sequence number; forward: the output's grad_fn
                             // sequence number when the op recorded one, else 0
  const std::vector<std::shared_ptr<struct Node>>* next = nullptr;  // backward: the node's edges
  const std::vector<Tensor>* inputs = nullptr;  // forward: the op's inputs when it recorded through record()
};

using OpObserver = std::function<void(const OpEvent&)>;

// Installs an observer on this thread for its lifetime; observers nest. An observer may throw
// (anomaly mode does): the exception leaves the op that reported the event.
class OpObserverGuard {
 public:
  explicit OpObserverGuard(OpObserver fn);
  ~OpObserverGuard();
  OpObserverGuard(const OpObserverGuard&) = delete;
  OpObserverGuard& operator=(const OpObserverGuard&) = delete;

 private:
  size_t index_;
};

// Whether any observer is installed on this thread (the fast path tests this).
bool observing();

// Brackets an op's own work, for its event's `seconds`. Every public op opens one first thing,
// so time between ops (module code, the caller) is never charged to an op. Scopes nest and each
// op is charged its EXCLUSIVE time: while an inner op runs, the outer op's clock is paused, and
// the time of a nested scope that reports nothing (a helper) goes to its caller. So
// cross_entropy, whose kernel runs before it calls sum and mul for the mean, is charged the
// kernel, and sum and mul only themselves; the pieces add up to the outer op's wall time
// (less the glue of composite ops that never report, like mse_loss).
class OpScope {
 public:
  OpScope() : active_(observing()) {
    if (active_) enter();
  }
  ~OpScope() {
    if (active_) leave();
  }
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;

 private:
  static void enter();
  static void leave();
  bool active_;
};

// For devices whose kernels run asynchronously (CUDA): while it lives, `sync` (a device
// synchronize) runs when an op's clock starts and before it stops, so `seconds` is the kernels'
// time rather than their launch's. Costs a synchronize per op; profilers only. Thread-local.
class OpSyncGuard {
 public:
  explicit OpSyncGuard(std::function<void()> sync);
  ~OpSyncGuard();
  OpSyncGuard(const OpSyncGuard&) = delete;
  OpSyncGuard& operator=(const OpSyncGuard&) = delete;

 private:
  std::function<void()> prev_;
};

// Reports the forward event of an op that records no backward node (forward-only ops). The
// differentiable ops report through record() (autograd/node.h). No-op without observers.
void report_forward(const char* op, const Tensor& out, int num_inputs);

namespace detail {
// Used by record() and the backward engine; see the .cpp.
void report_forward_event(const char* op, const Tensor& out, int num_inputs,
                          const std::vector<Tensor>* inputs = nullptr);
bool in_backward_node();
struct BackwardNodeScope {  // while a backward node runs: ops inside it report nothing
  BackwardNodeScope();
  ~BackwardNodeScope();
  bool prev;
};
void report_backward(const struct Node& node, const std::vector<Tensor>& grads, double seconds);
void report_grad_sum(const struct Node& receiver, const Tensor& sum, double seconds);
double now_seconds();
void timing_sync();  // the OpSyncGuard's sync, if any
// Forward events reported outside any OpScope on this thread since the first observer was
// installed: their time may include work that is not the op's (a missing OpScope is a bug the
// profiler tests catch with this).
size_t unscoped_reports();
}  // namespace detail

}  // namespace mg
