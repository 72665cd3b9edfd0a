// Rotary position embedding (Llama's rotate-half form). The cos/sin table is computed in f64
// (angles at large positions lose digits in f32) and kept per (theta, head dim, compute type),
// grown to the positions asked for, so a training step's calls share one table (building it took
// about as long as the rotation itself: T * Dh / 2 cos and sin each); then every row is one fused
// pass. bf16 is read and written as it is (the q and k of a bf16 projection under autocast),
// rotated in f32 and rounded once.
#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>
#include <vector>

#include "cpu/bf16_math.h"
#include "cpu/cpu_backend.h"
#include "cpu/dispatch.h"
#include "cpu/parallel.h"

namespace mg::cpu {

namespace {

// cos[p * half + i], sin[p * half + i]: the angle of pair i at position first + p, p < positions.
template <class V>
struct RopeTable {
  double theta = 0;
  int64_t Dh = 0, first = 0, positions = 0;
  std::vector<V> cos, sin;
};

// Tables are cached up to this many positions (8 MiB of f64 at Dh = 128); a call beyond it builds
// its own rows, as every call used to.
constexpr int64_t kMaxCachedPositions = int64_t(1) << 16;

template <class V>
std::shared_ptr<RopeTable<V>> build_table(double theta, int64_t Dh, int64_t first, int64_t positions) {
  auto t = std::make_shared<RopeTable<V>>();
  t->theta = theta, t->Dh = Dh, t->first = first, t->positions = positions;
  const int64_t half = Dh / 2;
  t->cos.resize(size_t(positions * half));
  t->sin.resize(size_t(positions * half));
  for (int64_t i = 0; i < half; ++i) {
    const double inv_freq = std::pow(theta, -2.0 * double(i) / double(Dh));
    for (int64_t p = 0; p < positions; ++p) {
      const double a = double(first + p) * inv_freq;
      t->cos[size_t(p * half + i)] = V(std::cos(a));
      t->sin[size_t(p * half + i)] = V(std::sin(a));
    }
  }
  return t;
}

// A table for (theta, Dh) covering positions [first, first + count): the cached one (from
// position 0) when it fits under kMaxCachedPositions, else rows built for this call. Cached
// entries are immutable and shared: a caller keeps its table alive while a bigger one replaces it.
// Sizes grow by doubling, so generation (one position per call, increasing) rebuilds O(log T)
// times.
template <class V>
std::shared_ptr<const RopeTable<V>> rope_table(double theta, int64_t Dh, int64_t first, int64_t count) {
  if (first + count > kMaxCachedPositions) return build_table<V>(theta, Dh, first, count);
  static std::mutex mu;
  static std::vector<std::shared_ptr<const RopeTable<V>>> cache;  // a few (theta, Dh) pairs
  std::lock_guard<std::mutex> lock(mu);
  auto same = [&](const auto& e) { return e->theta == theta && e->Dh == Dh; };
  auto it = std::find_if(cache.begin(), cache.end(), same);
  if (it != cache.end() && (*it)->positions >= first + count) return *it;
  const int64_t grown = it != cache.end() ? 2 * (*it)->positions : 0;
  auto t = build_table<V>(theta, Dh, 0, std::min(kMaxCachedPositions, std::max(first + count, grown)));
  if (it != cache.end()) cache.erase(it);
  if (cache.size() >= 8) cache.erase(cache.begin());
  cache.push_back(t);
  return t;
}

}  // namespace

void CpuBackend::rope(const Tensor& x, double theta, int64_t pos_offset, bool inverse, const Tensor& out) {
  MG_CHECK(x.dim() >= 2, "cpu rope: expected [N, T, Dh], got ", x.desc());
  const int64_t T = x.size(-2), Dh = x.size(-1);
  MG_CHECK(Dh % 2 == 0, "cpu rope: head dim must be even, got ", x.desc());
  if (x.numel() == 0) return;
  const int64_t half = Dh / 2, rows = x.numel() / Dh;
  dispatch_float_bf16(x.dtype(), "rope", [&](auto tag) {
    using S = decltype(tag);  // storage
    using V = compute_t<S>;
    // Row t of x takes the table's position pos_offset + t; inverse negates sin (exactly).
    const std::shared_ptr<const RopeTable<V>> table = rope_table<V>(theta, Dh, pos_offset, T);
    const V* cos_t = table->cos.data() + (pos_offset - table->first) * half;
    const V* sin_t = table->sin.data() + (pos_offset - table->first) * half;
    const V sgn = inverse ? V(-1) : V(1);
    const S* xp = ptr<S>(x);
    S* op = ptr<S>(out);
    // Rows through parallel_rows: the body is compiled for the CPU's best ISA (an OpenMP loop in
    // this file would run the baseline ISA's 4-lane vectors).
    parallel_rows(rows, x.numel(), [&](int64_t r0, int64_t r1) __attribute__((always_inline)) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t t = r % T;
        const V* c = cos_t + t * half;
        const V* s = sin_t + t * half;
        const S* x1 = xp + r * Dh;
        const S* x2 = x1 + half;
        S* o1 = op + r * Dh;
        S* o2 = o1 + half;
#pragma omp simd
        for (int64_t i = 0; i < half; ++i) {
          const V a = widen(x1[i]), b = widen(x2[i]);
          const V si = sgn * s[i];
          o1[i] = narrow<S>(a * c[i] - b * si);
          o2[i] = narrow<S>(b * c[i] + a * si);
        }
      }
    });
  });
}

}  // namespace mg::cpu
