// Tests for mg::cpu::sgemm / dgemm (+ batched) against a naive triple loop in higher precision.
//
// Error bound (Higham, "Accuracy and Stability of Numerical Algorithms", ch. 3): every term
// alpha*a_ik*b_kj of c_ij passes through at most one product rounding, kc-1 additions inside a
// K block, one multiplication by alpha and one addition into C per K block (<= K blocks), and the
// beta*c0 term through at most K+2 roundings. With n = 2K+3 >= K + nblocks + 3 and u the unit
// roundoff of the working type (2^-24 for f32, 2^-53 for f64), any summation order satisfies
//     |c_ij - exact_ij| <= gamma_n * (|alpha| * sum_k |a_ik||b_kj| + |beta| * |c0_ij|),
//     gamma_n = n*u / (1 - n*u).
// The reference (double for f32, long double for f64) is itself within gamma_{K+2}(u_ref) of the
// exact value; that term is added. The bound is elementwise and holds for every ISA, blocking and
// thread count, so it is not loosened anywhere below.
#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "core/dtype.h"
#include "cpu/gemm.h"
#include "cpu/gemm_kernels.h"

namespace {

using mg::cpu::detail::gemm_force_blocking;
using mg::cpu::detail::gemm_force_isa;
using mg::cpu::detail::gemm_isa_supported;
using mg::cpu::detail::gemm_set_contention_guard;

template <class T>
using RefT = std::conditional_t<std::is_same_v<T, float>, double, long double>;

template <class T>
long double unit_roundoff() {
  return static_cast<long double>(std::numeric_limits<T>::epsilon()) / 2;
}

long double gamma_n(long double n, long double u) { return n * u / (1 - n * u); }

constexpr double kSentinel = 12345.0;  // written into C's row padding; must survive

std::vector<std::string> isas() {
  std::vector<std::string> v;
  for (const char* s : {"scalar", "avx2", "avx512"}) {
    if (gemm_isa_supported(s)) v.emplace_back(s);
  }
  return v;
}

// Restores automatic kernel choice and default blocking on scope exit.
struct DispatchGuard {
  DispatchGuard() { gemm_set_contention_guard(false); }
  ~DispatchGuard() {
    gemm_set_contention_guard(true);
    gemm_force_isa("auto");
    gemm_force_blocking(0, 0, 0, false);
    mg::cpu::detail::gemm_set_native_bf16(true);
  }
};

template <class T>
void call_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
               int64_t ldb, T beta, T* C, int64_t ldc) {
  if constexpr (std::is_same_v<T, float>) {
    mg::cpu::sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  } else {
    mg::cpu::dgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
}

template <class T>
void call_gemm_batched(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                       int64_t sa, const T* B, int64_t ldb, int64_t sb, T beta, T* C, int64_t ldc, int64_t sc,
                       int64_t batch) {
  if constexpr (std::is_same_v<T, float>) {
    mg::cpu::sgemm_batched(ta, tb, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
  } else {
    mg::cpu::dgemm_batched(ta, tb, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
  }
}

// One GEMM problem: stored operands (with NaN in the stride padding, which must never be read),
// the initial C, and the reference result with its elementwise error bound.
template <class T>
struct Problem {
  bool ta = false, tb = false;
  int64_t M = 0, N = 0, K = 0, lda = 0, ldb = 0, ldc = 0;
  T alpha = 1, beta = 0;
  bool nan_c = false;
  std::vector<T> A, B, C0;
  std::vector<long double> ref, bound;

  Problem(bool ta_, bool tb_, int64_t M_, int64_t N_, int64_t K_, T alpha_, T beta_, int64_t pad, bool nan_c_,
          std::mt19937& rng)
      : ta(ta_), tb(tb_), M(M_), N(N_), K(K_), alpha(alpha_), beta(beta_), nan_c(nan_c_) {
    const T nan = std::numeric_limits<T>::quiet_NaN();
    std::uniform_real_distribution<double> dist(-1.0, 1.0);
    const int64_t a_rows = ta ? K : M, a_cols = ta ? M : K;
    const int64_t b_rows = tb ? N : K, b_cols = tb ? K : N;
    lda = a_cols + pad;
    ldb = b_cols + 2 * pad;
    ldc = N + 3 * pad;
    A.assign(std::max<int64_t>(1, a_rows * lda), nan);
    B.assign(std::max<int64_t>(1, b_rows * ldb), nan);
    C0.assign(std::max<int64_t>(1, M * ldc), T(kSentinel));
    for (int64_t r = 0; r < a_rows; ++r)
      for (int64_t c = 0; c < a_cols; ++c) A[r * lda + c] = T(dist(rng));
    for (int64_t r = 0; r < b_rows; ++r)
      for (int64_t c = 0; c < b_cols; ++c) B[r * ldb + c] = T(dist(rng));
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C0[i * ldc + j] = nan_c ? nan : T(dist(rng));
    compute_reference();
  }

  T a(int64_t i, int64_t k) const { return ta ? A[k * lda + i] : A[i * lda + k]; }
  T b(int64_t k, int64_t j) const { return tb ? B[j * ldb + k] : B[k * ldb + j]; }

  void compute_reference() {
    using R = RefT<T>;
    const long double g = gamma_n(2.0L * K + 3, unit_roundoff<T>()) + gamma_n(K + 2.0L, unit_roundoff<R>());
    ref.assign(M * N, 0);
    bound.assign(M * N, 0);
    std::vector<R> arow(K);
    for (int64_t i = 0; i < M; ++i) {
      for (int64_t k = 0; k < K; ++k) arow[k] = R(a(i, k));
      for (int64_t j = 0; j < N; ++j) {
        R s = 0, sabs = 0;
        for (int64_t k = 0; k < K; ++k) {
          const R p = arow[k] * R(b(k, j));
          s += p;
          sabs += std::fabs(p);
        }
        // BLAS semantics: alpha == 0 means A and B are not referenced (they may hold NaN).
        R r = alpha == T(0) ? R(0) : R(alpha) * s;
        R mag = alpha == T(0) ? R(0) : std::fabs(R(alpha)) * sabs;
        if (beta != T(0)) {
          r += R(beta) * R(C0[i * ldc + j]);
          mag += std::fabs(R(beta) * R(C0[i * ldc + j]));
        }
        ref[i * N + j] = r;
        bound[i * N + j] = g * mag;
      }
    }
  }

  // Runs the GEMM on a fresh copy of C0 and checks every element and the padding.
  void run_and_check(const std::string& what) const {
    std::vector<T> C = C0;
    call_gemm<T>(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
    check(C.data(), what);
  }

  void check(const T* C, const std::string& what) const {
    int64_t bad = 0, bad_pad = 0, first_i = -1, first_j = -1;
    for (int64_t i = 0; i < M; ++i) {
      for (int64_t j = 0; j < N; ++j) {
        const long double err = std::fabs(static_cast<long double>(C[i * ldc + j]) - ref[i * N + j]);
        const long double bd = bound[i * N + j];
        if (!(err <= bd)) {  // also catches NaN
          if (bad++ == 0) {
            first_i = i;
            first_j = j;
          }
        }
      }
      for (int64_t j = N; j < ldc; ++j) bad_pad += C[i * ldc + j] != T(kSentinel);
    }
    INFO(what, " ta=", ta, " tb=", tb, " M=", M, " N=", N, " K=", K, " lda=", lda, " ldb=", ldb, " ldc=", ldc,
         " alpha=", double(alpha), " beta=", double(beta), " nanC=", nan_c);
    if (bad) {
      INFO("first bad C[", first_i, ",", first_j, "] = ", double(C[first_i * ldc + first_j]), " ref ",
           double(ref[first_i * N + first_j]), " bound ", double(bound[first_i * N + first_j]));
      CHECK(bad == 0);
    }
    CHECK(bad_pad == 0);
  }
};

template <class T>
void sweep_sizes() {
  DispatchGuard guard;
  std::mt19937 rng(42);
  const int64_t sizes[] = {1, 7, 17, 33, 129, 255};
  const int64_t ksizes[] = {1, 7, 33, 255};
  const auto all_isas = isas();
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    for (int64_t M : sizes)
      for (int64_t N : sizes)
        for (int64_t K : ksizes) {
          const Problem<T> p(ta, tb, M, N, K, T(1), T(0), 0, false, rng);
          for (const auto& isa : all_isas) {
            REQUIRE(gemm_force_isa(isa.c_str()));
            p.run_and_check(isa);
          }
        }
  }
}

template <class T>
void strides_alpha_beta() {
  DispatchGuard guard;
  std::mt19937 rng(7);
  struct S {
    int64_t M, N, K;
  };
  const S shapes[] = {{1, 1, 1}, {7, 17, 33}, {33, 7, 129}, {129, 255, 17}, {255, 33, 300}, {3, 200, 50},
                      {200, 3, 50}, {64, 130, 513}};
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    for (const S& s : shapes) {
      const Problem<T> p1(ta, tb, s.M, s.N, s.K, T(0.75), T(-1.5), 5, false, rng);    // general alpha/beta
      const Problem<T> p2(ta, tb, s.M, s.N, s.K, T(-2.0), T(1.0), 3, false, rng);     // accumulate
      const Problem<T> p3(ta, tb, s.M, s.N, s.K, T(1.25), T(0.0), 4, true, rng);      // beta=0, NaN in C
      for (const auto& isa : isas()) {
        REQUIRE(gemm_force_isa(isa.c_str()));
        p1.run_and_check(isa + " alpha/beta");
        p2.run_and_check(isa + " beta=1");
        p3.run_and_check(isa + " beta=0 NaN C");
      }
    }
  }
}

}  // namespace

TEST_CASE("gemm: kernel dispatch") {
  const std::string name = mg::cpu::gemm_kernel_name();
  MESSAGE("gemm kernel: ", name);
  CHECK(!name.empty());
  CHECK(gemm_isa_supported("scalar"));
  CHECK(!gemm_force_isa("no-such-isa"));
  CHECK(gemm_force_isa("auto"));
  CHECK(std::string(mg::cpu::gemm_kernel_name()) == name);
}

TEST_CASE("sgemm: all transposes x sizes 1..255, every ISA") { sweep_sizes<float>(); }
TEST_CASE("dgemm: all transposes x sizes 1..255, every ISA") { sweep_sizes<double>(); }
TEST_CASE("sgemm: padded strides, alpha/beta, beta=0 ignores NaN") { strides_alpha_beta<float>(); }
TEST_CASE("dgemm: padded strides, alpha/beta, beta=0 ignores NaN") { strides_alpha_beta<double>(); }

TEST_CASE("gemm: multi-block paths with tiny forced blocking") {
  DispatchGuard guard;
  std::mt19937 rng(11);
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    const Problem<float> pf(ta, tb, 101, 93, 77, 0.5f, 2.0f, 2, false, rng);
    const Problem<float> pz(ta, tb, 101, 93, 77, 1.0f, 0.0f, 1, true, rng);
    const Problem<double> pd(ta, tb, 101, 93, 77, 0.5, -1.0, 2, false, rng);
    for (const auto& isa : isas()) {
      REQUIRE(gemm_force_isa(isa.c_str()));
      // kc=16 -> 5 K blocks (beta applied once); mc=20 -> several double-buffered A blocks;
      // nc=40 -> several B blocks per thread.
      gemm_force_blocking(16, 20, 40);
      pf.run_and_check(isa + " small blocks");
      pz.run_and_check(isa + " small blocks beta=0");
      pd.run_and_check(isa + " small blocks");
      gemm_force_blocking(16, 20, 40, true);  // op(B) packed per task instead of shared
      pf.run_and_check(isa + " small blocks, private B");
      pz.run_and_check(isa + " small blocks, private B, beta=0");
      pd.run_and_check(isa + " small blocks, private B");
      gemm_force_blocking(1, 1, 1);
      pf.run_and_check(isa + " unit blocks");
      gemm_force_blocking(0, 0, 0, true);
      pf.run_and_check(isa + " default blocks, private B");
      gemm_force_blocking(0, 0, 0);
    }
  }
}

TEST_CASE("gemm: larger than one cache block, 1/2/3 threads") {
  DispatchGuard guard;
  std::mt19937 rng(5);
  const Problem<float> pf(false, false, 300, 1000, 600, 1.0f, 0.0f, 0, false, rng);
  const Problem<float> pt(true, true, 257, 611, 520, -1.0f, 0.5f, 1, false, rng);
  const Problem<double> pd(false, true, 200, 450, 530, 1.0, 1.0, 0, false, rng);
  const int saved = omp_get_max_threads();
  for (int th : {1, 2, 3}) {
    omp_set_num_threads(th);
    const std::string w = std::to_string(th) + " threads";
    pf.run_and_check(w);
    pt.run_and_check(w);
    pd.run_and_check(w);
    gemm_force_blocking(0, 0, 0, true);
    pf.run_and_check(w + ", private B");
    pt.run_and_check(w + ", private B");
    gemm_force_blocking(0, 0, 0);
  }
  omp_set_num_threads(saved);
}

TEST_CASE("gemm: results are bitwise identical for any thread count") {
  // Every element is summed in the same order (K blocks in order, k ascending inside a block)
  // whichever thread computes its tile, so threading never changes the result.
  DispatchGuard guard;
  std::mt19937 rng(8);
  for (int t = 0; t < 4; ++t) {
    const Problem<float> p(t & 1, t & 2, 333, 517, 801, 0.5f, 0.25f, 1, false, rng);
    std::vector<std::vector<float>> out;
    const int saved = omp_get_max_threads();
    for (int th : {1, 2, 3}) {
      omp_set_num_threads(th);
      out.push_back(p.C0);
      mg::cpu::sgemm(p.ta, p.tb, p.M, p.N, p.K, p.alpha, p.A.data(), p.lda, p.B.data(), p.ldb, p.beta,
                     out.back().data(), p.ldc);
    }
    omp_set_num_threads(saved);
    p.check(out[0].data(), "1 thread");
    CHECK(out[1] == out[0]);
    CHECK(out[2] == out[0]);
  }
}

TEST_CASE("gemm: alpha == 0, K == 0 and empty M/N never read A/B") {
  std::mt19937 rng(3);
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    // alpha == 0: C = beta*C; A/B are all NaN.
    Problem<float> p(ta, tb, 9, 11, 13, 0.0f, 0.5f, 1, false, rng);
    std::fill(p.A.begin(), p.A.end(), std::numeric_limits<float>::quiet_NaN());
    std::fill(p.B.begin(), p.B.end(), std::numeric_limits<float>::quiet_NaN());
    p.compute_reference();
    p.run_and_check("alpha=0");
    // K == 0, beta == 0 over a NaN C: exact zeros.
    const Problem<double> pk(ta, tb, 9, 11, 0, 1.0, 0.0, 1, true, rng);
    pk.run_and_check("K=0");
    const Problem<double> pk2(ta, tb, 5, 3, 0, 1.0, -2.0, 2, false, rng);
    pk2.run_and_check("K=0 beta=-2");
  }
  float c = 3.0f;
  mg::cpu::sgemm(false, false, 0, 1, 5, 1.0f, nullptr, 5, nullptr, 1, 0.0f, &c, 1);
  mg::cpu::sgemm(false, false, 1, 0, 5, 1.0f, nullptr, 5, nullptr, 1, 0.0f, &c, 1);
  CHECK(c == 3.0f);
}

TEST_CASE("gemm: called from inside a parallel region runs single-threaded and correct") {
  std::mt19937 rng(9);
  std::vector<Problem<float>> ps;
  for (int i = 0; i < 4; ++i) ps.emplace_back(i & 1, i & 2, 150 + i, 140 + 3 * i, 130, 1.0f, 0.0f, 1, false, rng);
  std::vector<std::vector<float>> out(ps.size());
  for (size_t i = 0; i < ps.size(); ++i) out[i] = ps[i].C0;
#pragma omp parallel for num_threads(2) schedule(static, 1)
  for (int i = 0; i < int(ps.size()); ++i) {
    const auto& p = ps[i];
    mg::cpu::sgemm(p.ta, p.tb, p.M, p.N, p.K, p.alpha, p.A.data(), p.lda, p.B.data(), p.ldb, p.beta,
                   out[i].data(), p.ldc);
  }
  for (size_t i = 0; i < ps.size(); ++i) ps[i].check(out[i].data(), "inside omp parallel");
}

namespace {

// Batched: check each matrix against its own Problem (which owns the reference), with operands
// gathered into strided buffers; stride 0 makes every batch entry use matrix 0 of that operand.
template <class T>
void batched_case(bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t batch, bool bcast_a, bool bcast_b,
                  T alpha, T beta, std::mt19937& rng) {
  std::vector<Problem<T>> ps;
  for (int64_t b = 0; b < batch; ++b) ps.emplace_back(ta, tb, M, N, K, alpha, beta, 1, false, rng);
  // Broadcast operands: copy matrix 0 into every problem so its reference uses it.
  for (int64_t b = 1; b < batch; ++b) {
    if (bcast_a) ps[b].A = ps[0].A;
    if (bcast_b) ps[b].B = ps[0].B;
    if (bcast_a || bcast_b) ps[b].compute_reference();
  }
  const int64_t sa = bcast_a ? 0 : int64_t(ps[0].A.size()), sb = bcast_b ? 0 : int64_t(ps[0].B.size());
  const int64_t sc = int64_t(ps[0].C0.size()) + 7;  // gap between C matrices: must stay untouched
  std::vector<T> A(bcast_a ? ps[0].A.size() : sa * batch), B(bcast_b ? ps[0].B.size() : sb * batch);
  std::vector<T> C(sc * batch, T(kSentinel));
  for (int64_t b = 0; b < batch; ++b) {
    if (!bcast_a || b == 0) std::copy(ps[b].A.begin(), ps[b].A.end(), A.begin() + b * sa);
    if (!bcast_b || b == 0) std::copy(ps[b].B.begin(), ps[b].B.end(), B.begin() + b * sb);
    std::copy(ps[b].C0.begin(), ps[b].C0.end(), C.begin() + b * sc);
  }
  const auto& p = ps[0];
  call_gemm_batched<T>(ta, tb, M, N, K, alpha, A.data(), p.lda, sa, B.data(), p.ldb, sb, beta, C.data(), p.ldc, sc,
                       batch);
  for (int64_t b = 0; b < batch; ++b) {
    ps[b].check(C.data() + b * sc, "batched entry " + std::to_string(b));
    for (int64_t g = int64_t(p.C0.size()); g < sc; ++g) CHECK(C[b * sc + g] == T(kSentinel));
  }
}

}  // namespace

TEST_CASE("gemm_batched: strides, stride-0 broadcast, small and large matrices") {
  DispatchGuard guard;
  std::mt19937 rng(21);
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    batched_case<float>(ta, tb, 17, 33, 7, 8, false, false, 1.0f, 0.0f, rng);     // small: over the batch
    batched_case<float>(ta, tb, 33, 17, 129, 5, true, false, 0.5f, 1.0f, rng);    // shared A (weight)
    batched_case<float>(ta, tb, 20, 31, 40, 3, false, true, -1.0f, 0.25f, rng);   // shared B
    batched_case<double>(ta, tb, 19, 23, 29, 4, true, false, 1.0, 0.0, rng);
    batched_case<double>(ta, tb, 7, 9, 11, 1, false, false, 2.0, -1.0, rng);
  }
  // Large entries with an odd batch: threaded GEMM per entry.
  batched_case<float>(false, false, 200, 300, 256, 3, true, false, 1.0f, 0.0f, rng);
  batched_case<float>(true, false, 256, 192, 128, 4, true, false, 1.0f, 0.0f, rng);
}

// ---- bf16 operands, f32 C (cpu::bf16gemm_batched; AVX512_BF16 only) ----
// The problems are f32 problems whose A and B values are bf16 numbers, so the reference and the
// bound above apply unchanged: each bf16 product is exact in f32 and is then added with one
// rounding, as in sgemm.

namespace {

Problem<float> bf16_problem(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, float beta, int64_t pad,
                            bool nan_c, std::mt19937& rng) {
  Problem<float> p(ta, tb, M, N, K, alpha, beta, pad, nan_c, rng);
  for (float& v : p.A)
    if (!std::isnan(v)) v = mg::bf16::to_float(mg::bf16::from_float(v));
  for (float& v : p.B)
    if (!std::isnan(v)) v = mg::bf16::to_float(mg::bf16::from_float(v));
  p.compute_reference();
  return p;
}

std::vector<uint16_t> bits_of(const std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = mg::bf16::from_float(v[i]);  // exact, NaN stays NaN
  return out;
}

std::vector<float> run_bf16(const Problem<float>& p) {
  const std::vector<uint16_t> a = bits_of(p.A), b = bits_of(p.B);
  std::vector<float> C = p.C0;
  mg::cpu::bf16gemm_batched(p.ta, p.tb, p.M, p.N, p.K, p.alpha, a.data(), p.lda, 0, b.data(), p.ldb, 0, p.beta,
                            C.data(), p.ldc, 0, 1);
  return C;
}

void run_bf16_and_check(const Problem<float>& p, const std::string& what) { p.check(run_bf16(p).data(), what); }

bool skip_without_bf16() {
  if (mg::cpu::bf16gemm_native()) return false;
  MESSAGE("skipped: this CPU has no AVX512_BF16 (bf16 GEMMs widen to f32 and run sgemm)");
  return true;
}

}  // namespace

TEST_CASE("bf16gemm: all transposes x sizes, odd K, alpha/beta, odd and padded strides") {
  if (skip_without_bf16()) return;
  DispatchGuard guard;
  std::mt19937 rng(17);
  const int64_t sizes[] = {1, 7, 33, 129};
  const int64_t ksizes[] = {1, 2, 7, 33, 255};
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    for (int64_t M : sizes)
      for (int64_t N : sizes)
        for (int64_t K : ksizes) {
          // pad 0: even or odd row strides with K; pad 1: odd lda (unaligned K pairs: portable packer).
          run_bf16_and_check(bf16_problem(ta, tb, M, N, K, 1.0f, 0.0f, (M + N + K) % 2, false, rng), "sizes");
        }
    run_bf16_and_check(bf16_problem(ta, tb, 64, 130, 513, 0.75f, -1.5f, 5, false, rng), "alpha/beta");
    run_bf16_and_check(bf16_problem(ta, tb, 33, 7, 129, -2.0f, 1.0f, 2, false, rng), "beta=1");
    run_bf16_and_check(bf16_problem(ta, tb, 200, 3, 50, 1.25f, 0.0f, 4, true, rng), "beta=0 NaN C");
  }
}

TEST_CASE("bf16gemm: forced blocking (odd K blocks round to whole pairs), private B, 1/2/3 threads bitwise") {
  if (skip_without_bf16()) return;
  DispatchGuard guard;
  std::mt19937 rng(19);
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    const Problem<float> p = bf16_problem(ta, tb, 101, 93, 77, 0.5f, 2.0f, 1, false, rng);
    gemm_force_blocking(15, 20, 40);  // K blocks of 16 (15 rounded up to whole pairs)
    run_bf16_and_check(p, "small blocks");
    gemm_force_blocking(15, 20, 40, true);
    run_bf16_and_check(p, "small blocks, private B");
    gemm_force_blocking(1, 1, 1);
    run_bf16_and_check(p, "unit blocks");
    gemm_force_blocking(0, 0, 0);

    const Problem<float> big = bf16_problem(ta, tb, 333, 517, 1201, 0.5f, 0.25f, 0, false, rng);
    std::vector<std::vector<float>> out;
    const int saved = omp_get_max_threads();
    for (int th : {1, 2, 3}) {
      omp_set_num_threads(th);
      out.push_back(run_bf16(big));
    }
    omp_set_num_threads(saved);
    big.check(out[0].data(), "1 thread");
    CHECK(out[1] == out[0]);
    CHECK(out[2] == out[0]);
  }
}

TEST_CASE("bf16gemm_batched: stride-0 broadcast operands") {
  if (skip_without_bf16()) return;
  DispatchGuard guard;
  std::mt19937 rng(23);
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    const int64_t batch = 3;
    std::vector<Problem<float>> ps;
    for (int64_t b = 0; b < batch; ++b) ps.push_back(bf16_problem(ta, tb, 20, 37, 64, 1.0f, 0.0f, 0, false, rng));
    for (int64_t b = 1; b < batch; ++b) {  // B shared (a weight)
      ps[b].B = ps[0].B;
      ps[b].compute_reference();
    }
    const int64_t sa = int64_t(ps[0].A.size()), sc = int64_t(ps[0].C0.size());
    std::vector<uint16_t> A;
    std::vector<float> C;
    for (const auto& p : ps) {
      const std::vector<uint16_t> a = bits_of(p.A);
      A.insert(A.end(), a.begin(), a.end());
      C.insert(C.end(), p.C0.begin(), p.C0.end());
    }
    const std::vector<uint16_t> B = bits_of(ps[0].B);
    const auto& p = ps[0];
    mg::cpu::bf16gemm_batched(ta, tb, p.M, p.N, p.K, 1.0f, A.data(), p.lda, sa, B.data(), p.ldb, 0, 0.0f, C.data(),
                              p.ldc, sc, batch);
    for (int64_t b = 0; b < batch; ++b) ps[b].check(C.data() + b * sc, "batched entry " + std::to_string(b));
  }
}

TEST_CASE("bf16gemm: without the native kernel the call is refused, not silently wrong") {
  DispatchGuard guard;
  mg::cpu::detail::gemm_set_native_bf16(false);
  CHECK_FALSE(mg::cpu::bf16gemm_native());
  uint16_t a = 0x3f80, b = 0x3f80;
  float c = 0;
  CHECK_THROWS(mg::cpu::bf16gemm_batched(false, false, 1, 1, 1, 1.0f, &a, 1, 0, &b, 1, 0, 0.0f, &c, 1, 0, 1));
  mg::cpu::detail::gemm_set_native_bf16(true);
}

TEST_CASE("gemm epilogue: bias and bf16 output on each finished tile equal a pass after the GEMM, bitwise") {
  DispatchGuard guard;
  std::mt19937 rng(23);
  std::normal_distribution<float> nd;
  auto randv = [&](size_t n) {
    std::vector<float> v(n);
    for (float& x : v) x = nd(rng);
    return v;
  };
  auto to_bits = [](const std::vector<float>& v) {
    std::vector<uint16_t> b(v.size());
    for (size_t i = 0; i < v.size(); ++i) b[i] = mg::bf16(v[i]).bits;
    return b;
  };
  const bool bf16 = mg::cpu::bf16gemm_native();
  for (int kind = 0; kind < (bf16 ? 2 : 1); ++kind) {  // 0: sgemm, 1: bf16 GEMM
    for (const int64_t K : {int64_t(0), int64_t(1), int64_t(77), int64_t(300)}) {
      const int64_t M = 67, N = 131, batch = 3;
      const std::vector<float> A = randv(size_t(batch * M * K)), B = randv(size_t(batch * K * N)), bias = randv(size_t(N));
      const std::vector<uint16_t> Ab = to_bits(A), Bb = to_bits(B);
      // without_c: C null, D only (the result goes from micro-tile buffers straight to D when the
      // GEMM is one K block, through a private C otherwise).
      auto run = [&](const mg::cpu::GemmEpilogue& ep, std::vector<float>& C, bool without_c = false) {
        C.assign(size_t(batch * M * N), 0.0f);
        float* c = without_c ? nullptr : C.data();
        if (kind == 0)
          mg::cpu::sgemm_batched(false, true, M, N, K, 1.0f, A.data(), K, M * K, B.data(), K, K * N, 0.0f, c, N,
                                 M * N, batch, ep);
        else
          mg::cpu::bf16gemm_batched(false, true, M, N, K, 1.0f, Ab.data(), K, M * K, Bb.data(), K, K * N, 0.0f, c, N,
                                    M * N, batch, ep);
      };
      for (int blocking = 0; blocking < 3; ++blocking) {
        if (blocking == 1) gemm_force_blocking(16, 20, 40);
        if (blocking == 2) gemm_force_blocking(16, 20, 40, true);
        for (int th : {1, 2}) {
          CAPTURE(kind);
          CAPTURE(K);
          CAPTURE(blocking);
          CAPTURE(th);
          const int saved = omp_get_max_threads();
          omp_set_num_threads(th);
          std::vector<float> plain, with_bias;
          run({}, plain);
          std::vector<uint16_t> D(size_t(batch * M * N), 0xffff);
          run({.bias = bias.data(), .D = kind == 1 ? D.data() : nullptr, .ldd = N, .stride_d = M * N}, with_bias);
          std::vector<uint16_t> Dn(size_t(batch * M * N), 0xffff), Dnb(size_t(batch * M * N), 0xffff);
          std::vector<float> unused;
          run({.D = Dn.data(), .ldd = N, .stride_d = M * N}, unused, true);
          run({.bias = bias.data(), .D = Dnb.data(), .ldd = N, .stride_d = M * N}, unused, true);
          omp_set_num_threads(saved);
          int64_t bad_c = 0, bad_d = 0, bad_direct = 0;
          for (int64_t i = 0; i < batch * M * N; ++i) {
            const float want = plain[size_t(i)] + bias[size_t(i % N)];
            bad_c += with_bias[size_t(i)] != want;
            if (kind == 1) bad_d += D[size_t(i)] != mg::bf16(want).bits;
            bad_direct += Dn[size_t(i)] != mg::bf16(plain[size_t(i)]).bits;
            bad_direct += Dnb[size_t(i)] != mg::bf16(want).bits;
          }
          CHECK(bad_c == 0);
          CHECK(bad_d == 0);
          CHECK(bad_direct == 0);
        }
        gemm_force_blocking(0, 0, 0);
      }
    }
  }
}

namespace {

// The GEMM kinds the tests below run: 0 f32 (sgemm), 1 f64 (dgemm), 2 bf16 (native kernel).
int gemm_kinds() { return mg::cpu::bf16gemm_native() ? 3 : 2; }

// A batched GEMM of `kind` on operands given as f64 values that every kind stores exactly
// (bf16-representable), op(A) [M, K] and op(B) [K, N] per entry with packed row strides, C [M, N]
// per entry (stride_c M*N, or 0 to share one). Returns C as f64; for bf16, D (when given) gets
// the rounded result through the epilogue, and without_c passes no C (D only, beta 0).
std::vector<double> run_kind(int kind, bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha,
                             const std::vector<double>& A, const std::vector<double>& B, double beta,
                             std::vector<double> C, int64_t stride_c, int64_t batch, mg::GemmTri tri,
                             std::vector<uint16_t>* D = nullptr, bool without_c = false) {
  const int64_t lda = ta ? M : K, ldb = tb ? K : N;
  if (kind == 1) {
    mg::cpu::dgemm_batched(ta, tb, M, N, K, alpha, A.data(), lda, M * K, B.data(), ldb, K * N, beta, C.data(), N,
                           stride_c, batch, tri);
    return C;
  }
  std::vector<float> Cf(C.begin(), C.end());
  if (kind == 0) {
    const std::vector<float> Af(A.begin(), A.end()), Bf(B.begin(), B.end());
    mg::cpu::sgemm_batched(ta, tb, M, N, K, float(alpha), Af.data(), lda, M * K, Bf.data(), ldb, K * N, float(beta),
                           Cf.data(), N, stride_c, batch, {}, tri);
  } else {
    std::vector<uint16_t> Ab(A.size()), Bb(B.size());
    for (size_t i = 0; i < A.size(); ++i) Ab[i] = mg::bf16::from_float(float(A[i]));
    for (size_t i = 0; i < B.size(); ++i) Bb[i] = mg::bf16::from_float(float(B[i]));
    mg::cpu::GemmEpilogue ep;
    if (D) ep = {.D = D->data(), .ldd = N, .stride_d = M * N};
    mg::cpu::bf16gemm_batched(ta, tb, M, N, K, float(alpha), Ab.data(), lda, M * K, Bb.data(), ldb, K * N,
                              float(beta), without_c ? nullptr : Cf.data(), N, stride_c, batch, ep, tri);
  }
  return std::vector<double>(Cf.begin(), Cf.end());
}

// n values uniform in [-1, 1], rounded to bf16 (exact in every kind).
std::vector<double> bf16_exact_values(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  std::vector<double> v(n);
  for (double& x : v) x = mg::bf16::to_float(mg::bf16::from_float(float(dist(rng))));
  return v;
}

// Elements of C (batch entries of M x N) that differ bitwise, over j <= i only when lower.
int64_t bitwise_mismatches(const std::vector<double>& a, const std::vector<double>& b, int64_t batch, int64_t M,
                           int64_t N, bool lower) {
  int64_t bad = 0;
  for (int64_t e = 0; e < batch; ++e)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j <= (lower ? std::min(i, N - 1) : N - 1); ++j) {
        const size_t at = size_t(e * M * N + i * N + j);
        bad += std::memcmp(&a[at], &b[at], sizeof(double)) != 0;
      }
  return bad;
}

// Runs body(blocking) under default blocking, small forced blocks (several K blocks and row
// bands) and tiny ones with op(B) packed per task; restores the default after each.
template <class F>
void for_each_blocking(const F& body) {
  for (int blocking = 0; blocking < 3; ++blocking) {
    if (blocking == 1) gemm_force_blocking(16, 20, 40);
    if (blocking == 2) gemm_force_blocking(6, 12, 32, true);
    body(blocking);
    gemm_force_blocking(0, 0, 0);
  }
}

// body() with omp_get_max_threads() == th, restored after.
template <class F>
void with_threads(int th, const F& body) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(th);
  body();
  omp_set_num_threads(saved);
}

}  // namespace

TEST_CASE("gemm tri hint: a_lower, a_upper and c_lower give the dense GEMM's bits where they promise") {
  // With op(A) zero outside its triangle the skipped products are zeros, so every wanted element
  // must equal the dense GEMM's bitwise (finite operands), for every kernel, blocking (row bands
  // and K blocks that cut the diagonal anywhere), thread count, transpose, batch and epilogue.
  DispatchGuard guard;
  std::mt19937 rng(31);
  using mg::GemmTri;
  // The small shapes run one thread per batch entry; the last (one entry of 31 MFLOP) runs the
  // threaded driver on 2 threads, on the best kernel only (it is slow on the portable one).
  struct Shape {
    int64_t M, N, K, batch;
  };
  const std::vector<Shape> shapes = {{67, 131, 77, 3}, {150, 40, 90, 3}, {33, 70, 300, 3}, {1, 5, 1, 3}, {300, 200, 260, 1}};
  for (int kind = 0; kind < gemm_kinds(); ++kind) {
    for (const auto& isa : kind == 2 ? std::vector<std::string>{"auto"} : isas()) {
      REQUIRE(gemm_force_isa(isa.c_str()));
      for (const Shape s : shapes) {
        if (s.batch == 1 && isa != (kind == 2 ? "auto" : isas().back())) continue;
        for (int t = 0; t < 4; ++t) {
          const bool ta = t & 1, tb = t & 2;
          const int64_t M = s.M, N = s.N, K = s.K, batch = s.batch;
          const std::vector<double> A = bf16_exact_values(size_t(batch * M * K), rng);
          const std::vector<double> B = bf16_exact_values(size_t(batch * K * N), rng);
          const std::vector<double> C0 = bf16_exact_values(size_t(batch * M * N), rng);
          for (const GemmTri tri : {GemmTri::a_lower, GemmTri::a_upper, GemmTri::c_lower}) {
            // op(A)[i, k] of batch entry e is A[e*M*K + (ta ? k*M + i : i*K + k)].
            std::vector<double> At = A;
            for (int64_t e = 0; e < batch; ++e)
              for (int64_t i = 0; i < M; ++i)
                for (int64_t k = 0; k < K; ++k) {
                  const bool zero = (tri == GemmTri::a_lower && k > i) || (tri == GemmTri::a_upper && k < i);
                  if (zero) At[size_t(e * M * K + (ta ? k * M + i : i * K + k))] = 0.0;
                }
            for_each_blocking([&](int blocking) {
              for (int th : {1, 2}) {
                for (const double beta : {0.0, 0.5}) {
                  const int tri_id = int(tri);
                  CAPTURE(kind);
                  CAPTURE(isa);
                  CAPTURE(M);
                  CAPTURE(N);
                  CAPTURE(K);
                  CAPTURE(ta);
                  CAPTURE(tb);
                  CAPTURE(tri_id);
                  CAPTURE(blocking);
                  CAPTURE(th);
                  CAPTURE(beta);
                  std::vector<uint16_t> Dd(C0.size(), 0xffff), Dt(C0.size(), 0xffff);
                  std::vector<double> dense, got;
                  with_threads(th, [&] {
                    dense = run_kind(kind, ta, tb, M, N, K, -1.5, At, B, beta, C0, M * N, batch, GemmTri::none, &Dd);
                    got = run_kind(kind, ta, tb, M, N, K, -1.5, At, B, beta, C0, M * N, batch, tri, &Dt);
                  });
                  const bool lower = tri == GemmTri::c_lower;
                  CHECK(bitwise_mismatches(dense, got, batch, M, N, lower) == 0);
                  const std::vector<double> dd(Dd.begin(), Dd.end()), dt(Dt.begin(), Dt.end());
                  CHECK(bitwise_mismatches(dd, dt, batch, M, N, lower) == 0);
                  if (kind == 2 && beta == 0.0) {  // D only: tiles straight from the kernel to D
                    std::vector<uint16_t> Dc(C0.size(), 0xffff);
                    with_threads(th, [&] {
                      run_kind(kind, ta, tb, M, N, K, -1.5, At, B, 0.0, C0, M * N, batch, tri, &Dc, true);
                    });
                    const std::vector<double> dc(Dc.begin(), Dc.end());
                    CHECK(bitwise_mismatches(dd, dc, batch, M, N, lower) == 0);
                  }
                }
              }
            });
          }
        }
      }
    }
  }
}

TEST_CASE("gemm_batched: entries sharing one C (stride_c 0) equal the entries run one by one, bitwise") {
  // With beta 1 they run as one GEMM over the entries' K blocks in batch order; each element must
  // see the same operations as batch successive calls. Another beta scales C before every entry.
  DispatchGuard guard;
  std::mt19937 rng(37);
  for (int kind = 0; kind < gemm_kinds(); ++kind) {
    for (const mg::GemmTri tri : {mg::GemmTri::none, mg::GemmTri::c_lower}) {
      for (int t = 0; t < 4; ++t) {
        const bool ta = t & 1, tb = t & 2;
        // 24 MFLOP in all: the folded GEMM runs threaded (2 and 3 threads).
        const int64_t M = 200, N = 150, K = 100, batch = 4;
        const std::vector<double> A = bf16_exact_values(size_t(batch * M * K), rng);
        const std::vector<double> B = bf16_exact_values(size_t(batch * K * N), rng);
        const std::vector<double> C0 = bf16_exact_values(size_t(M * N), rng);
        for_each_blocking([&](int blocking) {
          for (int th : {1, 2, 3}) {
            const double beta = blocking == 0 && th == 2 ? -0.5 : 1.0;
            CAPTURE(kind);
            CAPTURE(ta);
            CAPTURE(tb);
            CAPTURE(blocking);
            CAPTURE(th);
            CAPTURE(beta);
            std::vector<double> folded, seq = C0;
            with_threads(th, [&] {
              folded = run_kind(kind, ta, tb, M, N, K, 0.75, A, B, beta, C0, 0, batch, tri);
              for (int64_t e = 0; e < batch; ++e) {
                const std::vector<double> Ae(A.begin() + e * M * K, A.begin() + (e + 1) * M * K);
                const std::vector<double> Be(B.begin() + e * K * N, B.begin() + (e + 1) * K * N);
                seq = run_kind(kind, ta, tb, M, N, K, 0.75, Ae, Be, beta, seq, 0, 1, tri);
              }
            });
            CHECK(bitwise_mismatches(folded, seq, 1, M, N, tri == mg::GemmTri::c_lower) == 0);
          }
        });
      }
    }
  }
}

TEST_CASE("gemm tri hint: the CPU GEMM really skips the products and tiles outside the triangle") {
  // A NaN row of op(B) poisons, in the dense GEMM, every row of C whose op(A) row meets it (0 * NaN);
  // with the hint, rows whose tiles never reach that K stay finite. With c_lower, tiles far above
  // the diagonal keep C's old contents. Margins (18 rows, 48 columns) cover any MR <= 16 and
  // NR <= 32 with K pairs.
  DispatchGuard guard;
  std::mt19937 rng(41);
  using mg::GemmTri;
  const int64_t M = 120, N = 100, K = 120, kn = 60;
  for (int kind = 0; kind < gemm_kinds(); ++kind) {
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      std::vector<double> A = bf16_exact_values(size_t(M * K), rng), B = bf16_exact_values(size_t(K * N), rng);
      for (int64_t j = 0; j < N; ++j) B[size_t(tb ? j * K + kn : kn * N + j)] = std::nan("");
      for (const GemmTri tri : {GemmTri::a_lower, GemmTri::a_upper}) {
        std::vector<double> At = A;
        for (int64_t i = 0; i < M; ++i)
          for (int64_t k = 0; k < K; ++k)
            if ((tri == GemmTri::a_lower && k > i) || (tri == GemmTri::a_upper && k < i))
              At[size_t(ta ? k * M + i : i * K + k)] = 0.0;
        for (int th : {1, 2}) {
          const int tri_id = int(tri);
          CAPTURE(kind);
          CAPTURE(ta);
          CAPTURE(tb);
          CAPTURE(tri_id);
          CAPTURE(th);
          std::vector<double> dense, got;
          with_threads(th, [&] {
            dense = run_kind(kind, ta, tb, M, N, K, 1.0, At, B, 0.0, std::vector<double>(size_t(M * N)), 0, 1,
                             GemmTri::none);
            got = run_kind(kind, ta, tb, M, N, K, 1.0, At, B, 0.0, std::vector<double>(size_t(M * N)), 0, 1, tri);
          });
          int64_t poisoned = 0, spared = 0, rows = 0;
          for (int64_t i = 0; i < M; ++i) {
            const bool far = tri == GemmTri::a_lower ? i + 18 <= kn : i >= kn + 18;
            if (!far) continue;
            ++rows;
            for (int64_t j = 0; j < N; ++j) {
              poisoned += std::isnan(dense[size_t(i * N + j)]);
              spared += std::isfinite(got[size_t(i * N + j)]);
            }
          }
          CHECK(poisoned == rows * N);  // the dense GEMM does multiply the zeros
          CHECK(spared == rows * N);
        }
      }
      const std::vector<double> sentinel(size_t(M * N), 12345.0);
      std::vector<double> got;
      with_threads(2, [&] { got = run_kind(kind, ta, tb, M, N, K, 1.0, A, B, 0.0, sentinel, 0, 1, GemmTri::c_lower); });
      int64_t kept = 0, far = 0;
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = i + 48; j < N; ++j) {
          ++far;
          kept += got[size_t(i * N + j)] == 12345.0;
        }
      CHECK(far > 0);
      CHECK(kept == far);
    }
  }
}
