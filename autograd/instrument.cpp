#include "autograd/instrument.h"

#include <chrono>
#include <vector>

#include "autograd/node.h"

namespace mg {

namespace {

const std::shared_ptr<const std::string>& root_path() {
  static const auto root = std::make_shared<const std::string>();
  return root;
}

// Per thread: the open module path, the observers (in install order; a removed one leaves an
// empty slot so indices stay valid when guards end out of order) and the op clock.
thread_local std::shared_ptr<const std::string> t_path;
thread_local std::vector<OpObserver> t_observers;
thread_local size_t t_live = 0;  // installed observers; the fast-path test
thread_local double t_mark = 0;  // start of the current op's own work (OpScope) or end of the last report
thread_local bool t_in_node = false;
// Own time banked by each open OpScope (innermost last): the clock since t_mark belongs to the
// innermost; opening an inner scope banks the outer's time, closing one hands its unreported
// rest to the outer (work of a helper scope that reports nothing is its caller's).
thread_local std::vector<double> t_own;
thread_local size_t t_unscoped = 0;
thread_local std::function<void()> t_sync;

thread_local bool t_in_notify = false;

void notify(const OpEvent& ev) {
  // Ops an observer runs itself (a copy to the host to scan for NaN) report nothing.
  struct Busy {
    Busy() { t_in_notify = true; }
    ~Busy() { t_in_notify = false; }
  } busy;
  // Innermost first.
  for (size_t i = t_observers.size(); i-- > 0;)
    if (t_observers[i]) t_observers[i](ev);
}

}  // namespace

namespace detail {

double now_seconds() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

bool in_backward_node() { return t_in_node; }

void timing_sync() {
  if (t_sync) t_sync();
}

BackwardNodeScope::BackwardNodeScope() : prev(t_in_node) { t_in_node = true; }
BackwardNodeScope::~BackwardNodeScope() { t_in_node = prev; }

void report_forward_event(const char* op, const Tensor& out, int num_inputs, const std::vector<Tensor>* inputs) {
  if (t_live == 0 || t_in_node || t_in_notify) return;
  timing_sync();
  double end = now_seconds();
  double seconds = end - t_mark;
  if (t_own.empty()) {
    ++t_unscoped;
  } else {
    seconds += t_own.back();
    t_own.back() = 0;
  }
  OpEvent ev{op, current_module_path(), false, &out, -1, seconds};
  ev.num_inputs = num_inputs;
  ev.inputs = inputs;
  if (out.defined() && out.impl()->grad_fn) ev.node_id = out.impl()->grad_fn->sequence;
  notify(ev);
  // Time the observers took (an anomaly scan, a profiler's bookkeeping) is charged to nobody.
  t_mark = now_seconds();
}

void report_backward(const Node& node, const std::vector<Tensor>& grads, double seconds) {
  if (t_live == 0 || t_in_notify) return;
  std::string path = node.module_path ? *node.module_path : std::string();
  OpEvent ev{node.name.c_str(), path, true, nullptr, -1, seconds};
  ev.num_inputs = int(node.next.size());
  ev.node_id = node.sequence;
  ev.next = &node.next;
  if (grads.empty()) {
    Tensor none;
    ev.output = &none;
    notify(ev);
    return;
  }
  for (size_t i = 0; i < grads.size(); ++i) {
    ev.output = &grads[i];
    ev.input_index = int(i);
    ev.seconds = i == 0 ? seconds : 0.0;
    notify(ev);
  }
}

void report_grad_sum(const Node& receiver, const Tensor& sum, double seconds) {
  if (t_live == 0 || t_in_notify) return;
  std::string path = receiver.module_path ? *receiver.module_path : std::string();
  OpEvent ev{"grad_sum", path, true, &sum, -1, seconds};
  ev.num_inputs = 2;
  ev.node_id = receiver.sequence;
  notify(ev);
}

}  // namespace detail

ModuleScope::ModuleScope(const std::string& name) {
  if (name.empty()) return;
  prev_ = t_path;
  const std::string& parent = prev_ ? *prev_ : std::string();
  t_path = std::make_shared<const std::string>(parent.empty() ? name : parent + "." + name);
  pushed_ = true;
}

ModuleScope::ModuleScope(Absolute a) {
  prev_ = t_path;
  t_path = std::make_shared<const std::string>(std::move(a.path));
  pushed_ = true;
}

ModuleScope::~ModuleScope() {
  if (pushed_) t_path = std::move(prev_);
}

std::string current_module_path() { return t_path ? *t_path : std::string(); }

std::shared_ptr<const std::string> current_module_path_ref() { return t_path ? t_path : root_path(); }

OpObserverGuard::OpObserverGuard(OpObserver fn) : index_(t_observers.size()) {
  t_observers.push_back(std::move(fn));
  ++t_live;
  t_mark = detail::now_seconds();
}

OpObserverGuard::~OpObserverGuard() {
  t_observers[index_] = nullptr;
  --t_live;
  while (!t_observers.empty() && !t_observers.back()) t_observers.pop_back();
}

bool observing() { return t_live != 0; }

void OpScope::enter() {
  detail::timing_sync();
  const double now = detail::now_seconds();
  if (!t_own.empty()) t_own.back() += now - t_mark;
  t_own.push_back(0);
  t_mark = now;
}

void OpScope::leave() {
  if (t_own.empty()) return;  // an observer was installed inside this scope
  const double now = detail::now_seconds();
  const double rest = t_own.back() + (now - t_mark);
  t_own.pop_back();
  if (!t_own.empty()) t_own.back() += rest;
  t_mark = now;
}

OpSyncGuard::OpSyncGuard(std::function<void()> sync) : prev_(std::move(t_sync)) { t_sync = std::move(sync); }
OpSyncGuard::~OpSyncGuard() { t_sync = std::move(prev_); }

size_t detail::unscoped_reports() { return t_unscoped; }

void report_forward(const char* op, const Tensor& out, int num_inputs) {
  detail::report_forward_event(op, out, num_inputs);
}

}  // namespace mg
