#include "core/autocast.h"

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

AutocastGuard::~AutocastGuard() { t_state = prev_; }

}  // namespace mg
