#include "ops/rope.h"

#include "ops/common.h"

namespace mg {
using namespace detail;

namespace {

Tensor rope_raw(const Tensor& x, double theta, int64_t pos_offset, bool inverse) {
  OpScope op_scope;
  Tensor xc = contiguous_raw(x);
  Tensor out = empty_as(x.shape(), x);
  if (out.numel()) be(x).rope(xc, theta, pos_offset, inverse, out);
  return out;
}

}  // namespace

Tensor rope(const Tensor& x, double theta, int64_t pos_offset) {
  OpScope op_scope;
  // Any floating dtype as it is: under autocast a bf16 q or k stays bf16 (rotated in f32 inside).
  check_floating("rope", x);
  MG_CHECK(x.dim() >= 2, "rope: expected [B, H, T, Dh], got ", x.desc());
  MG_CHECK(x.size(-1) % 2 == 0, "rope: head dim (last) must be even, got ", x.desc());
  MG_CHECK(theta > 0, "rope: theta must be positive, got ", theta);
  MG_CHECK(pos_offset >= 0, "rope: pos_offset must be >= 0, got ", pos_offset);
  Tensor out = rope_raw(x, theta, pos_offset, false);
  // A rotation's Jacobian is orthogonal: the gradient turns back by the same angles.
  return record("rope", out, {x}, [theta, pos_offset](const Tensor& g) -> std::vector<Tensor> {
    return {rope_raw(g, theta, pos_offset, true)};
  });
}

}  // namespace mg
