#include "experiments/audit_instrument.h"

#include <optional>
#include <set>

#include "autograd/anomaly.h"
#include "autograd/instrument.h"
#include "core/error.h"

namespace mg {

struct ActivationRecorder::State {
  std::map<std::string, Tensor> last;  // module path -> its latest op output
  std::vector<std::string> order;      // paths in the order first seen
  std::set<std::string> ran;           // paths that ran an op themselves (modules, not ModuleLists)
  std::optional<OpObserverGuard> guard;
};

ActivationRecorder::ActivationRecorder(bool enabled) {
  if (!enabled) return;
  state_ = std::make_unique<State>();
  State* s = state_.get();
  s->guard.emplace([s](const OpEvent& e) {
    if (e.backward || !e.output || !e.output->defined() || e.module_path.empty()) return;
    const DType dt = e.output->dtype();
    if (dt != DType::f32 && dt != DType::f64 && dt != DType::bf16) return;
    // The event belongs to its module and to every module around it.
    s->ran.insert(e.module_path);
    std::string path = e.module_path;
    while (true) {
      auto [it, fresh] = s->last.insert_or_assign(path, *e.output);
      if (fresh) s->order.push_back(path);
      const size_t dot = path.rfind('.');
      if (dot == std::string::npos) break;
      path.resize(dot);
    }
  });
}

ActivationRecorder::~ActivationRecorder() = default;

void ActivationRecorder::finish_forward() {
  if (!state_) return;
  state_->guard.reset();
  for (auto& [path, t] : state_->last)
    if (t.requires_grad() && !t.is_leaf()) t.retain_grad();
}

int64_t ActivationRecorder::append(std::vector<std::pair<std::string, Tensor>>& out) const {
  if (!state_) return 0;
  int64_t n = 0;
  for (const std::string& path : state_->order) {
    // A path no op ran under directly is a container (ModuleList "mixerblocks"), not a module
    // with a forward of its own.
    if (!state_->ran.count(path)) continue;
    ++n;
    const Tensor& t = state_->last.at(path);
    out.emplace_back("act." + path, t.detach());
    if (t.requires_grad()) {
      Tensor g = t.grad();
      if (g.defined()) out.emplace_back("act_grad." + path, g.detach());
    }
  }
  return n;
}

struct AnomalyScope::State {
  AnomalyModeGuard guard;
};

AnomalyScope::AnomalyScope(bool enabled, const std::string& context) {
  if (!enabled) return;
  state_ = std::make_unique<State>();
  state_->guard.set_context(context);
}

AnomalyScope::~AnomalyScope() = default;

}  // namespace mg
