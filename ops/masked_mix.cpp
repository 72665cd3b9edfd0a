// Masked token mixing as GEMMs over the lower triangle only. The weight is masked once per call
// into a temporary (tril, one pass over R*C, so the stored weight is never written), and each GEMM
// carries a triangle hint (GemmTri) so that a backend that can skips the zero half: the CPU's
// GEMM runs each tile of rows over the K range its rows reach (forward: columns up to the row;
// dx: rows from the column on) and leaves out the tiles of dw above the diagonal, for about half
// the dense multiply-adds with the operands packed once. A backend that ignores the hint (CUDA)
// gets the same result from the dense GEMM, the masked half being zeros, for finite inputs: there
// an inf or NaN at a later position reaches earlier outputs as 0 * inf = NaN, which the CPU skips.
// Everything goes through Backend::gemm on raw pointers (stride-0 broadcast of the weight over
// the batch), so the op runs on any backend.
// bf16 inputs (autocast) accumulate in f32, rounded to bf16 once in the GEMM's epilogue.
#include "ops/masked_mix.h"

#include <algorithm>
#include <vector>

#include "ops/autocast_policy.h"
#include "ops/common.h"
#include "ops/reduce.h"

namespace mg {
using namespace detail;

namespace {

// A batch of row-major matrices in raw memory: element (b, i, j) at p + b*bs + i*ld + j (elements).
struct Mats {
  void* p;
  int64_t bs, ld;
};

// The tensor's data, or null for an undefined tensor (no bias, no accumulator).
void* raw_or_null(const Tensor& t) { return t.defined() ? t.raw_data() : nullptr; }

// The dtype GEMM results accumulate in: f32 for bf16 operands.
DType acc_dtype(DType dt) { return dt == DType::bf16 ? DType::f32 : dt; }
TensorOptions acc_opts(const Tensor& t) { return TensorOptions{acc_dtype(t.dtype()), t.device(), false}; }

// A result whose dtype is not the accumulator's (bf16) is written rounded by the GEMM epilogue.
bool rounded(const Tensor& t) { return acc_dtype(t.dtype()) != t.dtype(); }
// The f32 accumulator of a result: itself unless rounded; an f32 tensor for a rounded result that
// the GEMM must add to (seeded), else none (the GEMM writes the rounded result alone).
Tensor accumulator(const Tensor& t, bool seeded) {
  if (!rounded(t)) return t;
  return seeded ? Tensor::empty(t.shape(), acc_opts(t)) : Tensor();
}
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
  void* at_out(void* p, int64_t elems) const {  // p may be null (no accumulator): stays null
    return p ? static_cast<char*>(p) + elems * int64_t(dtype_size(acc_dtype(dt))) : nullptr;
  }

  // y = tril(W) x (+ bias[r] on row r). wm is the masked weight, row stride wld. y accumulates in
  // acc_dtype (y.p may be null when yd is set and there is no bias: the GEMM writes yd only); yd
  // (bf16 operands only, else {nullptr}) receives the rounded result.
  void forward(Mats x, const void* wm, int64_t wld, const void* bias, const void* ones, Mats y, Mats yd) const {
    if (bias) {  // y[b, r, :] = bias[r] * ones: a K=1 GEMM seeds the rows, the mixing accumulates
      be.gemm({.dtype = dt, .M = R, .N = D, .K = 1, .A = bias, .lda = 1, .B = ones, .ldb = D,
               .C = y.p, .ldc = y.ld, .stride_c = y.bs, .batch = B});
    }
    be.gemm({.dtype = dt, .M = R, .N = D, .K = C, .A = wm, .lda = wld, .B = x.p, .ldb = x.ld, .stride_b = x.bs,
             .beta = bias ? 1.0 : 0.0, .C = bias ? y.p : (yd.p ? nullptr : y.p), .ldc = y.ld, .stride_c = y.bs,
             .batch = B, .D = yd.p, .ldd = yd.ld, .stride_d = yd.bs, .tri = GemmTri::a_lower});
  }

  // dx = tril(W)^T dy: op(A) = W^T is upper triangular. dx accumulates in acc_dtype; with dxd set
  // (bf16 operands) only the rounded dxd is written and dx.p may be null.
  void backward_x(Mats dy, const void* wm, int64_t wld, Mats dx, Mats dxd) const {
    be.gemm({.dtype = dt, .trans_a = true, .M = C, .N = D, .K = R, .A = wm, .lda = wld, .B = dy.p, .ldb = dy.ld,
             .stride_b = dy.bs, .C = dxd.p ? nullptr : dx.p, .ldc = dx.ld, .stride_c = dx.bs, .batch = B,
             .D = dxd.p, .ldd = dxd.ld, .stride_d = dxd.bs, .tri = GemmTri::a_upper});
  }

  // dw (zero-filled, row stride dwld) += sum_b dy_b x_b^T on and below the diagonal (the entries
  // above are unspecified: the caller masks them). The sum over b runs as GEMMs one after another
  // on the same dw (stride_c 0), in batch order.
  void backward_w(Mats dy, Mats x, void* dw, int64_t dwld) const {
    be.gemm({.dtype = dt, .trans_b = true, .M = R, .N = C, .K = D, .A = dy.p, .lda = dy.ld, .stride_a = dy.bs,
             .B = x.p, .ldb = x.ld, .stride_b = x.bs, .beta = 1.0, .C = dw, .ldc = dwld, .batch = B,
             .tri = GemmTri::c_lower});
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
    Tensor acc = accumulator(y, bias.defined());
    mix.forward({xc.raw_data(), C * D, D}, wm.raw_data(), C, raw_or_null(bc), raw_or_null(ones),
                {raw_or_null(acc), R * D, D}, rounded_out(y, R * D, D));
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
      Tensor acc = accumulator(dx, false);
      mix.backward_x(dy, ws.raw_data(), C, {raw_or_null(acc), C * D, D}, rounded_out(dx, C * D, D));
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
  auto head_out = [&](const Tensor& t, int64_t h) -> Mats {
    return {mix.at_out(raw_or_null(t), h * Dh), T * HD, HD};
  };
  auto head_rounded = [&](const Tensor& t, int64_t h) -> Mats {
    return rounded(t) ? head(t, h) : Mats{nullptr, 0, 0};
  };
  if (y.numel()) {
    Tensor ones = bias.defined() ? mg::ones({Dh}, opts_of(x)) : Tensor();
    Tensor acc = accumulator(y, bias.defined());
    for (int64_t h = 0; h < H; ++h) {
      mix.forward(head(xc, h), mix.at(wm.raw_data(), h * T * T), T, bc.defined() ? mix.at(bc.raw_data(), h * T) : nullptr,
                  raw_or_null(ones), head_out(acc, h), head_rounded(y, h));
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
    auto head_out_of = [&](const Tensor& t, int64_t h) -> Mats {
      return {mix.at_out(raw_or_null(t), h * Dh), T * HD, HD};
    };
    if (ws.defined()) {
      dx = Tensor::empty({B, T, HD}, opts_of(g));
      Tensor acc = accumulator(dx, false);
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
