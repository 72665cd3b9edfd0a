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

// f(T{}) with T the type that stores dt (core/dtype_dispatch.h).
template <class F>
inline void dispatch_dtype(DType dt, const char* op, F&& f) {
  dispatch_stored_type<bf16>(dt, "cpu", op, static_cast<F&&>(f));
}

// f(float{}) or f(double{}); other dtypes throw naming the op.
template <class F>
inline void dispatch_float(DType dt, const char* op, F&& f) {
  dispatch_f32_f64(dt, "cpu", op, static_cast<F&&>(f));
}

template <class T>
inline T* ptr(const Tensor& t) {
  return static_cast<T*>(t.raw_data());
}

}  // namespace mg::cpu
