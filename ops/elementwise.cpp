#include "ops/elementwise.h"

#include "ops/autocast_policy.h"
#include "ops/common.h"

namespace mg {
using namespace detail;

namespace {

Tensor binary_raw(BinaryOp op, const char* name, const Tensor& a, const Tensor& b) {
  OpScope op_scope;
  check_same(name, a, b);
  check_floating(name, a);
  Shape s = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = empty_as(s, a);
  if (out.numel()) be(a).binary(op, broadcast_to_raw(a, s), broadcast_to_raw(b, s), out);
  return out;
}

Tensor unary_raw(UnaryOp op, const char* name, const Tensor& x, double alpha = 0) {
  OpScope op_scope;
  check_floating(name, x);
  Tensor out = empty_as(x.shape(), x);
  if (out.numel()) be(x).unary(op, x, out, alpha);
  return out;
}

}  // namespace

namespace {
// Autocast's residual add, raw: an f32 stream plus a bf16 branch output, into f32. The kernel
// widens the bf16 operand exactly as it reads it: bitwise the add of a widened copy, without the
// copy. f32 + bf16 commutes bit for bit, so the f32 operand goes first (the kernel's b is bf16).
Tensor add_f32_bf16_raw(const Tensor& a, const Tensor& b) {
  MG_CHECK(a.device() == b.device(), "add: device mismatch: ", a.desc(), " vs ", b.desc());
  const bool a_low = a.dtype() == DType::bf16;
  const Tensor& f = a_low ? b : a;
  const Tensor& h = a_low ? a : b;
  Shape s = broadcast_shapes(a.shape(), b.shape(), "add");
  Tensor out = empty_as(s, f);
  if (out.numel()) be(f).binary(BinaryOp::add, broadcast_to_raw(f, s), broadcast_to_raw(h, s), out);
  return out;
}

// a + b or a - b: the gradients are g and +-g, each summed back to its operand's shape (and cast
// to its dtype: a bf16 operand of the mixed add gets its gradient as a widening cast would return
// it). A broadcast operand (a bias) costs a reduction: skipped when frozen. f32_bf16: autocast's
// mixed add (add() decides it; every other call has operands of one dtype).
Tensor add_or_sub(const char* name, BinaryOp op, const Tensor& a, const Tensor& b, bool f32_bf16 = false) {
  OpScope op_scope;
  Tensor out = f32_bf16 ? add_f32_bf16_raw(a, b) : binary_raw(op, name, a, b);
  Shape sa = a.shape(), sb = b.shape();
  const DType da = a.dtype(), db = b.dtype();
  const bool need_a = needs_grad(a), need_b = needs_grad(b), minus = op == BinaryOp::sub;
  return record(name, out, {a, b}, [sa, sb, da, db, need_a, need_b, minus](const Tensor& g) -> std::vector<Tensor> {
    return {need_a ? sum_to(g, sa).to(da) : Tensor(), need_b ? sum_to(minus ? neg(g) : g, sb).to(db) : Tensor()};
  });
}
}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  OpScope op_scope;
  if (autocast_widens(a, b)) {
    const bool mixed = a.defined() && b.defined() &&
                       ((a.dtype() == DType::f32 && b.dtype() == DType::bf16) ||
                        (a.dtype() == DType::bf16 && b.dtype() == DType::f32));
    if (mixed) return add_or_sub("add", BinaryOp::add, a, b, true);
    return add(autocast_widen(a), autocast_widen(b));
  }
  return add_or_sub("add", BinaryOp::add, a, b);
}

Tensor sub(const Tensor& a, const Tensor& b) {
  OpScope op_scope;
  if (autocast_widens(a, b)) return sub(autocast_widen(a), autocast_widen(b));
  return add_or_sub("sub", BinaryOp::sub, a, b);
}

Tensor mul(const Tensor& a, const Tensor& b) {
  OpScope op_scope;
  if (autocast_widens(a, b)) return mul(autocast_widen(a), autocast_widen(b));
  Tensor out = binary_raw(BinaryOp::mul, "mul", a, b);
  const bool need_a = needs_grad(a), need_b = needs_grad(b);
  // Save only what each gradient needs.
  Tensor sa = need_b ? a.detach() : Tensor(), sb = need_a ? b.detach() : Tensor();
  Shape sha = a.shape(), shb = b.shape();
  return record("mul", out, {a, b}, [sa, sb, sha, shb](const Tensor& g) -> std::vector<Tensor> {
    return {sb.defined() ? sum_to(mul(g, sb), sha) : Tensor(), sa.defined() ? sum_to(mul(g, sa), shb) : Tensor()};
  });
}

Tensor div(const Tensor& a, const Tensor& b) {
  OpScope op_scope;
  if (autocast_widens(a, b)) return div(autocast_widen(a), autocast_widen(b));
  Tensor out = binary_raw(BinaryOp::div, "div", a, b);
  const bool need_a = needs_grad(a), need_b = needs_grad(b);
  Tensor sb = b.detach(), so = need_b ? out.detach() : Tensor();
  Shape sha = a.shape(), shb = b.shape();
  return record("div", out, {a, b}, [sb, so, sha, shb, need_a](const Tensor& g) -> std::vector<Tensor> {
    Tensor ga = div(g, sb);
    // d(a/b)/db = -(a/b)/b = -out/b
    return {need_a ? sum_to(ga, sha) : Tensor(), so.defined() ? sum_to(neg(mul(ga, so)), shb) : Tensor()};
  });
}

Tensor add(const Tensor& a, double s) {
  OpScope op_scope;
  Tensor out = unary_raw(UnaryOp::add_scalar, "add", a, s);
  return record("add_scalar", out, {a}, [](const Tensor& g) -> std::vector<Tensor> { return {g}; });
}
Tensor sub(const Tensor& a, double s) {
  OpScope op_scope;
  Tensor out = unary_raw(UnaryOp::add_scalar, "sub", a, -s);
  return record("sub_scalar", out, {a}, [](const Tensor& g) -> std::vector<Tensor> { return {g}; });
}
Tensor rsub(double s, const Tensor& a) {
  OpScope op_scope;
  Tensor out = unary_raw(UnaryOp::rsub_scalar, "rsub", a, s);
  return record("rsub_scalar", out, {a}, [](const Tensor& g) -> std::vector<Tensor> { return {neg(g)}; });
}
Tensor mul(const Tensor& a, double s) {
  OpScope op_scope;
  Tensor out = unary_raw(UnaryOp::mul_scalar, "mul", a, s);
  return record("mul_scalar", out, {a}, [s](const Tensor& g) -> std::vector<Tensor> { return {mul(g, s)}; });
}
Tensor div(const Tensor& a, double s) {
  OpScope op_scope;
  Tensor out = unary_raw(UnaryOp::mul_scalar, "div", a, 1.0 / s);
  return record("div_scalar", out, {a}, [s](const Tensor& g) -> std::vector<Tensor> { return {mul(g, 1.0 / s)}; });
}
Tensor rdiv(double s, const Tensor& a) {
  OpScope op_scope;
  Tensor inv = unary_raw(UnaryOp::pow_scalar, "rdiv", a, -1.0);
  Tensor out = unary_raw(UnaryOp::mul_scalar, "rdiv", inv, s);
  Tensor sa = a.detach(), so = out.detach();
  return record("rdiv_scalar", out, {a}, [sa, so](const Tensor& g) -> std::vector<Tensor> {
    return {neg(div(mul(g, so), sa))};  // d(s/a)/da = -(s/a)/a
  });
}

Tensor neg(const Tensor& x) {
  OpScope op_scope;
  Tensor out = unary_raw(UnaryOp::neg, "neg", x);
  return record("neg", out, {x}, [](const Tensor& g) -> std::vector<Tensor> { return {neg(g)}; });
}
Tensor exp(const Tensor& x) {
  OpScope op_scope;
  Tensor out = unary_raw(UnaryOp::exp, "exp", x);
  Tensor so = out.detach();
  return record("exp", out, {x}, [so](const Tensor& g) -> std::vector<Tensor> { return {mul(g, so)}; });
}
Tensor log(const Tensor& x) {
  OpScope op_scope;
  Tensor out = unary_raw(UnaryOp::log, "log", x);
  Tensor sx = x.detach();
  return record("log", out, {x}, [sx](const Tensor& g) -> std::vector<Tensor> { return {div(g, sx)}; });
}
Tensor sqrt(const Tensor& x) {
  OpScope op_scope;
  Tensor out = unary_raw(UnaryOp::sqrt, "sqrt", x);
  Tensor so = out.detach();
  return record("sqrt", out, {x}, [so](const Tensor& g) -> std::vector<Tensor> { return {div(mul(g, 0.5), so)}; });
}
Tensor rsqrt(const Tensor& x) {
  OpScope op_scope;
  Tensor out = unary_raw(UnaryOp::rsqrt, "rsqrt", x);
  Tensor so = out.detach();
  // d(x^-1/2)/dx = -1/2 x^-3/2 = -1/2 out^3
  return record("rsqrt", out, {x}, [so](const Tensor& g) -> std::vector<Tensor> {
    return {mul(g, mul(pow(so, 3.0), -0.5))};
  });
}
Tensor pow(const Tensor& x, double p) {
  OpScope op_scope;
  Tensor out = unary_raw(UnaryOp::pow_scalar, "pow", x, p);
  Tensor sx = x.detach();
  return record("pow", out, {x}, [sx, p](const Tensor& g) -> std::vector<Tensor> {
    if (p == 0) return {zeros_like(g)};
    return {mul(g, mul(pow(sx, p - 1), p))};
  });
}
Tensor square(const Tensor& x) { return mul(x, x); }
Tensor abs(const Tensor& x) {
  OpScope op_scope;
  Tensor out = unary_raw(UnaryOp::abs, "abs", x);
  Tensor sx = x.detach();
  return record("abs", out, {x}, [sx](const Tensor& g) -> std::vector<Tensor> { return {mul(g, sign(sx))}; });
}
Tensor tanh(const Tensor& x) {
  OpScope op_scope;
  Tensor out = unary_raw(UnaryOp::tanh, "tanh", x);
  Tensor so = out.detach();
  return record("tanh", out, {x}, [so](const Tensor& g) -> std::vector<Tensor> {
    return {mul(g, rsub(1.0, mul(so, so)))};
  });
}
// Forward-only: no backward node, but observers still see the output.
Tensor sign(const Tensor& x) {
  OpScope op_scope;
  Tensor out = unary_raw(UnaryOp::sign, "sign", x);
  report_forward("sign", out, 1);
  return out;
}
Tensor eq(const Tensor& a, const Tensor& b) {
  OpScope op_scope;
  Tensor out = binary_raw(BinaryOp::eq, "eq", a, b);
  report_forward("eq", out, 2);
  return out;
}

}  // namespace mg
