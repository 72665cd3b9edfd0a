// GEMM driver: GotoBLAS/BLIS-style blocking and packing around the register micro-kernels of
// cpu/gemm_kernel_*.cpp, threaded with OpenMP.
//
// For a band of rows of C (the whole of C unless packed op(A) would exceed kMaxPackedABytes):
//   phase 1  op(A) band is packed once into MR-row panels, k-block-major (for each K block of
//            depth KC, the panels MR x kc one after another); shared by all threads, who claim
//            packing units from an atomic counter.
//   phase 2  C is cut into tasks (row block x column block of whole MR x NR tiles), claimed from
//            an atomic counter. A task runs
//              for pc in K step KC            beta applied on the first K block only
//                pack op(B)[pc.., cols] into NR-column panels (private, kc x nc <= L2)
//                wait until op(A)'s K block pc is fully packed (spin, then futex sleep)
//                for ir in rows step MR       A micro-panel (MR x kc) stays in L1
//                  for jr in cols step NR     B micro-panels stream from L2
//                    micro-kernel: MR x NR tile of C in registers
// There is no barrier: a slow or descheduled thread only delays others by the packing unit it
// holds, and the fast thread drains the task queue (machines shared with other jobs).
// Partial tiles (M or N not a multiple of MR/NR) run the same kernel on zero-padded panels into a
// small stack tile, then are merged into C with alpha/beta.
#include "cpu/gemm.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include "cpu/gemm_kernels.h"

namespace mg::cpu {
namespace {

using detail::GemmKernel;

constexpr int64_t kMaxTile = 16 * 32;  // largest MR*NR of any kernel

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Per-thread, grow-only, 64-byte aligned scratch buffers (packed op(A) owned by the calling thread,
// packed op(B) by each worker). Kept for the thread's lifetime so repeated calls do not allocate.
struct Scratch {
  void* p = nullptr;
  size_t bytes = 0;
  ~Scratch() { std::free(p); }
  void* get(size_t n) {
    n = round_up(static_cast<int64_t>(n), 4096);
    if (n > bytes) {
      std::free(p);
      p = std::aligned_alloc(64, n);
      if (p == nullptr) throw std::bad_alloc();
      bytes = n;
    }
    return p;
  }
};
thread_local Scratch tl_scratch_a;
thread_local Scratch tl_scratch_b;
thread_local Scratch tl_scratch_bshared;

// dst[k*MR + i] = op(A)[r0 + i, p0 + k] for i < mr (zero for mr <= i < MR), k < kc.
template <class T, int MR>
void pack_a_panel(const T* A, int64_t lda, bool ta, int64_t r0, int64_t mr, int64_t p0, int64_t kc, T* dst) {
  if (!ta) {
    if (mr == MR) {
      const T* src[MR];
      for (int i = 0; i < MR; ++i) src[i] = A + (r0 + i) * lda + p0;
      for (int64_t k = 0; k < kc; ++k) {
        for (int i = 0; i < MR; ++i) dst[k * MR + i] = src[i][k];
      }
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        for (int64_t i = 0; i < mr; ++i) dst[k * MR + i] = A[(r0 + i) * lda + p0 + k];
        for (int64_t i = mr; i < MR; ++i) dst[k * MR + i] = T(0);
      }
    }
  } else {
    for (int64_t k = 0; k < kc; ++k) {
      const T* src = A + (p0 + k) * lda + r0;
      if (mr == MR) {
        for (int i = 0; i < MR; ++i) dst[k * MR + i] = src[i];
      } else {
        for (int64_t i = 0; i < mr; ++i) dst[k * MR + i] = src[i];
        for (int64_t i = mr; i < MR; ++i) dst[k * MR + i] = T(0);
      }
    }
  }
}

// dst[k*NR + j] = op(B)[p0 + k, c0 + j] for j < nr (zero for nr <= j < NR), k < kc.
template <class T, int NR>
void pack_b_panel(const T* B, int64_t ldb, bool tb, int64_t p0, int64_t kc, int64_t c0, int64_t nr, T* dst) {
  if (!tb) {
    for (int64_t k = 0; k < kc; ++k) {
      const T* src = B + (p0 + k) * ldb + c0;
      if (nr == NR) {
        for (int j = 0; j < NR; ++j) dst[k * NR + j] = src[j];
      } else {
        for (int64_t j = 0; j < nr; ++j) dst[k * NR + j] = src[j];
        for (int64_t j = nr; j < NR; ++j) dst[k * NR + j] = T(0);
      }
    }
  } else {
    if (nr == NR) {
      const T* src[NR];
      for (int j = 0; j < NR; ++j) src[j] = B + (c0 + j) * ldb + p0;
      for (int64_t k = 0; k < kc; ++k) {
        for (int j = 0; j < NR; ++j) dst[k * NR + j] = src[j][k];
      }
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        for (int64_t j = 0; j < nr; ++j) dst[k * NR + j] = B[(c0 + j) * ldb + p0 + k];
        for (int64_t j = nr; j < NR; ++j) dst[k * NR + j] = T(0);
      }
    }
  }
}

template <class T>
using pack_a_fn = void (*)(const T*, int64_t, bool, int64_t, int64_t, int64_t, int64_t, T*);
template <class T>
using pack_b_fn = void (*)(const T*, int64_t, bool, int64_t, int64_t, int64_t, int64_t, T*);

template <class T>
pack_a_fn<T> pick_pack_a(int mr) {
  switch (mr) {
    case 4: return &pack_a_panel<T, 4>;
    case 6: return &pack_a_panel<T, 6>;
    case 8: return &pack_a_panel<T, 8>;
    case 12: return &pack_a_panel<T, 12>;
    case 14: return &pack_a_panel<T, 14>;
    case 16: return &pack_a_panel<T, 16>;
    default: return nullptr;
  }
}
template <class T>
pack_b_fn<T> pick_pack_b(int nr) {
  switch (nr) {
    case 4: return &pack_b_panel<T, 4>;
    case 8: return &pack_b_panel<T, 8>;
    case 16: return &pack_b_panel<T, 16>;
    case 24: return &pack_b_panel<T, 24>;
    case 32: return &pack_b_panel<T, 32>;
    default: return nullptr;
  }
}

template <class T>
const GemmKernel<T>& active_kernel();
template <>
const GemmKernel<float>& active_kernel<float>() {
  return detail::gemm_active_kernels().f32;
}
template <>
const GemmKernel<double>& active_kernel<double>() {
  return detail::gemm_active_kernels().f64;
}

// C = beta * C on the M x N window (beta == 0 writes zeros).
template <class T>
void scale_c(int64_t M, int64_t N, T beta, T* C, int64_t ldc) {
  if (beta == T(1)) return;
  for (int64_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    if (beta == T(0)) {
      std::fill(c, c + N, T(0));
    } else {
      for (int64_t j = 0; j < N; ++j) c[j] *= beta;
    }
  }
}

std::atomic<int> g_force_kc{0}, g_force_mc{0}, g_force_nc{0};
std::atomic<bool> g_force_private_b{false};

#ifndef MG_TASKS_PER_THREAD
#define MG_TASKS_PER_THREAD 4
#endif
#ifndef MG_MIN_TASK_PANELS
#define MG_MIN_TASK_PANELS 4
#endif
// Minimum flops per thread before another thread is worth its fork/join and packing overhead.
constexpr double kMinFlopsPerThread = 4.0e6;
// Largest packed copy of A (elements * sizeof) held at once; taller A is processed in row bands.
constexpr int64_t kMaxPackedABytes = int64_t(16) << 20;
// Largest packed op(B) shared by all tasks; wider/deeper B is packed per task instead.
constexpr int64_t kMaxPackedBBytes = int64_t(16) << 20;

// Contention guard. libgomp's default wait policy keeps idle workers spinning; on a machine
// oversubscribed by other processes the scheduler then deprioritises them, and the implicit join
// at the end of a parallel region can wait a whole scheduling period (measured: ~20 ms for 1 ms
// of work) for a worker that has nothing left to do. When a join took longer than the master's
// own work (and over 1 ms), small GEMMs run on the calling thread alone for the next 200 ms;
// then threads are tried again. Large GEMMs are always threaded. On an idle machine joins take
// microseconds and this never triggers. Results do not depend on the thread count (see tests).
constexpr double kSmallGemmFlops = 5.0e8;  // ~5 ms on one core
std::atomic<int64_t> g_contended_until_ns{0};

inline int64_t mono_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
std::atomic<bool> g_guard_enabled{true};
inline bool contended_now() {
  return g_guard_enabled.load(std::memory_order_relaxed) &&
         mono_ns() < g_contended_until_ns.load(std::memory_order_relaxed);
}

struct JoinProbe {
  int64_t t0 = mono_ns(), t_master = 0;
  void master_done() { t_master = mono_ns(); }
  void region_done() const {
    const int64_t t1 = mono_ns();
    const int64_t body = t_master - t0, join = t1 - t_master;
    if (t_master > 0 && join > 1000000 && join > body) {
      g_contended_until_ns.store(t1 + 200000000, std::memory_order_relaxed);
    }
  }
};

// Spin briefly, then sleep on the counter (futex): a thread waiting for a packing unit that another,
// descheduled thread holds gives its core away, which matters on busy machines.
inline void wait_until_at_least(std::atomic<int>& c, int target) {
  for (int spin = 0; spin < 2048; ++spin) {
    if (c.load(std::memory_order_acquire) >= target) return;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
  for (int v = c.load(std::memory_order_acquire); v < target; v = c.load(std::memory_order_acquire)) c.wait(v);
}

// One band of rows of C (its op(A) band fits kMaxPackedABytes when packed). See the top of the file.
// bpack: shared packed op(B) (all K blocks, all columns) or nullptr to pack B privately per task;
// pack_b: whether this call packs bpack (the first band) or finds it ready (later bands).
template <class T>
void gemm_band(const GemmKernel<T>& kern, int64_t KC, bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha,
               const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc, int nth, T* bpack,
               bool pack_b) {
  const int MR = kern.mr, NR = kern.nr;
  const pack_a_fn<T> pack_a = pick_pack_a<T>(MR);
  const pack_b_fn<T> pack_b_panel = pick_pack_b<T>(NR);

  const int64_t kblocks = ceil_div(K, KC);
  const int64_t mpanels = ceil_div(M, MR), npanels = ceil_div(N, NR);
  const int64_t Mp = mpanels * MR, Np = npanels * NR;
  const bool shared_b = bpack != nullptr;

  // Packing units per K block: groups of A panels (~64 rows), then groups of B panels (~256 columns).
  const int64_t a_ppu = std::max<int64_t>(1, ceil_div(64, MR));
  const int64_t b_ppu = std::max<int64_t>(1, ceil_div(256, NR));
  const int64_t a_units = ceil_div(mpanels, a_ppu);
  const int64_t b_units = shared_b && pack_b ? ceil_div(npanels, b_ppu) : 0;
  const int64_t units_per_k = a_units + b_units;
  const int64_t units = units_per_k * kblocks;

  // Tasks: blocks of whole tiles, at most kern.nc columns (the B block a task reuses from L2).
  // With several threads, split further until there are ~4 tasks per thread so the dynamic queue
  // can balance: prefer near-square blocks (least L3 traffic) when B is shared; when B is packed
  // per task, prefer splitting columns (splitting rows would pack the same B again).
  int64_t ncb = ceil_div(Np, std::max(kern.nc, NR));
  int64_t mcb = 1;
  if (nth > 1) {
    const int64_t target = MG_TASKS_PER_THREAD * int64_t(nth);
    while (mcb * ncb < target) {
      const bool can_c = ceil_div(npanels, ncb + 1) >= MG_MIN_TASK_PANELS;
      const bool can_r = ceil_div(mpanels, mcb + 1) * MR >= 96;
      const bool prefer_r = shared_b && ceil_div(mpanels, mcb) * MR >= ceil_div(npanels, ncb) * NR;
      if (prefer_r && can_r) {
        ++mcb;
      } else if (can_c) {
        ++ncb;
      } else if (can_r) {
        ++mcb;
      } else {
        break;
      }
    }
  }
  ncb = std::min(ncb, npanels);
  mcb = std::min(mcb, mpanels);
  const int64_t tasks = mcb * ncb;
  const int64_t max_task_cols = ceil_div(npanels, ncb) * NR;

  T* apack = static_cast<T*>(tl_scratch_a.get(sizeof(T) * size_t(Mp * K)));
  std::atomic<int64_t> next_unit{0}, next_task{0};
  std::unique_ptr<std::atomic<int>[]> kdone(new std::atomic<int>[size_t(kblocks)]);
  for (int64_t i = 0; i < kblocks; ++i) kdone[i].store(0, std::memory_order_relaxed);

  // K block kb of a packed operand: its panels (MR x kc or NR x kc) one after another.
  auto a_block = [&](int64_t kb) { return apack + kb * KC * Mp; };
  auto b_block = [&](int64_t kb) { return bpack + kb * KC * Np; };
  auto pack_b_panels = [&](int64_t pc, int64_t kc, int64_t c0, int64_t ncols, T* dst) {
    for (int64_t p = 0; p * NR < ncols; ++p) {
      const int64_t nr = std::min<int64_t>(NR, ncols - p * NR);
      if (tb && kern.pack_rows) {
        kern.pack_rows(B + (c0 + p * NR) * ldb + pc, ldb, nr, kc, NR, dst + p * NR * kc);
      } else {
        pack_b_panel(B, ldb, tb, pc, kc, c0 + p * NR, nr, dst + p * NR * kc);
      }
    }
  };

  auto body = [&]() {
    // Phase 1: pack op(A) (and the shared op(B)).
    for (int64_t u = next_unit.fetch_add(1, std::memory_order_relaxed); u < units;
         u = next_unit.fetch_add(1, std::memory_order_relaxed)) {
      const int64_t kb = u / units_per_k, g = u % units_per_k;
      const int64_t pc = kb * KC, kc = std::min(KC, K - pc);
      if (g < a_units) {
        T* dst = a_block(kb);
        const int64_t p1 = std::min(mpanels, (g + 1) * a_ppu);
        for (int64_t p = g * a_ppu; p < p1; ++p) {
          const int64_t mr = std::min<int64_t>(MR, M - p * MR);
          if (!ta && kern.pack_rows) {
            kern.pack_rows(A + p * MR * lda + pc, lda, mr, kc, MR, dst + p * MR * kc);
          } else {
            pack_a(A, lda, ta, p * MR, mr, pc, kc, dst + p * MR * kc);
          }
        }
      } else {
        const int64_t p0 = (g - a_units) * b_ppu, p1 = std::min(npanels, p0 + b_ppu);
        pack_b_panels(pc, kc, p0 * NR, std::min(N, p1 * NR) - p0 * NR, b_block(kb) + p0 * NR * kc);
      }
      kdone[kb].fetch_add(1, std::memory_order_release);
      if (nth > 1) kdone[kb].notify_all();
    }
    // Phase 2: tasks.
    T* bbuf = shared_b ? nullptr : static_cast<T*>(tl_scratch_b.get(sizeof(T) * size_t(max_task_cols * KC)));
    alignas(64) T ctile[kMaxTile];
    for (int64_t t = next_task.fetch_add(1, std::memory_order_relaxed); t < tasks;
         t = next_task.fetch_add(1, std::memory_order_relaxed)) {
      const int64_t tr = t / ncb, tc = t % ncb;
      const int64_t r0 = (mpanels * tr / mcb) * MR, r1 = std::min(M, (mpanels * (tr + 1) / mcb) * MR);
      const int64_t c0 = (npanels * tc / ncb) * NR, c1 = std::min(N, (npanels * (tc + 1) / ncb) * NR);
      const int64_t nc = c1 - c0;
      for (int64_t kb = 0; kb < kblocks; ++kb) {
        const int64_t pc = kb * KC, kc = std::min(KC, K - pc);
        const T beta_eff = kb == 0 ? beta : T(1);
        if (!shared_b) pack_b_panels(pc, kc, c0, nc, bbuf);
        if (nth > 1) wait_until_at_least(kdone[kb], int(units_per_k));
        const T* ablk = a_block(kb);
        const T* bblk = shared_b ? b_block(kb) + c0 * kc : bbuf;
        for (int64_t ir = r0; ir < r1; ir += MR) {
          const int64_t mr = std::min<int64_t>(MR, M - ir);
          const T* ap = ablk + ir * kc;
          for (int64_t jr = 0; jr < nc; jr += NR) {
            const int64_t nr = std::min<int64_t>(NR, nc - jr);
            const T* bp = bblk + jr * kc;
            T* c = C + ir * ldc + c0 + jr;
            if (mr == MR && nr == NR) {
              kern.fn(kc, ap, bp, c, ldc, alpha, beta_eff);
            } else {
              kern.fn(kc, ap, bp, ctile, NR, T(1), T(0));
              for (int64_t i = 0; i < mr; ++i) {
                T* ci = c + i * ldc;
                const T* ti = ctile + i * NR;
                if (beta_eff == T(0)) {
                  for (int64_t j = 0; j < nr; ++j) ci[j] = alpha * ti[j];
                } else {
                  for (int64_t j = 0; j < nr; ++j) ci[j] = alpha * ti[j] + beta_eff * ci[j];
                }
              }
            }
          }
        }
      }
    }
  };

  if (nth <= 1) {
    body();
  } else {
    JoinProbe probe;
#pragma omp parallel num_threads(nth)
    {
      body();
      if (omp_get_thread_num() == 0) probe.master_done();
    }
    probe.region_done();
  }
}

template <class T>
void gemm_driver(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
                 int64_t ldb, T beta, T* C, int64_t ldc, int max_threads) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == T(0)) {
    scale_c(M, N, beta, C, ldc);
    return;
  }
  GemmKernel<T> kern = active_kernel<T>();
  if (const int v = g_force_kc.load(std::memory_order_relaxed)) kern.kc = v;
  if (const int v = g_force_mc.load(std::memory_order_relaxed)) kern.mc = v;
  if (const int v = g_force_nc.load(std::memory_order_relaxed)) kern.nc = v;

  int nth = max_threads;
  if (nth > 1) {
    const double flops = 2.0 * double(M) * double(N) * double(K);
    nth = static_cast<int>(std::min<double>(nth, std::max(1.0, flops / kMinFlopsPerThread)));
    if (flops < kSmallGemmFlops && contended_now()) nth = 1;
  }
  // Balanced K blocks: ceil(K/kc) near-equal blocks, no tiny remainder block.
  const int64_t KC = ceil_div(K, ceil_div(K, kern.kc));
  // Row bands so the packed copy of op(A) stays bounded (kern.mc caps it further when forced).
  const int64_t max_rows = std::max<int64_t>(
      kern.mr, std::min<int64_t>(kern.mc, kMaxPackedABytes / int64_t(sizeof(T) * size_t(K))) / kern.mr * kern.mr);
  const int64_t bands = ceil_div(M, max_rows);
  const int64_t band_rows = round_up(ceil_div(M, bands), kern.mr);
  // op(B) is packed once and shared when it is not too big, else per task.
  const int64_t b_bytes = int64_t(sizeof(T)) * round_up(N, kern.nr) * K;
  const bool share_b = b_bytes <= kMaxPackedBBytes && !g_force_private_b.load(std::memory_order_relaxed);
  T* bpack = share_b ? static_cast<T*>(tl_scratch_bshared.get(size_t(b_bytes))) : nullptr;
  for (int64_t i0 = 0; i0 < M; i0 += band_rows) {
    const int64_t mb = std::min(band_rows, M - i0);
    const T* Ab = ta ? A + i0 : A + i0 * lda;
    gemm_band<T>(kern, KC, ta, tb, mb, N, K, alpha, Ab, lda, B, ldb, beta, C + i0 * ldc, ldc, nth, bpack, i0 == 0);
  }
}

int default_threads() { return omp_in_parallel() ? 1 : omp_get_max_threads(); }

template <class T>
void gemm_batched_impl(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                       int64_t sa, const T* B, int64_t ldb, int64_t sb, T beta, T* C, int64_t ldc, int64_t sc,
                       int64_t batch) {
  if (batch <= 0 || M <= 0 || N <= 0) return;
  const int nth = default_threads();
  const double flops = 2.0 * double(M) * double(N) * double(std::max<int64_t>(K, 1));
  // Over the batch when it splits evenly, is long, or each GEMM is too small to thread well.
  const bool over_batch = nth > 1 && batch > 1 && sc != 0 &&
                          (batch % nth == 0 || batch >= 4 * nth || flops < 8.0 * kMinFlopsPerThread * nth);
  if (over_batch && flops * double(batch) < kSmallGemmFlops && contended_now()) {
    for (int64_t b = 0; b < batch; ++b) {
      gemm_driver<T>(ta, tb, M, N, K, alpha, A + b * sa, lda, B + b * sb, ldb, beta, C + b * sc, ldc, 1);
    }
  } else if (over_batch) {
    // Dynamic: a descheduled worker leaves its share to the others.
    const int team = static_cast<int>(std::min<int64_t>(nth, batch));
    JoinProbe probe;
#pragma omp parallel num_threads(team)
    {
#pragma omp for schedule(dynamic, 1) nowait
      for (int64_t b = 0; b < batch; ++b) {
        gemm_driver<T>(ta, tb, M, N, K, alpha, A + b * sa, lda, B + b * sb, ldb, beta, C + b * sc, ldc, 1);
      }
      if (omp_get_thread_num() == 0) probe.master_done();
    }
    probe.region_done();
  } else {
    for (int64_t b = 0; b < batch; ++b) {
      gemm_driver<T>(ta, tb, M, N, K, alpha, A + b * sa, lda, B + b * sb, ldb, beta, C + b * sc, ldc, nth);
    }
  }
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_driver<float>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, default_threads());
}

void dgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
           int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  gemm_driver<double>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, default_threads());
}

void sgemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                   int64_t lda, int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b, float beta,
                   float* C, int64_t ldc, int64_t stride_c, int64_t batch) {
  gemm_batched_impl<float>(trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc,
                           stride_c, batch);
}

void dgemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
                   int64_t lda, int64_t stride_a, const double* B, int64_t ldb, int64_t stride_b, double beta,
                   double* C, int64_t ldc, int64_t stride_c, int64_t batch) {
  gemm_batched_impl<double>(trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc,
                            stride_c, batch);
}

namespace detail {
void gemm_force_blocking(int kc, int mc, int nc, bool private_b) {
  g_force_kc.store(kc > 0 ? kc : 0);
  g_force_mc.store(mc > 0 ? mc : 0);
  g_force_nc.store(nc > 0 ? nc : 0);
  g_force_private_b.store(private_b);
}
void gemm_set_contention_guard(bool enabled) {
  g_guard_enabled.store(enabled);
  g_contended_until_ns.store(0);
}
}  // namespace detail

const char* gemm_kernel_name() { return detail::gemm_active_kernels().f32.name; }

}  // namespace mg::cpu
