// GEMM driver: GotoBLAS/BLIS-style blocking and packing around the register micro-kernels of
// cpu/gemm_kernel_*.cpp, threaded with OpenMP.
//
// K is cut into blocks of depth KC (~L1: an MR x KC micro-panel of op(A) stays in L1). For a band
// of rows of C (all of C unless packed op(A) would exceed kMaxPackedABytes):
//   * op(A) is packed into MR-row panels and op(B) into NR-column panels, per K block, into
//     buffers shared by all threads (op(B) per task instead when it is very large). Packing is
//     split into units (a K block x a group of panels) claimed from an atomic counter.
//   * C is cut into tasks: blocks of whole MR x NR tiles, at most nc columns so a task's
//     KC x nc slice of packed op(B) stays in L2 (choose_task_grid balances them over threads;
//     nc is kern.nc, or narrower for deep K blocks where the kernel sets kern.b_slice_bytes).
//   * Work items are (K block, task) pairs claimed in K-block-major order from an atomic counter:
//         wait for (help with) the packing of K block kb; wait until item (kb-1, task) is done
//         for ir in task rows step MR         A micro-panel (MR x kc) stays in L1
//           for jr in task cols step NR       B micro-panels stream from L2
//             micro-kernel: MR x NR tile of C in registers, C = alpha*acc + beta_eff*C
//     beta applies on K block 0 only (later blocks accumulate). Each K block is packed just
//     before every task uses it, so it is read from L2/L3, not memory.
// There are no barriers: a slow or descheduled thread only delays the others by the unit or item
// it holds, and the fast thread takes the remaining work (these machines are shared).
// Every C element is summed in the same order whatever the thread count, so results do not
// depend on it. Partial tiles (M or N not a multiple of MR/NR) run the same kernel on zero-padded
// panels into a small stack tile, which is then merged into C with alpha/beta.
#include "cpu/gemm.h"

#include <omp.h>
#ifdef __linux__
#include <pthread.h>
#include <sched.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <thread>
#include <vector>

#include "core/error.h"
#include "cpu/bf16_math.h"
#include "cpu/cpu_allocator.h"
#include "cpu/gemm_kernels.h"
#include "cpu/isa_dispatch.h"

namespace mg::cpu {
namespace {

using detail::GemmKernel;

constexpr int64_t kMaxTile = 16 * 32;  // edge-tile buffer: >= MR*NR of every kernel (checked below)

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Grow-only, 64-byte aligned scratch buffers of the calling thread (packed op(A), shared packed
// op(B), or per-worker op(B) slices), kept for the thread's lifetime so that repeated calls do not
// allocate. Workers use the caller's buffers; nothing is allocated inside a parallel region.
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

// Copy-type packing (op(A) with trans_a, op(B) without trans_b): the source is a row-major
// kc x ncols block (row k at src + k*ld) whose columns become W-wide panels, k-major inside a panel:
//   dst[q*W*kc + k*W + j] = src[k*ld + q*W + j], zero for columns >= ncols.
// Rows are walked in the outer loop so each source line is read once for all the panels it feeds
// (walking panel by panel re-reads every row, and rows a multiple of 4 KiB apart thrash the L1).
template <class T, int W>
void pack_copy_panels_w(const T* src, int64_t ld, int64_t ncols, int64_t kc, T* dst) {
  const int64_t full = ncols / W, rem = ncols - full * W;
  constexpr int64_t kAhead = 8;  // rows (see gemm_prefetch_row)
  for (int64_t k = 0; k < kc; ++k) {
    const T* row = src + k * ld;
    if (k + kAhead < kc) detail::gemm_prefetch_row(row + kAhead * ld, ncols);
    T* d = dst + k * W;
    for (int64_t q = 0; q < full; ++q) std::memcpy(d + q * W * kc, row + q * W, sizeof(T) * W);
    if (rem) {
      T* dq = d + full * W * kc;
      for (int64_t j = 0; j < rem; ++j) dq[j] = row[full * W + j];
      for (int64_t j = rem; j < W; ++j) dq[j] = T(0);
    }
  }
}

template <class T>
using pack_copy_fn = void (*)(const T*, int64_t, int64_t, int64_t, T*);

template <class T>
pack_copy_fn<T> pick_pack_copy(int w) {
  switch (w) {
    case 4: return &pack_copy_panels_w<T, 4>;
    case 6: return &pack_copy_panels_w<T, 6>;
    case 8: return &pack_copy_panels_w<T, 8>;
    case 12: return &pack_copy_panels_w<T, 12>;
    case 14: return &pack_copy_panels_w<T, 14>;
    case 16: return &pack_copy_panels_w<T, 16>;
    case 24: return &pack_copy_panels_w<T, 24>;
    case 32: return &pack_copy_panels_w<T, 32>;
    default: return nullptr;  // kernels only use the widths above
  }
}

// Gather-type packing, portable version of GemmKernel::pack_rows (op(A) without trans_a, op(B)
// with trans_b): dst[k*w + r] = src[r*ld + k] for r < rows, zero for rows <= r < w.
template <class T>
void pack_rows_portable(const T* src, int64_t ld, int64_t rows, int64_t kc, int w, T* dst) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* s = src + r * ld;
    for (int64_t k = 0; k < kc; ++k) dst[k * w + r] = s[k];
  }
  for (int64_t k = 0; k < kc; ++k)
    for (int64_t r = rows; r < w; ++r) dst[k * w + r] = T(0);
}

// How the driver packs each kernel type. kPack: K steps per packed unit. copy: the copy-type
// packer for panel width w; gather(kern): the gather-type packer.
template <class In, class U, class O>
struct Packing;
template <class T>
struct Packing<T, T, T> {
  static constexpr int64_t kPack = 1;
  static void copy(int w, const T* src, int64_t ld, int64_t ncols, int64_t kc, T* dst) {
    pick_pack_copy<T>(w)(src, ld, ncols, kc, dst);
  }
  static detail::gemm_pack_rows_fn<T, T> gather(const detail::GemmKernel<T>& k) {
    return k.pack_rows ? k.pack_rows : &pack_rows_portable<T>;
  }
};
template <>
struct Packing<uint16_t, uint32_t, float> {
  static constexpr int64_t kPack = 2;
  static void copy(int w, const uint16_t* src, int64_t ld, int64_t ncols, int64_t kc, uint32_t* dst) {
    detail::gemm_pack_copy_bf16(src, ld, ncols, kc, w, dst);
  }
  static detail::gemm_pack_rows_fn<uint16_t, uint32_t> gather(const detail::GemmKernelBf16& k) { return k.pack_rows; }
};

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
std::atomic<bool> g_native_bf16{true};

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

// Minimum flops per thread before another thread is worth its fork/join and packing overhead.
constexpr double kMinFlopsPerThread = 4.0e6;
// Largest packed copy of op(A) held at once; taller A is processed in row bands.
constexpr int64_t kMaxPackedABytes = int64_t(16) << 20;
// Largest packed op(B) shared by all tasks; wider/deeper B is packed per task instead.
constexpr int64_t kMaxPackedBBytes = int64_t(16) << 20;

// Contention guard. libgomp's default wait policy keeps idle workers spinning; on a machine
// oversubscribed by other processes the scheduler then deprioritises them, and a parallel region
// can wait a whole scheduling period at its implicit join (measured: ~20 ms for 1 ms of work) for
// a worker that has nothing left to do. A region counts as contended when its join took over 1 ms
// and longer than the master's own work. After two such regions in a row, small GEMMs run on the
// calling thread alone for 200 ms; then threads are tried again. Large GEMMs are always threaded.
// On an idle machine joins take microseconds. (A worker that merely wakes up late from sleep is
// not a contended join: the dynamic work split lets the master start alone and both end together.)
constexpr double kSmallGemmFlops = 5.0e8;  // ~5 ms on one core
std::atomic<int64_t> g_contended_until_ns{0};
std::atomic<int> g_strikes{0};
std::atomic<int64_t> g_last_region_end_ns{0};
std::atomic<bool> g_guard_enabled{true};

inline int64_t mono_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
inline bool contended_now() {
  return g_guard_enabled.load(std::memory_order_relaxed) &&
         mono_ns() < g_contended_until_ns.load(std::memory_order_relaxed);
}

// Per parallel region: the contention probe above, plus a fix for where the workers run.
// Woken after a pause, a worker is often placed on the CPU of the thread that woke it (the master,
// which then computes without yielding) while the other CPU idles; it then starts only at the next
// timer tick or load balance (measured +4 ms, for two regions in a row, on this 2-vCPU VM). So a
// worker that finds itself on the master's CPU moves itself off it (affinity narrowed for a
// moment, then restored: nothing stays pinned), and until every worker has started the master
// yields between work items so a co-located worker gets to run and move.
struct Team {
  const int nth;  // requested team size
  const int64_t t0 = mono_ns();
  int64_t t_master = 0;
  int master_cpu = -1;
  int workers = 0;  // actual number of workers (set by the master on entry)
  std::atomic<int> started{0};

  explicit Team(int n) : nth(n) {
#ifdef __linux__
    master_cpu = sched_getcpu();
#endif
  }
  // Called by every thread of the team on entry.
  void enter(int tid) {
    if (tid == 0) {
      workers = omp_get_num_threads() - 1;
      return;
    }
#ifdef __linux__
    if (master_cpu >= 0 && sched_getcpu() == master_cpu) {
      cpu_set_t allowed;
      if (pthread_getaffinity_np(pthread_self(), sizeof allowed, &allowed) == 0 && CPU_COUNT(&allowed) > 1 &&
          CPU_ISSET(master_cpu, &allowed)) {
        cpu_set_t others = allowed;
        CPU_CLR(master_cpu, &others);
        if (pthread_setaffinity_np(pthread_self(), sizeof others, &others) == 0) {
          pthread_setaffinity_np(pthread_self(), sizeof allowed, &allowed);
        }
      }
    }
#endif
    started.fetch_add(1, std::memory_order_release);
  }
  // Called by the master between work items.
  void master_poll() {
    if (started.load(std::memory_order_acquire) < workers) std::this_thread::yield();
  }
  void master_done() { t_master = mono_ns(); }
  // After the region: contention probe.
  void region_done() {
    const int64_t t1 = mono_ns();
    const int64_t idle = t0 - g_last_region_end_ns.exchange(t1, std::memory_order_relaxed);
    if (t_master == 0) return;
    const int64_t body = t_master - t0, join = t1 - t_master;
    // After a pause the workers are asleep and waking them can take milliseconds; a slow join
    // then is that wake-up, not contention.
    const bool slow_join = join > 1000000 && join > body && idle < 5000000;
    // Two contended regions in a row are needed (a single one can be a fluke, e.g. the first
    // region of the process, which also creates the worker threads).
    if (!slow_join) {
      g_strikes.store(0, std::memory_order_relaxed);
    } else if (g_strikes.fetch_add(1, std::memory_order_relaxed) >= 1) {
      g_contended_until_ns.store(t1 + 200000000, std::memory_order_relaxed);
    }
  }
};

// Waits until c >= target. Waits here are normally microseconds (a unit or item in flight on
// another thread), so spin first; then yield, which hands the core to another runnable thread if
// there is one (an oversubscribed machine) and otherwise keeps this vCPU awake; sleeping on a
// futex is the last resort: on a VM a halted vCPU can take a whole timer tick (4 ms measured) to
// wake up again, which would dominate a GEMM of a few ms.
inline void wait_until_at_least(std::atomic<int>& c, int target) {
  for (int spin = 0; spin < 4096; ++spin) {
    if (c.load(std::memory_order_acquire) >= target) return;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
  const int64_t give_up = mono_ns() + 20000000;  // 20 ms of yielding, then sleep
  while (c.load(std::memory_order_acquire) < target) {
    if (mono_ns() > give_up) {
      for (int v = c.load(std::memory_order_acquire); v < target; v = c.load(std::memory_order_acquire)) c.wait(v);
      return;
    }
    std::this_thread::yield();
  }
}

// Splits C (mpanels x npanels tiles) into mcb x ncb task blocks. One thread: column blocks of at
// most nc columns. Several threads: between nth and 8*nth tasks, scored by
//   load imbalance of the dynamic queue (list scheduling of the actual block sizes)
//   + 2 * (1/rows + 1/cols)            smaller blocks reuse packed panels less
//   + 0.006 * |tasks/nth - 4|          ~4 tasks per thread absorb a slow thread
//   + 0.01 * (mcb - 1) when op(B) is packed per task (each row block packs it again).
void choose_task_grid(int64_t mpanels, int64_t npanels, int MR, int NR, int nc, int nth, bool shared_b,
                      int64_t* mcb_out, int64_t* ncb_out) {
  const int64_t ncb_min = std::min(npanels, ceil_div(npanels * NR, std::max(nc, NR)));
  *mcb_out = 1;
  *ncb_out = ncb_min;
  if (nth <= 1) return;
  const int64_t max_tasks = 8 * int64_t(nth);
  double best = 1e30;
  std::vector<int64_t> finish(size_t(nth), 0);
  for (int64_t mcb = 1; mcb <= std::min(mpanels, max_tasks); ++mcb) {
    for (int64_t ncb = ncb_min; ncb <= npanels && mcb * ncb <= max_tasks; ++ncb) {
      const int64_t tasks = mcb * ncb;
      if (tasks < nth && mpanels * npanels >= nth) continue;
      // Dynamic queue in task order: each task goes to the thread that frees up first.
      std::fill(finish.begin(), finish.end(), 0);
      for (int64_t t = 0; t < tasks; ++t) {
        const int64_t tr = t / ncb, tc = t % ncb;
        const int64_t rows = mpanels * (tr + 1) / mcb - mpanels * tr / mcb;
        const int64_t cols = npanels * (tc + 1) / ncb - npanels * tc / ncb;
        *std::min_element(finish.begin(), finish.end()) += rows * cols;
      }
      const double ideal = double(mpanels * npanels) / nth;
      const double imbalance = double(*std::max_element(finish.begin(), finish.end())) / ideal - 1.0;
      const double rows = double(ceil_div(mpanels, mcb) * MR), cols = double(ceil_div(npanels, ncb) * NR);
      const double score = imbalance + 2.0 * (1.0 / rows + 1.0 / cols) +
                           0.006 * std::abs(double(tasks) / nth - 4.0) + (shared_b ? 0.0 : 0.01 * double(mcb - 1));
      if (score < best) {
        best = score;
        *mcb_out = mcb;
        *ncb_out = ncb;
      }
    }
  }
}

// The epilogue on rows [r0, r1) and columns [c0, c1) of the result, whose element (r0, c0) is at
// c (row stride ldc: C itself, or a micro-tile buffer); bias and D are indexed by the result's
// coordinates. A no-op for f64 (GemmEpilogue is f32 only; dgemm callers never pass one).
// keep_c: write c + bias back to c (C proper; a micro-tile buffer needs only D).
template <class O>
void apply_epilogue(const GemmEpilogue* ep, O* c, int64_t ldc, int64_t r0, int64_t r1, int64_t c0, int64_t c1,
                    bool keep_c = true) {
  if constexpr (std::is_same_v<O, float>) {
    if (!ep) return;
    const float* bias = ep->bias ? ep->bias + c0 : nullptr;
    uint16_t* D = ep->D ? ep->D + r0 * ep->ldd + c0 : nullptr;
    const int64_t ldd = ep->ldd, n = c1 - c0;
    // Compiled for the CPU's best ISA (this file is built for the baseline one).
    run_isa([&](int64_t rb, int64_t re) __attribute__((always_inline)) {
      for (int64_t r = rb; r < re; ++r) {
        float* cr = c + r * ldc;
        uint16_t* d = D ? D + r * ldd : nullptr;
        if (bias && d && !keep_c) {
#pragma omp simd
          for (int64_t j = 0; j < n; ++j) d[j] = bf16_bits_rne(cr[j] + bias[j]);
          continue;
        }
        if (bias) {
#pragma omp simd
          for (int64_t j = 0; j < n; ++j) cr[j] += bias[j];
        }
        if (d) {
#pragma omp simd
          for (int64_t j = 0; j < n; ++j) d[j] = bf16_bits_rne(cr[j]);
        }
      }
    }, int64_t(0), r1 - r0);
  }
}

// ep (may be null) shifted down by `rows` rows of D.
inline GemmEpilogue epilogue_at(const GemmEpilogue* ep, int64_t rows) {
  GemmEpilogue e = *ep;
  if (e.D) e.D += rows * e.ldd;
  return e;
}

// One band of rows of C (its op(A) band fits kMaxPackedABytes when packed). See the top of the file.
// bpack: shared packed op(B) (all K blocks, all columns) or nullptr to pack B privately per task;
// pack_b: whether this call packs bpack (the first band) or finds it ready (later bands).
// In, U, O: see GemmKernelOf. K, KC and kc count elements of In; packed panels hold ceil(kc/kPack)
// units per row or column (KC is a multiple of kPack, so only the last K block can be ragged).
template <class In, class U, class O>
void gemm_band(const detail::GemmKernelOf<In, U, O>& kern, int64_t KC, bool ta, bool tb, int64_t M, int64_t N,
               int64_t K, O alpha, const In* A, int64_t lda, const In* B, int64_t ldb, O beta, O* C, int64_t ldc,
               int nth, U* bpack, bool pack_b, const GemmEpilogue* ep, GemmTri tri, int64_t row0, int64_t nb,
               int64_t sa, int64_t sb) {
  using P = Packing<In, U, O>;
  const int MR = kern.mr, NR = kern.nr;
  const auto gather = P::gather(kern);
  const int64_t KCu = ceil_div(KC, P::kPack);  // units per row of a full K block

  // nb > 1 folds a batch that accumulates into one C into the K loop: K block kb is block
  // kb % kpe of entry kb / kpe (operands A + entry * sa, B + entry * sb), so the whole sum is one
  // threaded pass in the order the entries would run one after another.
  const int64_t kpe = ceil_div(K, KC);
  const int64_t kblocks = kpe * nb;
  auto entry_a = [&](int64_t kb) { return A + (kb / kpe) * sa; };
  auto entry_b = [&](int64_t kb) { return B + (kb / kpe) * sb; };
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
  int64_t mcb = 1, ncb = 1;
  choose_task_grid(mpanels, npanels, MR, NR, kern.nc, nth, shared_b, &mcb, &ncb);
  const int64_t tasks = mcb * ncb;
  const int64_t max_task_cols = ceil_div(npanels, ncb) * NR;

  // All buffers come from the calling thread's scratch (nothing is allocated inside the region).
  U* apack = static_cast<U*>(tl_scratch_a.get(sizeof(U) * size_t(Mp * KCu * kblocks)));
  const int64_t bpriv_elems = shared_b ? 0 : max_task_cols * KCu;  // per-thread op(B) slice
  U* bpriv = shared_b ? nullptr : static_cast<U*>(tl_scratch_b.get(sizeof(U) * size_t(bpriv_elems * nth)));
  const int64_t total_items = tasks * kblocks;
  std::atomic<int64_t> next_unit{0}, next_item{0};
  std::unique_ptr<std::atomic<int>[]> kdone(new std::atomic<int>[size_t(kblocks)]);
  for (int64_t i = 0; i < kblocks; ++i) kdone[i].store(0, std::memory_order_relaxed);
  std::unique_ptr<std::atomic<int>[]> tprog(new std::atomic<int>[size_t(tasks)]);  // K blocks done per task
  for (int64_t i = 0; i < tasks; ++i) tprog[i].store(0, std::memory_order_relaxed);

  // K block kb of a packed operand: its panels (MR x kc or NR x kc) one after another.
  auto a_block = [&](int64_t kb) { return apack + kb * KCu * Mp; };
  auto b_block = [&](int64_t kb) { return bpack + kb * KCu * Np; };
  // Packs columns [c0, c0+ncols) of op(B)'s K block at pc into NR-wide panels at dst.
  auto pack_b_panels = [&](const In* Bk, int64_t pc, int64_t kc, int64_t c0, int64_t ncols, U* dst) {
    const int64_t kcu = ceil_div(kc, P::kPack);
    if (!tb) {
      P::copy(NR, Bk + pc * ldb + c0, ldb, ncols, kc, dst);
    } else {
      for (int64_t p = 0; p * NR < ncols; ++p) {
        gather(Bk + (c0 + p * NR) * ldb + pc, ldb, std::min<int64_t>(NR, ncols - p * NR), kc, NR, dst + p * NR * kcu);
      }
    }
  };

  // Packs unit u (K block u / units_per_k): a group of op(A) panels or of shared op(B) panels.
  auto pack_unit = [&](int64_t u) {
    const int64_t kb = u / units_per_k, g = u % units_per_k;
    const int64_t pc = kb % kpe * KC, kc = std::min(KC, K - pc), kcu = ceil_div(kc, P::kPack);
    if (g < a_units) {
      U* dst = a_block(kb);
      const In* Ak = entry_a(kb);
      const int64_t p0 = g * a_ppu, p1 = std::min(mpanels, p0 + a_ppu);
      if (ta) {
        P::copy(MR, Ak + pc * lda + p0 * MR, lda, std::min(M, p1 * MR) - p0 * MR, kc, dst + p0 * MR * kcu);
      } else {
        for (int64_t p = p0; p < p1; ++p) {
          gather(Ak + p * MR * lda + pc, lda, std::min<int64_t>(MR, M - p * MR), kc, MR, dst + p * MR * kcu);
        }
      }
    } else {
      const int64_t p0 = (g - a_units) * b_ppu, p1 = std::min(npanels, p0 + b_ppu);
      pack_b_panels(entry_b(kb), pc, kc, p0 * NR, std::min(N, p1 * NR) - p0 * NR, b_block(kb) + p0 * NR * kcu);
    }
    kdone[kb].fetch_add(1, std::memory_order_release);
    if (nth > 1) kdone[kb].notify_all();
  };

  // Work items are (K block, task) pairs taken in K-block-major order, so every K block of the
  // packed operands is produced just before all tasks consume it (hot in L2/L3) rather than
  // streaming the whole packed band through memory. A thread that needs K block kb first helps
  // pack its units; item (kb, t) also waits until (kb-1, t) is done (same tiles of C).
  // tid: thread number in the team; team: the region's Team for its master (polled between
  // items), else nullptr.
  // C == nullptr (one K block, an epilogue with D, beta 0; see gemm_driver_with): no f32 result
  // is kept. Each micro-tile goes to one of two small buffers and from there through the
  // epilogue to D, so the f32 result never travels to memory (13% of a 4096 x 2048 x 512 bf16
  // GEMM's time went to writing it and reading it back).
  const bool direct = C == nullptr;
  if (direct && kblocks != 1) std::abort();  // gemm_driver_with keeps a C for several K blocks
  auto body = [&](int tid, Team* team) {
    U* bbuf = shared_b ? nullptr : bpriv + tid * bpriv_elems;
    alignas(64) O ctile[kMaxTile];
    alignas(64) O dtile[2][kMaxTile];
    for (int64_t i = next_item.fetch_add(1, std::memory_order_relaxed); i < total_items;
         i = next_item.fetch_add(1, std::memory_order_relaxed)) {
      if (team) team->master_poll();
      const int64_t kb = i / tasks, t = i % tasks;
      // Help pack K block kb (never claims units of later blocks), then wait for the rest.
      while (kdone[kb].load(std::memory_order_acquire) < units_per_k &&
             next_unit.load(std::memory_order_relaxed) < (kb + 1) * units_per_k) {
        const int64_t u = next_unit.fetch_add(1, std::memory_order_relaxed);
        if (u >= units) break;
        pack_unit(u);
      }
      if (nth > 1) {
        wait_until_at_least(kdone[kb], int(units_per_k));
        if (kb > 0) wait_until_at_least(tprog[t], int(kb));
      }
      const int64_t tr = t / ncb, tc = t % ncb;
      const int64_t r0 = (mpanels * tr / mcb) * MR, r1 = std::min(M, (mpanels * (tr + 1) / mcb) * MR);
      const int64_t c0 = (npanels * tc / ncb) * NR, c1 = std::min(N, (npanels * (tc + 1) / ncb) * NR);
      const int64_t nc = c1 - c0;
      const int64_t pc = kb % kpe * KC, kc = std::min(KC, K - pc), kcu = ceil_div(kc, P::kPack);
      const O beta_eff = kb == 0 ? beta : O(1);
      const bool last_k = ep != nullptr && kb == kblocks - 1;
      if (!shared_b) pack_b_panels(entry_b(kb), pc, kc, c0, nc, bbuf);
      const U* ablk = a_block(kb);
      const U* bblk = shared_b ? b_block(kb) + c0 * kcu : bbuf;
      // The epilogue of a finished micro-tile runs one tile late, after the next tile's kernel:
      // reading C right after the kernel stored it stalls (the new lines are still being fetched
      // for the stores, and Zen 4 cannot forward split 512-bit stores to loads); one kernel later
      // the tile is in L1 or L2. A profile of the bf16 Llama step had 4.4% of its time there.
      int64_t pend_r = -1, pend_mr = 0, pend_c = 0, pend_nr = 0;
      O* pend_tile = nullptr;
      int parity = 0;
      for (int64_t ir = r0; ir < r1; ir += MR) {
        const int64_t mr = std::min<int64_t>(MR, M - ir);
        // The units [ks, ke) of this K block that the tile's rows reach (all of them unless tri
        // says op(A) is triangular); row0 + ir is the tile's first row in the whole GEMM.
        int64_t ks = 0, ke = kcu;
        if (tri == GemmTri::a_lower) ke = std::clamp<int64_t>(ceil_div(row0 + ir + mr - pc, P::kPack), 0, kcu);
        if (tri == GemmTri::a_upper) ks = std::clamp<int64_t>((row0 + ir - pc) / P::kPack, 0, kcu);
        const int64_t ku = std::max<int64_t>(ke - ks, 0);
        // Nothing to add to tiles that are neither started (beta) nor finished (epilogue) here.
        if (ku == 0 && beta_eff == O(1) && !last_k && !direct) continue;
        const U* ap = ablk + ir * kcu + ks * MR;
        for (int64_t jr = 0; jr < nc; jr += NR) {
          // c_lower: the tiles right of this one lie wholly above the diagonal too.
          if (tri == GemmTri::c_lower && c0 + jr > row0 + ir + mr - 1) break;
          const int64_t nr = std::min<int64_t>(NR, nc - jr);
          const U* bp = bblk + jr * kcu + ks * NR;
          if (direct) {
            O* tile = dtile[parity];
            parity ^= 1;
            kern.fn(ku, ap, bp, tile, NR, alpha, O(0));
            if (pend_tile) apply_epilogue(ep, pend_tile, NR, pend_r, pend_r + pend_mr, pend_c, pend_c + pend_nr, false);
            pend_tile = tile, pend_r = ir, pend_mr = mr, pend_c = c0 + jr, pend_nr = nr;
            continue;
          }
          O* c = C + ir * ldc + c0 + jr;
          if (mr == MR && nr == NR) {
            kern.fn(ku, ap, bp, c, ldc, alpha, beta_eff);
          } else {
            kern.fn(ku, ap, bp, ctile, NR, O(1), O(0));
            for (int64_t i2 = 0; i2 < mr; ++i2) {
              O* ci = c + i2 * ldc;
              const O* ti = ctile + i2 * NR;
              if (beta_eff == O(0)) {
                for (int64_t j = 0; j < nr; ++j) ci[j] = alpha * ti[j];
              } else {
                for (int64_t j = 0; j < nr; ++j) ci[j] = alpha * ti[j] + beta_eff * ci[j];
              }
            }
          }
          // The last K block leaves this micro-tile final: its epilogue runs after the next kernel.
          if (last_k) {
            if (pend_r >= 0)
              apply_epilogue(ep, C + pend_r * ldc + pend_c, ldc, pend_r, pend_r + pend_mr, pend_c, pend_c + pend_nr);
            pend_r = ir, pend_mr = mr, pend_c = c0 + jr, pend_nr = nr;
          }
        }
      }
      if (pend_tile) {
        apply_epilogue(ep, pend_tile, NR, pend_r, pend_r + pend_mr, pend_c, pend_c + pend_nr, false);
      } else if (pend_r >= 0) {
        apply_epilogue(ep, C + pend_r * ldc + pend_c, ldc, pend_r, pend_r + pend_mr, pend_c, pend_c + pend_nr);
      }
      tprog[t].store(int(kb + 1), std::memory_order_release);
      if (nth > 1) tprog[t].notify_all();
    }
  };

  if (nth <= 1) {
    body(0, nullptr);
  } else {
    Team team(nth);
#pragma omp parallel num_threads(nth)
    {
      const int tid = omp_get_thread_num();
      team.enter(tid);
      body(tid, tid == 0 ? &team : nullptr);
      if (tid == 0) team.master_done();
    }
    team.region_done();
  }
}

template <class In, class U, class O>
void gemm_driver_with(detail::GemmKernelOf<In, U, O> kern, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                      O alpha, const In* A, int64_t lda, const In* B, int64_t ldb, O beta, O* C, int64_t ldc,
                      int max_threads, const GemmEpilogue* ep = nullptr, GemmTri tri = GemmTri::none, int64_t nb = 1,
                      int64_t sa = 0, int64_t sb = 0) {
  using P = Packing<In, U, O>;
  if (M <= 0 || N <= 0) return;
  if (int64_t(kern.mr) * kern.nr > kMaxTile) std::abort();  // a kernel larger than the edge tile
  if (const int v = g_force_kc.load(std::memory_order_relaxed)) kern.kc = v;
  if (const int v = g_force_mc.load(std::memory_order_relaxed)) kern.mc = v;
  if (const int v = g_force_nc.load(std::memory_order_relaxed)) kern.nc = v;
  // No C (the caller wants D only): tiles go straight through the epilogue when the GEMM is one K
  // block; otherwise partial sums need a whole f32 result, kept here for the call.
  if (!C) {
    if (!ep || !ep->D || beta != O(0)) std::abort();  // the public entry points check this
    if (K <= 0 || alpha == O(0) || ceil_div(K, kern.kc) > 1) {
      // From the host allocator's cache: a training step asks for the same sizes every time.
      const size_t bytes = sizeof(O) * size_t(M) * size_t(N);
      std::unique_ptr<O, std::function<void(O*)>> tmp(static_cast<O*>(host_allocate(bytes)),
                                                    [bytes](O* p) { host_free(p, bytes); });
      gemm_driver_with(kern, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, tmp.get(), N, max_threads, ep, tri, nb, sa,
                       sb);
      return;
    }
  }
  if (K <= 0 || alpha == O(0)) {
    scale_c(M, N, beta, C, ldc);
    apply_epilogue(ep, C, ldc, 0, M, 0, N);
    return;
  }

  int nth = max_threads;
  if (nth > 1) {
    const double flops = 2.0 * double(M) * double(N) * double(K) * double(nb);
    nth = static_cast<int>(std::min<double>(nth, std::max(1.0, flops / kMinFlopsPerThread)));
    if (flops < kSmallGemmFlops && contended_now()) nth = 1;
  }
  // Balanced K blocks: ceil(K/kc) near-equal blocks, no tiny remainder block; whole packed units.
  const int64_t KC = round_up(ceil_div(K, ceil_div(K, kern.kc)), P::kPack);
  const int64_t kblocks = ceil_div(K, KC);
  if (kern.b_slice_bytes > 0 && !g_force_nc.load(std::memory_order_relaxed)) {
    const int64_t slice_cols = kern.b_slice_bytes / (ceil_div(KC, P::kPack) * int64_t(sizeof(U)));
    kern.nc = int(std::clamp<int64_t>(slice_cols / kern.nr * kern.nr, kern.nr, kern.nc));
  }
  // Row bands so the packed copy of op(A) stays bounded (kern.mc caps it further when forced).
  const int64_t packed_k = kblocks * nb * ceil_div(KC, P::kPack);  // packed units per row of op(A)
  const int64_t max_rows = std::max<int64_t>(
      kern.mr, std::min<int64_t>(kern.mc, kMaxPackedABytes / int64_t(sizeof(U) * size_t(packed_k))) / kern.mr * kern.mr);
  const int64_t bands = ceil_div(M, max_rows);
  const int64_t band_rows = round_up(ceil_div(M, bands), kern.mr);
  // op(B) is packed once and shared when it is not too big, else per task.
  const int64_t b_bytes = int64_t(sizeof(U)) * round_up(N, kern.nr) * packed_k;
  const bool share_b = b_bytes <= kMaxPackedBBytes && !g_force_private_b.load(std::memory_order_relaxed);
  U* bpack = share_b ? static_cast<U*>(tl_scratch_bshared.get(size_t(b_bytes))) : nullptr;
  for (int64_t i0 = 0; i0 < M; i0 += band_rows) {
    const int64_t mb = std::min(band_rows, M - i0);
    const In* Ab = ta ? A + i0 : A + i0 * lda;
    if (ep) {
      const GemmEpilogue band_ep = epilogue_at(ep, i0);
      gemm_band(kern, KC, ta, tb, mb, N, K, alpha, Ab, lda, B, ldb, beta, C ? C + i0 * ldc : nullptr, ldc, nth, bpack,
                i0 == 0, &band_ep, tri, i0, nb, sa, sb);
    } else {
      gemm_band(kern, KC, ta, tb, mb, N, K, alpha, Ab, lda, B, ldb, beta, C + i0 * ldc, ldc, nth, bpack, i0 == 0,
                static_cast<const GemmEpilogue*>(nullptr), tri, i0, nb, sa, sb);
    }
  }
}

template <class T>
void gemm_driver(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
                 int64_t ldb, T beta, T* C, int64_t ldc, int max_threads) {
  gemm_driver_with(active_kernel<T>(), ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, max_threads);
}

int default_threads() { return omp_in_parallel() ? 1 : omp_get_max_threads(); }

// one(b, threads) runs GEMM number b of the batch (on its A, B and C) with at most that many threads.
template <class F>
void gemm_batched_impl(int64_t M, int64_t N, int64_t K, int64_t sc, int64_t batch, const F& one) {
  if (batch <= 0 || M <= 0 || N <= 0) return;
  const int nth = default_threads();
  const double flops = 2.0 * double(M) * double(N) * double(std::max<int64_t>(K, 1));
  // Over the batch when it splits evenly, is long, or each GEMM is too small to thread well.
  const bool over_batch = nth > 1 && batch > 1 && sc != 0 &&
                          (batch % nth == 0 || batch >= 4 * nth || flops < 8.0 * kMinFlopsPerThread * nth);
  if (over_batch && flops * double(batch) < kSmallGemmFlops && contended_now()) {
    for (int64_t b = 0; b < batch; ++b) {
      one(b, 1);
    }
  } else if (over_batch) {
    // Dynamic: a descheduled worker leaves its share to the others.
    Team team(static_cast<int>(std::min<int64_t>(nth, batch)));
#pragma omp parallel num_threads(team.nth)
    {
      const int tid = omp_get_thread_num();
      team.enter(tid);
#pragma omp for schedule(dynamic, 1) nowait
      for (int64_t b = 0; b < batch; ++b) {
        one(b, 1);
        if (tid == 0) team.master_poll();
      }
      if (tid == 0) team.master_done();
    }
    team.region_done();
  } else {
    for (int64_t b = 0; b < batch; ++b) {
      one(b, nth);
    }
  }
}

// A batch of GEMMs with kernel `kern`, each on its own A, B and C (element strides between them).
template <class In, class U, class O>
void gemm_batched_with(const detail::GemmKernelOf<In, U, O>& kern, bool trans_a, bool trans_b, int64_t M, int64_t N,
                       int64_t K, O alpha, const In* A, int64_t lda, int64_t stride_a, const In* B, int64_t ldb,
                       int64_t stride_b, O beta, O* C, int64_t ldc, int64_t stride_c, int64_t batch,
                       const GemmEpilogue* ep = nullptr, GemmTri tri = GemmTri::none) {
  // Entries that accumulate into one C (stride_c 0, beta 1: C += each product in turn) run as one
  // GEMM over their K blocks in batch order: one threaded pass with shared packing instead of
  // batch passes, the same sums in the same order. (Another beta scales C again before every
  // entry, and an epilogue runs after every entry, so those still run one after another.) Only
  // while every entry's packed op(A) and op(B) fit the packing bounds together: past them the
  // driver would cut A into row bands and pack B per task, each again for every band.
  const auto packed_bytes = [&](int64_t rows) {
    return double(sizeof(In)) * double(rows) * double(std::max<int64_t>(K, 1)) * double(batch);
  };
  if (C && stride_c == 0 && batch > 1 && beta == O(1) && !ep && M > 0 && N > 0 &&
      packed_bytes(round_up(M, kern.mr)) <= double(kMaxPackedABytes) &&
      packed_bytes(round_up(N, kern.nr)) <= double(kMaxPackedBBytes)) {
    gemm_driver_with(kern, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, default_threads(), ep, tri,
                     batch, stride_a, stride_b);
    return;
  }
  // Without C, batch entries are independent when their D are.
  const int64_t out_stride = C ? stride_c : ep && ep->D ? ep->stride_d : 0;
  gemm_batched_impl(M, N, K, out_stride, batch, [&](int64_t b, int nth) {
    GemmEpilogue eb;
    if (ep) {
      eb = *ep;
      if (eb.D) eb.D += b * ep->stride_d;
    }
    gemm_driver_with(kern, trans_a, trans_b, M, N, K, alpha, A + b * stride_a, lda, B + b * stride_b, ldb, beta,
                     C ? C + b * stride_c : nullptr, ldc, nth, ep ? &eb : nullptr, tri);
  });
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
                   float* C, int64_t ldc, int64_t stride_c, int64_t batch, const GemmEpilogue& ep, GemmTri tri) {
  MG_CHECK(C || (ep.D && beta == 0.0f), "sgemm_batched: C may be null only with an epilogue D and beta 0");
  gemm_batched_with(active_kernel<float>(), trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta,
                    C, ldc, stride_c, batch, ep.bias || ep.D ? &ep : nullptr, tri);
}

void dgemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
                   int64_t lda, int64_t stride_a, const double* B, int64_t ldb, int64_t stride_b, double beta,
                   double* C, int64_t ldc, int64_t stride_c, int64_t batch, GemmTri tri) {
  gemm_batched_with(active_kernel<double>(), trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b,
                    beta, C, ldc, stride_c, batch, static_cast<const GemmEpilogue*>(nullptr), tri);
}

bool bf16gemm_native() {
  return g_native_bf16.load(std::memory_order_relaxed) && detail::gemm_active_kernels().bf16.fn != nullptr;
}

void bf16gemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t* A,
                      int64_t lda, int64_t stride_a, const uint16_t* B, int64_t ldb, int64_t stride_b, float beta,
                      float* C, int64_t ldc, int64_t stride_c, int64_t batch, const GemmEpilogue& ep, GemmTri tri) {
  MG_CHECK(bf16gemm_native(), "bf16gemm_batched: no native bf16 GEMM kernel on this CPU (check bf16gemm_native())");
  MG_CHECK(C || (ep.D && beta == 0.0f), "bf16gemm_batched: C may be null only with an epilogue D and beta 0");
  gemm_batched_with(detail::gemm_active_kernels().bf16, trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb,
                    stride_b, beta, C, ldc, stride_c, batch, ep.bias || ep.D ? &ep : nullptr, tri);
}

namespace detail {
void gemm_set_native_bf16(bool enabled) { g_native_bf16.store(enabled); }
void gemm_force_blocking(int kc, int mc, int nc, bool private_b) {
  g_force_kc.store(kc > 0 ? kc : 0);
  g_force_mc.store(mc > 0 ? mc : 0);
  g_force_nc.store(nc > 0 ? nc : 0);
  g_force_private_b.store(private_b);
}
void gemm_set_contention_guard(bool enabled) {
  g_guard_enabled.store(enabled);
  g_contended_until_ns.store(0);
  g_strikes.store(0);
}
}  // namespace detail

const char* gemm_kernel_name() { return detail::gemm_active_kernels().f32.name; }

}  // namespace mg::cpu
