#include "ops/tril.h"

#include "ops/common.h"

namespace mg {
using namespace detail;

Tensor tril(const Tensor& x, int64_t diagonal) {
  OpScope op_scope;
  check_floating("tril", x);
  MG_CHECK(x.dim() >= 2, "tril: expected at least 2 dims, got ", x.desc());
  Tensor xc = contiguous_raw(x);
  Tensor out = empty_as(x.shape(), x);
  if (out.numel()) be(x).tril(xc, diagonal, out);
  return record("tril", out, {x}, [diagonal](const Tensor& g) -> std::vector<Tensor> { return {tril(g, diagonal)}; });
}

}  // namespace mg
