#pragma once
// Shared helpers for the test suites.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "ops/ops.h"

namespace mg::test {

// The message of the exception of type E that f() throws; fails the test when it throws none.
template <class E = Error, class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  FAIL("expected an exception");
  return {};
}

// The values of a tensor of any dtype and layout, as doubles, in row-major order.
inline std::vector<double> vals(const Tensor& t) {
  const Tensor c = t.contiguous();
  std::vector<double> r;
  switch (c.dtype()) {
    case DType::f32: for (float v : c.to_vector<float>()) r.push_back(v); break;
    case DType::f64: r = c.to_vector<double>(); break;
    case DType::bf16: for (bf16 v : c.to_vector<bf16>()) r.push_back(float(v)); break;
    case DType::i32: for (int32_t v : c.to_vector<int32_t>()) r.push_back(v); break;
  }
  return r;
}

// Values against reference values: |got - ref| <= tol * (1 + |ref|) everywhere. One assertion
// per call; the first few offending elements are reported.
inline void check_vals(const std::vector<double>& got, const std::vector<double>& ref, double tol) {
  REQUIRE(got.size() == ref.size());
  size_t bad = 0;
  for (size_t i = 0; i < got.size() && bad < 5; ++i) {
    if (std::abs(got[i] - ref[i]) <= tol * (1 + std::abs(ref[i]))) continue;
    ++bad;
    FAIL_CHECK("element " << i << ": " << got[i] << " vs reference " << ref[i]);
  }
  CHECK(bad == 0);
}

// max |a - b| over two tensors of the same number of elements.
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> av = vals(a), bv = vals(b);
  REQUIRE(av.size() == bv.size());
  double m = 0;
  for (size_t i = 0; i < av.size(); ++i) m = std::max(m, std::abs(av[i] - bv[i]));
  return m;
}

// An f64 leaf with requires_grad: random normal values of the given shape.
inline Tensor leaf64(const Shape& shape, uint64_t seed) {
  Tensor t = randn(shape, seed, TensorOptions{DType::f64});
  t.set_requires_grad(true);
  return t;
}

// A non-contiguous f64 leaf of the given shape: the transpose of a [.., b, a] tensor's last two dims.
inline Tensor leaf64_transposed(const Shape& shape, uint64_t seed) {
  Shape s = shape;
  std::swap(s[s.size() - 1], s[s.size() - 2]);
  Tensor t = randn(s, seed, TensorOptions{DType::f64}).transpose(-1, -2).detach();
  t.set_requires_grad(true);
  return t;
}

// A non-contiguous f64 leaf: every other column of a wider tensor.
inline Tensor leaf64_strided(const Shape& shape, uint64_t seed) {
  Shape s = shape;
  s.back() *= 2;
  Tensor t = randn(s, seed, TensorOptions{DType::f64}).slice(-1, 0, s.back(), 2).detach();
  t.set_requires_grad(true);
  return t;
}

inline void check_grad(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& in) {
  GradcheckResult r = gradcheck(f, in);
  INFO(r.message);
  CHECK(r.ok);
}

// Gradchecks the one-input f on two non-contiguous f64 leaves: leaf64_transposed(transposed)
// and leaf64_strided(strided), seeds `seed` and seed + 1.
inline void check_grad_non_contiguous(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                      const Shape& transposed, const Shape& strided, uint64_t seed) {
  const Tensor t = leaf64_transposed(transposed, seed), s = leaf64_strided(strided, seed + 1);
  REQUIRE_FALSE(t.is_contiguous());
  REQUIRE_FALSE(s.is_contiguous());
  check_grad(f, {t});
  check_grad(f, {s});
}

// A gradcheck of loss() w.r.t. each named parameter in turn, so a failure names the parameter.
inline void check_grad_each(const std::function<Tensor()>& loss,
                            const std::vector<std::pair<std::string, Tensor>>& params) {
  for (const auto& entry : params) {  // not a structured binding: clang 14 cannot capture one (INFO)
    const std::string& name = entry.first;
    const Tensor& p = entry.second;
    INFO("parameter " << name << " " << p.desc());
    check_grad([&](const std::vector<Tensor>&) { return loss(); }, {p});
  }
}

inline void check_close(const Tensor& a, const std::vector<double>& expected, double tol = 1e-6) {
  REQUIRE(a.numel() == int64_t(expected.size()));
  std::vector<double> v = a.dtype() == DType::f64 ? a.to_vector<double>() : std::vector<double>();
  if (a.dtype() == DType::f32)
    for (float x : a.to_vector<float>()) v.push_back(x);
  for (size_t i = 0; i < v.size(); ++i) {
    INFO("element " << i << ": " << v[i] << " vs expected " << expected[i]);
    CHECK(std::abs(v[i] - expected[i]) <= tol * (1 + std::abs(expected[i])));
  }
}

}  // namespace mg::test
