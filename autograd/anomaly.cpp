#include "autograd/anomaly.h"

#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/shape.h"

namespace mg {

namespace {

template <class T>
int64_t scan(const std::vector<T>& v, bool* is_nan) {
  for (size_t i = 0; i < v.size(); ++i) {
    const double x = double(static_cast<float>(v[i]));
    if (!std::isfinite(x)) {
      *is_nan = std::isnan(x);
      return int64_t(i);
    }
  }
  return -1;
}

template <>
int64_t scan(const std::vector<double>& v, bool* is_nan) {
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i])) {
      *is_nan = std::isnan(v[i]);
      return int64_t(i);
    }
  return -1;
}

std::string multi_index(int64_t flat, const Shape& s) {
  std::vector<int64_t> idx(s.size());
  for (size_t d = s.size(); d-- > 0;) {
    idx[d] = s[d] ? flat % s[d] : 0;
    flat = s[d] ? flat / s[d] : 0;
  }
  std::string out = "[";
  for (size_t d = 0; d < idx.size(); ++d) out += (d ? ", " : "") + std::to_string(idx[d]);
  return out + "]";
}

}  // namespace

int64_t first_nonfinite(const Tensor& t, bool* is_nan) {
  if (!t.defined() || t.numel() == 0) return -1;
  switch (t.dtype()) {
    case DType::f32: return scan(t.to_vector<float>(), is_nan);
    case DType::f64: return scan(t.to_vector<double>(), is_nan);
    case DType::bf16: return scan(t.to_vector<bf16>(), is_nan);
    case DType::i32: return -1;
  }
  return -1;
}

AnomalyModeGuard::AnomalyModeGuard()
    : context_(std::make_shared<std::string>()),
      guard_([ctx = context_](const OpEvent& ev) {
        if (!ev.output || !ev.output->defined()) return;
        bool nan = false;
        const int64_t at = first_nonfinite(*ev.output, &nan);
        if (at < 0) return;
        std::string where = ev.backward ? "backward of op '" + std::string(ev.op) + "'" +
                                              (ev.input_index >= 0 ? ", gradient for input " + std::to_string(ev.input_index)
                                                                   : std::string(", gradient"))
                                        : "forward output of op '" + std::string(ev.op) + "'";
        throw Error(detail::concat("anomaly: ", where, " in module '",
                                   ev.module_path.empty() ? "(top level)" : ev.module_path, "' holds ",
                                   nan ? "NaN" : "Inf", " at ", multi_index(at, ev.output->shape()), " (",
                                   ev.output->desc(), ")", ctx->empty() ? "" : ", ", *ctx));
      }) {}

}  // namespace mg
