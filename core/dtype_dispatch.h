#pragma once
// Running a kernel body written once for several element types: the backends call it with the
// C++ type that stores a tensor's DType. Each backend names its own bf16 storage type (the CPU's
// mg::bf16, CUDA's __nv_bfloat16) and itself, for the errors.
#include <cstdint>
#include <string>

#include "core/dtype.h"
#include "core/error.h"

namespace mg {

// Calls f(T{}) with T the type that stores dt: float, double, int32_t or Bf16.
template <class Bf16, class F>
inline void dispatch_stored_type(DType dt, const char* backend, const char* op, F&& f) {
  switch (dt) {
    case DType::f32: f(float{}); return;
    case DType::f64: f(double{}); return;
    case DType::i32: f(int32_t{}); return;
    case DType::bf16: f(Bf16{}); return;
  }
  throw Error(std::string(backend) + " " + op + ": unknown dtype");
}

// Calls f(float{}) or f(double{}); any other dtype throws
// "<backend> <op>: dtype <name> not supported (f32 or f64 expected)".
template <class F>
inline void dispatch_f32_f64(DType dt, const char* backend, const char* op, F&& f) {
  if (dt == DType::f32) return f(float{});
  if (dt == DType::f64) return f(double{});
  throw Error(std::string(backend) + " " + op + ": dtype " + dtype_name(dt) + " not supported (f32 or f64 expected)");
}

}  // namespace mg
