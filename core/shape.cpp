#include "core/shape.h"

#include "core/device.h"
#include "core/error.h"

namespace mg {

int64_t checked_mul(int64_t a, int64_t b, const Shape& s, const char* what) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r))
    throw Error(detail::concat(what, " of shape ", shape_str(s), " overflows int64 (", a, " * ", b, ")"));
  return r;
}

int64_t checked_numel(const Shape& s, const char* what) {
  int64_t n = 1;
  for (int64_t d : s) n = checked_mul(n, d, s, what);
  return n;
}

int64_t numel(const Shape& s) { return checked_numel(s, "element count"); }

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (int i = int(s.size()) - 1; i >= 0; --i) {
    st[i] = acc;
    // Checked even when a zero-size dim leaves numel small: a shape whose strides cannot be
    // represented is refused whatever its element count.
    if (i > 0) acc = checked_mul(acc, s[i] == 0 ? 1 : s[i], s, "strides");
  }
  return st;
}

size_t shape_nbytes(const Shape& s, size_t element_size) {
  const int64_t n = numel(s);
  MG_CHECK(n >= 0, "byte size of shape ", shape_str(s), ": negative element count");
  size_t r;
  if (__builtin_mul_overflow(size_t(n), element_size, &r))
    throw Error(detail::concat("byte size of shape ", shape_str(s), " overflows (", numel(s), " elements of ",
                               element_size, " bytes)"));
  return r;
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
