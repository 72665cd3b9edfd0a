#include "ops/embedding.h"

#include <string>

#include "ops/common.h"

namespace mg {
using namespace detail;

Tensor embedding(const Tensor& weight, const Tensor& ids) {
  OpScope op_scope;
  check_floating("embedding", weight);
  MG_CHECK(weight.dim() == 2, "embedding: weight must be [V, D], got ", weight.desc());
  MG_CHECK(ids.defined() && ids.dtype() == DType::i32, "embedding: ids must be an i32 tensor, got ",
           ids.defined() ? ids.desc() : std::string("an undefined tensor"));
  MG_CHECK(ids.device() == weight.device(), "embedding: ids ", ids.desc(), " and weight ", weight.desc(),
           " are on different devices");
  const int64_t V = weight.size(0), D = weight.size(1), N = ids.numel();
  Tensor ic = contiguous_raw(ids);
  Tensor flat = make_view(ic, {N}, {1}, ic.offset());
  if (ids.device().is_cpu()) {  // elsewhere the backend's index_select checks the range
    const int32_t* p = ic.data_ptr<int32_t>();
    for (int64_t i = 0; i < N; ++i)
      MG_CHECK(p[i] >= 0 && p[i] < V, "embedding: id ", p[i], " at position ", index_str(i, ids.shape()),
               " is out of range [0, ", V, ") for weight ", weight.desc());
  }

  Shape os = ids.shape();
  os.push_back(D);
  Tensor out = empty_as(os, weight);
  if (out.numel()) be(weight).index_select(contiguous_raw(weight), 0, flat, make_view(out, {N, D}, {D, 1}, 0));
  return record("embedding", out, {weight}, [flat, V, D, N](const Tensor& g) -> std::vector<Tensor> {
    Tensor gw = zeros({V, D}, opts_of(g));
    if (N && D) {
      Tensor gc = contiguous_raw(g);
      be(gw).index_add(gw, 0, flat, make_view(gc, {N, D}, {D, 1}, gc.offset()));
    }
    return {gw};
  });
}

}  // namespace mg
