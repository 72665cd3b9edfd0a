#include "ops/peak.h"

#include <algorithm>
#include <chrono>

#include "autograd/grad_mode.h"
#include "core/backend.h"
#include "core/factories.h"
#include "ops/matmul.h"

namespace mg {

double gemm_peak_gflops(Device device, DType dtype) {
  NoGradGuard no_grad;
  const int64_t n = 2048;
  TensorOptions o{dtype, device, false};
  Tensor a = full({n, n}, 1.0, o), b = full({n, n}, 0.5, o);
  Backend& be = backend_for(device);
  auto call = [&] {
    Tensor c = matmul(a, b);
    be.synchronize();
  };
  call();  // packing buffers, page faults, kernel selection
  double best = 1e30;
  for (int r = 0; r < 7; ++r) {
    const auto s = std::chrono::steady_clock::now();
    call();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - s).count());
  }
  return 2.0 * double(n) * double(n) * double(n) / best / 1e9;
}

}  // namespace mg
