#include "ops/dropout.h"

#include "ops/autocast_policy.h"
#include "ops/common.h"

namespace mg {
using namespace detail;

namespace {

// x masked and scaled by the kernel, recorded so that the gradient is the same masking of the
// upstream gradient. The backward regenerates the mask from (seed, offset) instead of saving it:
// element i's keep decision is a pure function of (seed, offset, i), so the recomputation is
// exactly the forward's mask, costs one Philox evaluation per element (cheap next to the memory
// traffic of the pass itself), and keeps no [n]-sized mask alive between forward and backward.
// The backward is itself this op, so higher derivatives follow (dropout is linear in x).
Tensor masked(const Tensor& x, double p, uint64_t seed, uint64_t offset) {
  OpScope op_scope;
  Tensor xc = contiguous_raw(x);
  Tensor out = empty_as(x.shape(), x);
  if (out.numel()) be(x).dropout(xc, p, seed, offset, out);
  return record("dropout", out, {x}, [p, seed, offset](const Tensor& g) -> std::vector<Tensor> {
    return {masked(g, p, seed, offset)};
  });
}

}  // namespace

Tensor dropout(const Tensor& x, double p, bool training, uint64_t seed, uint64_t offset) {
  OpScope op_scope;
  if (autocast_widens(x)) return dropout(autocast_widen(x), p, training, seed, offset);
  check_floating("dropout", x);
  MG_CHECK(x.dtype() != DType::bf16, "dropout: f32 or f64 expected, got ", x.desc());
  MG_CHECK(p >= 0 && p <= 1, "dropout: p must be in [0, 1], got ", p);
  if (!training || p == 0) return x;
  return masked(x, p, seed, offset);
}

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  OpScope op_scope;
  // Only a call that masks takes an offset (torch's eval dropout draws nothing either), so
  // turning dropout off leaves every later draw of the generator unchanged.
  if (!training || p == 0) return dropout(x, p, training, gen.seed(), 0);
  return dropout(x, p, training, gen.seed(), gen.next_offset());
}

}  // namespace mg
