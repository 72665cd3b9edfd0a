#pragma once
// Comparison of a result with a golden (PyTorch) reference, shared by the golden suites: one
// CHECK per tensor, and on failure a message naming the worst element and how far past the
// tolerance |got - want| <= atol + rtol |want| it is. MG_GOLDEN_VERBOSE=1 prints every comparison.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace mg::test {

struct Tol {
  double rtol, atol;
};
struct Tols {
  Tol f32, f64;
  Tol get(DType dt) const { return dt == DType::f32 ? f32 : f64; }
};

inline bool verbose() {
  static const bool v = std::getenv("MG_GOLDEN_VERBOSE") != nullptr;
  return v;
}

inline std::vector<double> as_f64(const Tensor& t) { return t.detach().to(DType::f64).contiguous().to_vector<double>(); }

// One CHECK per tensor; on failure the message names the worst element and how far past the
// tolerance it is (err / (atol + rtol |want|)).
inline void expect_close(const Tensor& got, const Tensor& want, Tol tol, const std::string& what) {
  INFO(what);
  if (!got.defined()) {
    FAIL_CHECK("result/gradient is undefined");
    return;
  }
  if (got.shape() != want.shape()) {
    FAIL_CHECK("shape " << shape_str(got.shape()) << ", want " << shape_str(want.shape()));
    return;
  }
  const std::vector<double> g = as_f64(got), w = as_f64(want);
  double worst_ratio = 0, worst_abs = 0, worst_rel = 0;
  size_t worst = 0;
  bool finite = true;
  for (size_t i = 0; i < g.size(); ++i) {
    if (!std::isfinite(g[i])) finite = false;
    const double err = std::abs(g[i] - w[i]);
    const double ratio = err / (tol.atol + tol.rtol * std::abs(w[i]));
    worst_abs = std::max(worst_abs, err);
    if (w[i] != 0) worst_rel = std::max(worst_rel, err / std::abs(w[i]));
    if (!(ratio <= worst_ratio)) worst_ratio = ratio, worst = i;
  }
  if (verbose())
    std::printf("  %-64s max abs %.2e  max rel %.2e  err/tol %.3f\n", what.c_str(), worst_abs, worst_rel, worst_ratio);
  INFO("worst element " << worst << ": got " << (g.empty() ? 0 : g[worst]) << ", want " << (w.empty() ? 0 : w[worst])
                        << "; max abs err " << worst_abs << ", max rel err " << worst_rel << ", err/tol "
                        << worst_ratio << " (rtol " << tol.rtol << ", atol " << tol.atol << ")");
  CHECK(finite);
  CHECK(worst_ratio <= 1.0);
}

}  // namespace mg::test
