// Masked token mixing as GEMMs over the lower triangle only. The weight is masked once per call
// into a temporary (tril, one pass over R*C, so the stored weight is never written), and the GEMMs
// visit only rectangles of it that touch the lower triangle (see row_cover), so the zero half costs
// almost no multiply-adds. Everything goes through Backend::gemm on raw pointers (stride-0
// broadcast of the weight over the batch), so the op runs on any backend.
// bf16 inputs (autocast) accumulate in f32, rounded to bf16 once: the last GEMM to write a row of
// the result rounds it in its epilogue (see finish_rows).
#include "ops/masked_mix.h"

#include <algorithm>
#include <vector>

#include "ops/autocast_policy.h"
#include "ops/common.h"
#include "ops/reduce.h"

namespace mg {
using namespace detail;

namespace {

// The lower triangle {c <= r} is covered by GEMM rectangles: bands of kBand output rows each take
// one rectangle left of their diagonal square (every column there is visible), and the square
// itself in strips of kStrip rows, each reaching only to its own last row. The only wasted
// multiply-adds are the strips' upper corners (~kStrip / (2 R) of the dense cost). Thinner strips
// waste less but pay more for packing in the GEMM. kBand 256 rather than 128 (fewer, larger
// GEMMs) measured at T = 512, D = 512, batch 8, two threads: forward + backward 0.96x the time in
// f32, 0.94x in bf16; kStrip 32 or kBand 64 and 512 were slower.
constexpr int64_t kBand = 256;
constexpr int64_t kStrip = 64;

// A batch of row-major matrices in raw memory: element (b, i, j) at p + b*bs + i*ld + j (elements).
struct Mats {
  void* p;
  int64_t bs, ld;
};

// Rows [r0, r1) x columns [c0, c1) of the weight; strip: part of a band's diagonal square.
struct Rect {
  int64_t r0, r1, c0, c1;
  bool strip;
};

// The row-band cover of the lower triangle of an R x C weight, in order: for each band, a rectangle
// starting at column 0 comes first (it is the first to touch its rows).
std::vector<Rect> row_cover(int64_t R, int64_t C) {
  std::vector<Rect> out;
  for (int64_t r0 = 0; r0 < R; r0 += kBand) {
    const int64_t r1 = std::min(r0 + kBand, R), left = std::min(r0, C);
    if (left > 0) out.push_back({r0, r1, 0, left, false});
    for (int64_t s0 = r0; s0 < r1; s0 += kStrip) {
      const int64_t s1 = std::min(s0 + kStrip, r1), end = std::min(s1, C);
      if (end > left) out.push_back({s0, s1, left, end, true});
    }
  }
  return out;
}

// The dtype GEMM results accumulate in: f32 for bf16 operands.
DType acc_dtype(DType dt) { return dt == DType::bf16 ? DType::f32 : dt; }
TensorOptions acc_opts(const Tensor& t) { return TensorOptions{acc_dtype(t.dtype()), t.device(), false}; }

// A result whose dtype is not the accumulator's (bf16) is written rounded by the GEMM epilogue.
bool rounded(const Tensor& t) { return acc_dtype(t.dtype()) != t.dtype(); }
Mats rounded_out(const Tensor& t, int64_t bs, int64_t ld) {
  return rounded(t) ? Mats{t.raw_data(), bs, ld} : Mats{nullptr, 0, 0};
}

// sum over dims; a bf16 tensor is summed in f32 and the result rounded to bf16.
Tensor sum_any(const Tensor& t, const std::vector<int64_t>& dims) {
  OpScope op_scope;
  if (t.dtype() != DType::bf16) return sum(t, dims);
  return cast_raw(sum(cast_raw(t, DType::f32), dims), DType::bf16);
}

struct Mixer {
  Backend& be;
  DType dt;  // of x, the weight, the bias and dy (GEMM operands); results are acc_dtype(dt)
  int64_t B, R, C, D;  // x [B, C, D] -> y [B, R, D], weight [R, C]

  void* at(void* p, int64_t elems) const { return static_cast<char*>(p) + elems * int64_t(dtype_size(dt)); }
  const void* at(const void* p, int64_t elems) const {
    return static_cast<const char*>(p) + elems * int64_t(dtype_size(dt));
  }
  void* at_out(void* p, int64_t elems) const {
    return static_cast<char*>(p) + elems * int64_t(dtype_size(acc_dtype(dt)));
  }

  // The GEMM that writes rows [r0, r1) of a result for the last time also rounds them into the
  // bf16 result out (when out.p is set: bf16 operands) through the GEMM's epilogue, so the f32
  // accumulator is never cast in a pass of its own; a GEMM that is also the rows' first writer
  // (beta 0) needs no f32 rows at all.
  GemmArgs finish_rows(GemmArgs g, Mats out, int64_t r0) const {
    if (!out.p) return g;
    g.D = at(out.p, r0 * out.ld);
    g.ldd = out.ld;
    g.stride_d = out.bs;
    if (g.beta == 0.0) g.C = nullptr;
    return g;
  }

  // y = tril(W) x (+ bias[r] on row r). wm is the masked weight, row stride wld. y accumulates in
  // acc_dtype; yd (bf16 operands only, else {nullptr}) receives the rounded result.
  void forward(Mats x, const void* wm, int64_t wld, const void* bias, const void* ones, Mats y, Mats yd) const {
    if (bias) {  // y[b, r, :] = bias[r] * ones: a K=1 GEMM seeds the rows, the mixing accumulates
      be.gemm({.dtype = dt, .M = R, .N = D, .K = 1, .A = bias, .lda = 1, .B = ones, .ldb = D,
               .C = y.p, .ldc = y.ld, .stride_c = y.bs, .batch = B});
    }
    const std::vector<Rect> cover = row_cover(R, C);
    for (size_t i = 0; i < cover.size(); ++i) {
      const Rect& q = cover[i];
      // A rectangle starting at column 0 is the first to write its rows; the cover lists a band's
      // rectangles in row order, so one is the last to write its rows unless the next starts inside them.
      const double beta = bias || q.c0 > 0 ? 1.0 : 0.0;
      const bool last = i + 1 == cover.size() || cover[i + 1].r0 >= q.r1;
      const GemmArgs g{.dtype = dt, .M = q.r1 - q.r0, .N = D, .K = q.c1 - q.c0,
                       .A = at(wm, q.r0 * wld + q.c0), .lda = wld,
                       .B = at(x.p, q.c0 * x.ld), .ldb = x.ld, .stride_b = x.bs,
                       .beta = beta, .C = at_out(y.p, q.r0 * y.ld), .ldc = y.ld, .stride_c = y.bs, .batch = B};
      be.gemm(last ? finish_rows(g, yd, q.r0) : g);
    }
  }

  // dx = tril(W)^T dy, by column bands: rows below the band's diagonal square in one rectangle
  // (written first), then the square in strips of kStrip columns, each from its own first row
  // (and the last to write its rows of dx: dxd, as yd above).
  void backward_x(Mats dy, const void* wm, int64_t wld, Mats dx, Mats dxd) const {
    for (int64_t c0 = 0; c0 < C; c0 += kBand) {
      const int64_t c1 = std::min(c0 + kBand, C);
      const bool below = R > c1;
      if (below) {
        be.gemm({.dtype = dt, .trans_a = true, .M = c1 - c0, .N = D, .K = R - c1,
                 .A = at(wm, c1 * wld + c0), .lda = wld,
                 .B = at(dy.p, c1 * dy.ld), .ldb = dy.ld, .stride_b = dy.bs,
                 .C = at_out(dx.p, c0 * dx.ld), .ldc = dx.ld, .stride_c = dx.bs, .batch = B});
      }
      for (int64_t s0 = c0; s0 < c1; s0 += kStrip) {
        const int64_t s1 = std::min(s0 + kStrip, c1), k = std::max<int64_t>(std::min(c1, R) - s0, 0);
        // k == 0 (columns past the last output row, R < C, so nothing lies below) writes zeros
        // without reading A or B. Every strip runs: it is its rows' only or last writer.
        const int64_t r = std::min(s0, R - 1);
        be.gemm(finish_rows({.dtype = dt, .trans_a = true, .M = s1 - s0, .N = D, .K = k,
                             .A = at(wm, r * wld + s0), .lda = wld,
                             .B = at(dy.p, r * dy.ld), .ldb = dy.ld, .stride_b = dy.bs,
                             .beta = below ? 1.0 : 0.0, .C = at_out(dx.p, s0 * dx.ld), .ldc = dx.ld,
                             .stride_c = dx.bs, .batch = B},
                            dxd, s0));
      }
    }
  }

  // dw (zero-filled, row stride dwld) += sum_b dy_b x_b^T over the row cover; the caller masks the
  // strips' upper corners afterwards. The sum over b runs as successive GEMMs into the same block,
  // so strips (too thin to thread) of all whole bands go together as one GEMM batched over bands.
  void backward_w(Mats dy, Mats x, void* dw, int64_t dwld) const {
    const int64_t whole = std::min(R, C) / kBand;  // bands whose diagonal square lies inside W
    for (const Rect& q : row_cover(R, C)) {
      if (q.strip && q.r0 / kBand < whole) continue;
      for (int64_t b = 0; b < B; ++b) {
        be.gemm({.dtype = dt, .trans_b = true, .M = q.r1 - q.r0, .N = q.c1 - q.c0, .K = D,
                 .A = at(dy.p, b * dy.bs + q.r0 * dy.ld), .lda = dy.ld,
                 .B = at(x.p, b * x.bs + q.c0 * x.ld), .ldb = x.ld,
                 .beta = 1.0, .C = at_out(dw, q.r0 * dwld + q.c0), .ldc = dwld});
      }
    }
    if (whole == 0) return;
    // Strip s0 of band k: rows k*kBand + [s0, s0 + kStrip), columns k*kBand + [0, s0 + kStrip).
    for (int64_t s0 = 0; s0 < kBand; s0 += kStrip) {
      for (int64_t b = 0; b < B; ++b) {
        be.gemm({.dtype = dt, .trans_b = true, .M = kStrip, .N = s0 + kStrip, .K = D,
                 .A = at(dy.p, b * dy.bs + s0 * dy.ld), .lda = dy.ld, .stride_a = kBand * dy.ld,
                 .B = at(x.p, b * x.bs), .ldb = x.ld, .stride_b = kBand * x.ld,
                 .beta = 1.0, .C = at_out(dw, s0 * dwld), .ldc = dwld, .stride_c = kBand * dwld + kBand, .batch = whole});
      }
    }
  }
};

void check_float_args(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_same(op, x, weight);
  MG_CHECK(x.dtype() == DType::f32 || x.dtype() == DType::f64 || x.dtype() == DType::bf16, op,
           ": f32, f64 or bf16 expected, got ", x.desc());
  if (bias.defined()) check_same(op, x, bias);
}

Tensor masked(const Tensor& w) {  // tril(w) without autograd, contiguous
  Tensor out = empty_as(w.shape(), w);
  if (out.numel()) be(w).tril(contiguous_raw(w), 0, out);
  return out;
}

}  // namespace

Tensor masked_token_mix(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  OpScope op_scope;
  if (autocast_lowers(x, weight, bias))
    return masked_token_mix(autocast_lower(x), autocast_lower(weight), autocast_lower(bias));
  check_float_args("masked_token_mix", x, weight, bias);
  MG_CHECK(x.dim() == 3 && weight.dim() == 2 && weight.size(1) == x.size(1),
           "masked_token_mix: expected x [B, C, D] and weight [R, C], got x ", x.desc(), ", weight ", weight.desc());
  const int64_t B = x.size(0), C = x.size(1), D = x.size(2), R = weight.size(0);
  MG_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == R), "masked_token_mix: bias must be [", R,
           "], got ", bias.desc());
  MG_CHECK(C > 0 && R > 0, "masked_token_mix: empty token axis: x ", x.desc(), ", weight ", weight.desc());

  Tensor xc = contiguous_raw(x), wm = masked(weight);
  Tensor bc = bias.defined() ? contiguous_raw(bias) : Tensor();
  Tensor y = Tensor::empty({B, R, D}, opts_of(x));
  const Mixer mix{be(x), x.dtype(), B, R, C, D};
  if (y.numel()) {
    Tensor ones = bias.defined() ? mg::ones({D}, opts_of(x)) : Tensor();
    Tensor acc = rounded(y) ? Tensor::empty({B, R, D}, acc_opts(x)) : y;
    mix.forward({xc.raw_data(), C * D, D}, wm.raw_data(), C, bc.defined() ? bc.raw_data() : nullptr,
                ones.defined() ? ones.raw_data() : nullptr, {acc.raw_data(), R * D, D}, rounded_out(y, R * D, D));
  }

  const bool need_x = needs_grad(x), need_w = needs_grad(weight), need_bias = needs_grad(bias);
  Tensor xs = need_w ? xc.detach() : Tensor(), ws = need_x ? wm : Tensor();
  return record("masked_token_mix", y, {x, weight, bias}, [=](const Tensor& g) -> std::vector<Tensor> {
    Tensor gc = contiguous_raw(g);
    Tensor dx, dw, db;
    if (g.numel() == 0) {
      return {ws.defined() ? zeros({B, C, D}, opts_of(g)) : Tensor(), xs.defined() ? zeros({R, C}, opts_of(g)) : Tensor(),
              need_bias ? zeros({R}, opts_of(g)) : Tensor()};
    }
    const Mats dy{gc.raw_data(), R * D, D};
    if (ws.defined()) {
      dx = Tensor::empty({B, C, D}, opts_of(g));
      Tensor acc = rounded(dx) ? Tensor::empty({B, C, D}, acc_opts(g)) : dx;
      mix.backward_x(dy, ws.raw_data(), C, {acc.raw_data(), C * D, D}, rounded_out(dx, C * D, D));
    }
    if (xs.defined()) {
      Tensor full = zeros({R, C}, acc_opts(g));
      mix.backward_w(dy, {xs.raw_data(), C * D, D}, full.raw_data(), C);
      dw = cast_raw(masked(full), g.dtype());
    }
    if (need_bias) db = sum_any(gc, {0, 2});
    return {dx, dw, db};
  });
}

Tensor masked_token_mix_heads(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  OpScope op_scope;
  if (autocast_lowers(x, weight, bias))
    return masked_token_mix_heads(autocast_lower(x), autocast_lower(weight), autocast_lower(bias));
  check_float_args("masked_token_mix_heads", x, weight, bias);
  MG_CHECK(x.dim() == 3 && weight.dim() == 3 && weight.size(1) == x.size(1) && weight.size(2) == x.size(1) &&
               weight.size(0) > 0 && x.size(2) % weight.size(0) == 0,
           "masked_token_mix_heads: expected x [B, T, H*Dh] and weight [H, T, T], got x ", x.desc(), ", weight ",
           weight.desc());
  const int64_t B = x.size(0), T = x.size(1), HD = x.size(2), H = weight.size(0), Dh = HD / H;
  MG_CHECK(!bias.defined() || (bias.dim() == 2 && bias.size(0) == H && bias.size(1) == T),
           "masked_token_mix_heads: bias must be [", H, ", ", T, "], got ", bias.desc());
  MG_CHECK(T > 0, "masked_token_mix_heads: empty token axis: x ", x.desc());

  Tensor xc = contiguous_raw(x), wm = masked(weight);
  Tensor bc = bias.defined() ? contiguous_raw(bias) : Tensor();
  Tensor y = Tensor::empty({B, T, HD}, opts_of(x));
  // Head h: x and y are [B, T, Dh] matrices at channel offset h*Dh with row stride H*Dh.
  const Mixer mix{be(x), x.dtype(), B, T, T, Dh};
  auto head = [&](const Tensor& t, int64_t h) -> Mats { return {mix.at(t.raw_data(), h * Dh), T * HD, HD}; };
  auto head_out = [&](const Tensor& t, int64_t h) -> Mats { return {mix.at_out(t.raw_data(), h * Dh), T * HD, HD}; };
  auto head_rounded = [&](const Tensor& t, int64_t h) -> Mats {
    return rounded(t) ? head(t, h) : Mats{nullptr, 0, 0};
  };
  if (y.numel()) {
    Tensor ones = bias.defined() ? mg::ones({Dh}, opts_of(x)) : Tensor();
    Tensor acc = rounded(y) ? Tensor::empty({B, T, HD}, acc_opts(x)) : y;
    for (int64_t h = 0; h < H; ++h) {
      mix.forward(head(xc, h), mix.at(wm.raw_data(), h * T * T), T, bc.defined() ? mix.at(bc.raw_data(), h * T) : nullptr,
                  ones.defined() ? ones.raw_data() : nullptr, head_out(acc, h), head_rounded(y, h));
    }
  }

  const bool need_x = needs_grad(x), need_w = needs_grad(weight), need_bias = needs_grad(bias);
  Tensor xs = need_w ? xc.detach() : Tensor(), ws = need_x ? wm : Tensor();
  return record("masked_token_mix_heads", y, {x, weight, bias}, [=](const Tensor& g) -> std::vector<Tensor> {
    Tensor gc = contiguous_raw(g);
    Tensor dx, dw, db;
    if (g.numel() == 0) {
      return {ws.defined() ? zeros({B, T, HD}, opts_of(g)) : Tensor(),
              xs.defined() ? zeros({H, T, T}, opts_of(g)) : Tensor(), need_bias ? zeros({H, T}, opts_of(g)) : Tensor()};
    }
    auto head_of = [&](const Tensor& t, int64_t h) -> Mats { return {mix.at(t.raw_data(), h * Dh), T * HD, HD}; };
    auto head_out_of = [&](const Tensor& t, int64_t h) -> Mats { return {mix.at_out(t.raw_data(), h * Dh), T * HD, HD}; };
    if (ws.defined()) {
      dx = Tensor::empty({B, T, HD}, opts_of(g));
      Tensor acc = rounded(dx) ? Tensor::empty({B, T, HD}, acc_opts(g)) : dx;
      for (int64_t h = 0; h < H; ++h) {
        mix.backward_x(head_of(gc, h), mix.at(ws.raw_data(), h * T * T), T, head_out_of(acc, h),
                       rounded(dx) ? head_of(dx, h) : Mats{nullptr, 0, 0});
      }
    }
    if (xs.defined()) {
      Tensor full = zeros({H, T, T}, acc_opts(g));
      for (int64_t h = 0; h < H; ++h)
        mix.backward_w(head_of(gc, h), head_of(xs, h), mix.at_out(full.raw_data(), h * T * T), T);
      dw = cast_raw(masked(full), g.dtype());
    }
    if (need_bias) db = sum_any(gc.view({B, T, H, Dh}), {0, 3}).transpose(0, 1).contiguous();
    return {dx, dw, db};
  });
}

}  // namespace mg
