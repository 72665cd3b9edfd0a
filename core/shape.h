#pragma once
// Shapes and strides are plain vectors of int64 (at most kMaxDims entries). Strides are in
// elements, not bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mg {

using Shape = std::vector<int64_t>;
constexpr int kMaxDims = 8;

// Size products are checked: numel, contiguous_strides and shape_nbytes throw mg::Error naming
// the shape when a product overflows (int64 elements and strides, size_t bytes), so a corrupt
// or hostile shape (a checkpoint header, a reshape argument) never wraps into a small size.
int64_t numel(const Shape& s);
Shape contiguous_strides(const Shape& s);
size_t shape_nbytes(const Shape& s, size_t element_size);
// a * b, or mg::Error "<what> of shape <s> overflows int64" when it does not fit.
int64_t checked_mul(int64_t a, int64_t b, const Shape& s, const char* what);
// numel(s), with `what` (the caller's name) leading the overflow message.
int64_t checked_numel(const Shape& s, const char* what);
std::string shape_str(const Shape& s);
// Wraps a possibly negative dim into [0, ndim); `op` names the caller in the error.
int normalize_dim(int64_t dim, int64_t ndim, const char* op);
// NumPy broadcasting of two shapes; throws naming `op` and both shapes when incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace mg
