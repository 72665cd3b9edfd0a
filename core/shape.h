#pragma once
// Shapes and strides are plain vectors of int64 (at most kMaxDims entries). Strides are in
// elements, not bytes.
#include <cstdint>
#include <string>
#include <vector>

namespace mg {

using Shape = std::vector<int64_t>;
constexpr int kMaxDims = 8;

int64_t numel(const Shape& s);
Shape contiguous_strides(const Shape& s);
std::string shape_str(const Shape& s);
// Wraps a possibly negative dim into [0, ndim); `op` names the caller in the error.
int normalize_dim(int64_t dim, int64_t ndim, const char* op);
// NumPy broadcasting of two shapes; throws naming `op` and both shapes when incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace mg
