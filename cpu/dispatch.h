#pragma once
// dtype dispatch and pointer helpers shared by the CPU kernel files.
#include <string>
#include <type_traits>

#include "core/dtype_dispatch.h"
#include "core/error.h"
#include "core/tensor.h"

namespace mg::cpu {

template <class To, class From>
inline To cast_value(From v) {
  if constexpr (std::is_same_v<To, bf16>) return bf16(float(v));
  else if constexpr (std::is_same_v<From, bf16>) return To(float(v));
  else return To(v);
}

// dispatch_dtype(dt, op, f): f(T{}) with T the type that stores dt; dispatch_float: f32 or f64
// only (core/dtype_dispatch.h).
inline constexpr StoredTypeDispatch<bf16> dispatch_dtype{"cpu"};
inline constexpr FloatDispatch dispatch_float{"cpu"};

template <class T>
inline T* ptr(const Tensor& t) {
  return static_cast<T*>(t.raw_data());
}

}  // namespace mg::cpu
