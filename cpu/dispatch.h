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

// f32, f64 or bf16 (kernels that compute bf16 in f32: cpu/bf16_math.h).
template <class F>
inline void dispatch_float_bf16(DType dt, const char* op, F&& f) {
  if (dt == DType::bf16) return f(bf16{});
  dispatch_float(dt, op, static_cast<F&&>(f));
}

template <class T>
inline T* ptr(const Tensor& t) {
  return static_cast<T*>(t.raw_data());
}

}  // namespace mg::cpu
