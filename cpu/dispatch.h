#pragma once
// dtype dispatch and pointer helpers shared by the CPU kernel files.
#include <string>
#include <type_traits>

#include "core/error.h"
#include "core/tensor.h"

namespace mg::cpu {

template <class To, class From>
inline To cast_value(From v) {
  if constexpr (std::is_same_v<To, bf16>) return bf16(float(v));
  else if constexpr (std::is_same_v<From, bf16>) return To(float(v));
  else return To(v);
}

template <class F>
inline void dispatch_dtype(DType dt, const char* op, F&& f) {
  switch (dt) {
    case DType::f32: f(float{}); return;
    case DType::f64: f(double{}); return;
    case DType::i32: f(int32_t{}); return;
    case DType::bf16: f(bf16{}); return;
  }
  throw Error(std::string(op) + ": unknown dtype");
}

template <class F>
inline void dispatch_float(DType dt, const char* op, F&& f) {
  if (dt == DType::f32) return f(float{});
  if (dt == DType::f64) return f(double{});
  throw Error(std::string("cpu ") + op + ": dtype " + dtype_name(dt) + " not supported (f32 or f64 expected)");
}

template <class T>
inline T* ptr(const Tensor& t) {
  return static_cast<T*>(t.raw_data());
}

}  // namespace mg::cpu
