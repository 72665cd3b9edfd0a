#include "core/shape.h"

#include "core/device.h"
#include "core/error.h"

namespace mg {

int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (int i = int(s.size()) - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= s[i] == 0 ? 1 : s[i];
  }
  return st;
}

std::string shape_str(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

int normalize_dim(int64_t dim, int64_t ndim, const char* op) {
  int64_t lo = ndim == 0 ? -1 : -ndim, hi = ndim == 0 ? 0 : ndim - 1;
  MG_CHECK(dim >= lo && dim <= hi, op, ": dim ", dim, " out of range for a tensor with ", ndim,
           " dims (expected ", lo, "..", hi, ")");
  return int(dim < 0 ? dim + (ndim == 0 ? 1 : ndim) : dim);
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    MG_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", shape_str(a), " and ", shape_str(b),
             " cannot be broadcast together (dim ", i, ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Device parse_device(const std::string& s) {
  if (s == "cpu") return kCPU;
  if (s == "cuda") return kCUDA;
  if (s.rfind("cuda:", 0) == 0) {
    try {
      return Device{DeviceType::CUDA, std::stoi(s.substr(5))};
    } catch (...) {
    }
  }
  throw Error("unknown device '" + s + "' (expected cpu, cuda or cuda:N)");
}

}  // namespace mg
