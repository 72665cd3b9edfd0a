#include "core/autocast.h"

#include "core/autocast_cache.h"
#include "core/error.h"

namespace mg {
namespace {
thread_local AutocastState t_state;
}  // namespace

AutocastState autocast_state() { return t_state; }

AutocastGuard::AutocastGuard(bool enabled, DType dtype) : prev_(t_state) {
  MG_CHECK(dtype == DType::bf16, "autocast: only bf16 is supported as the lower precision, got ", dtype_name(dtype));
  t_state = AutocastState{enabled, dtype};
}

AutocastGuard::~AutocastGuard() {
  // The weight cache lives as long as the outermost enabled scope (torch.autocast's rule).
  if (t_state.enabled && !prev_.enabled) autocast_clear_cache();
  t_state = prev_;
}

}  // namespace mg
