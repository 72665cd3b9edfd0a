#include "ops/inplace.h"

#include "core/autocast_cache.h"
#include "ops/common.h"

namespace mg {
using namespace detail;

namespace {
void check_writable(const char* op, const Tensor& dst) {
  MG_CHECK(dst.defined(), op, ": undefined destination");
  MG_CHECK(!needs_grad(dst), op, ": writing into ", dst.desc(),
           " which requires grad while grad mode is on; wrap the write in NoGradGuard");
  autocast_note_inplace_write();  // a bf16 copy of dst (or of a view of it) would be stale
}
}  // namespace

const Tensor& assign_(const Tensor& dst, const Tensor& src) {
  check_writable("assign_", dst);
  MG_CHECK(src.device() == dst.device(), "assign_: source ", src.desc(), " on another device than ", dst.desc());
  Shape b = broadcast_shapes(dst.shape(), src.shape(), "assign_");
  MG_CHECK(b == dst.shape(), "assign_: source ", src.desc(), " does not broadcast to destination ", dst.desc());
  if (dst.numel()) be(dst).copy(broadcast_to_raw(src, dst.shape()), dst);
  return dst;
}

const Tensor& fill_(const Tensor& dst, double value) {
  check_writable("fill_", dst);
  if (dst.numel()) be(dst).fill(dst, value);
  return dst;
}

}  // namespace mg
