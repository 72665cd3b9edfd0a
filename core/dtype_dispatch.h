#pragma once
// Running a kernel body written once for several element types: a backend calls it with the C++
// type that stores a tensor's DType. Each backend makes its dispatchers once, naming itself (for
// errors) and its bf16 storage type (the CPU's mg::bf16, CUDA's __nv_bfloat16):
//   inline constexpr StoredTypeDispatch<bf16> dispatch_dtype{"cpu"};
//   dispatch_dtype(t.dtype(), "fill", [&](auto tag) { using T = decltype(tag); ... });
#include <cstdint>
#include <string>

#include "core/dtype.h"
#include "core/error.h"

namespace mg {

// dispatch(dt, op, f) calls f(T{}) with T the type that stores dt: float, double, int32_t or Bf16.
template <class Bf16>
struct StoredTypeDispatch {
  const char* backend;
  template <class F>
  void operator()(DType dt, const char* op, F&& f) const {
    switch (dt) {
      case DType::f32: f(float{}); return;
      case DType::f64: f(double{}); return;
      case DType::i32: f(int32_t{}); return;
      case DType::bf16: f(Bf16{}); return;
    }
    throw Error(std::string(backend) + " " + op + ": unknown dtype");
  }
};

// dispatch(dt, op, f) calls f(float{}) or f(double{}); any other dtype throws
// "<backend> <op>: dtype <name> not supported (f32 or f64 expected)".
struct FloatDispatch {
  const char* backend;
  template <class F>
  void operator()(DType dt, const char* op, F&& f) const {
    if (dt == DType::f32) return f(float{});
    if (dt == DType::f64) return f(double{});
    throw Error(std::string(backend) + " " + op + ": dtype " + dtype_name(dt) +
                " not supported (f32 or f64 expected)");
  }
};

}  // namespace mg
