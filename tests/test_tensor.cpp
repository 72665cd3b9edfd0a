// core/: tensors, views, dtypes, factories, Philox, printing.
#include <cstring>
#include <random>
#include <sstream>

#include "tests/test_helpers.h"

using namespace mg;
using namespace mg::test;

TEST_CASE("factories fill shapes and values") {
  Tensor z = zeros({2, 3});
  CHECK(z.shape() == Shape{2, 3});
  CHECK(z.dtype() == DType::f32);
  CHECK(z.is_contiguous());
  check_close(z, std::vector<double>(6, 0.0));
  check_close(ones({4}, TensorOptions{DType::f64}), {1, 1, 1, 1});
  check_close(full({2}, 2.5), {2.5, 2.5});
  check_close(arange(0, 5), {0, 1, 2, 3, 4});
  check_close(arange(1, 2, 0.25, TensorOptions{DType::f64}), {1, 1.25, 1.5, 1.75});
  Tensor a = arange(0, 4, 1, TensorOptions{DType::i32});
  CHECK(a.to_vector<int32_t>() == std::vector<int32_t>{0, 1, 2, 3});
  CHECK(scalar_tensor(3).dim() == 0);
  CHECK(scalar_tensor(3).item() == 3);
  CHECK_THROWS_WITH_AS(from_vector(std::vector<float>{1, 2, 3}, {2, 2}), doctest::Contains("do not fill shape [2, 2]"),
                       Error);
}

TEST_CASE("views share storage and follow strides") {
  Tensor x = arange(0, 24).reshape({2, 3, 4});
  CHECK(x.strides() == Shape{12, 4, 1});
  Tensor t = x.transpose(0, 2);
  CHECK(t.shape() == Shape{4, 3, 2});
  CHECK(t.strides() == Shape{1, 4, 12});
  CHECK_FALSE(t.is_contiguous());
  CHECK(t.storage() == x.storage());
  Tensor c = t.contiguous();
  CHECK(c.is_contiguous());
  CHECK(c.storage() != x.storage());
  // element [i][j][k] of t is x[k][j][i] = 12k + 4j + i
  std::vector<float> cv = c.to_vector<float>();
  CHECK(cv[size_t(1 * 6 + 2 * 2 + 1)] == 12 * 1 + 4 * 2 + 1);

  Tensor s = x.slice(2, 1, 4, 2);  // columns 1 and 3
  CHECK(s.shape() == Shape{2, 3, 2});
  check_close(s.select(0, 1).select(0, 2), {21, 23});
  check_close(x.narrow(1, 1, 1).squeeze(1).select(0, 0), {4, 5, 6, 7});
  check_close(x.slice(2, -1, 100).reshape({-1}), {3, 7, 11, 15, 19, 23});

  Tensor e = from_vector(std::vector<float>{1, 2, 3}).unsqueeze(0).expand({2, 3});
  CHECK(e.strides() == Shape{0, 1});
  check_close(e, {1, 2, 3, 1, 2, 3});

  // view of a transposed tensor needs a copy: view() refuses, reshape() copies
  CHECK_THROWS_WITH_AS(t.view({24}), doctest::Contains("without a copy"), Error);
  check_close(t.reshape({24}).slice(0, 0, 3), {0, 12, 4});
  // merging contiguous dims of a sliced tensor is still a view
  Tensor m = x.narrow(0, 1, 1).view({3, 4});
  CHECK(m.storage() == x.storage());
  CHECK(m.offset() == 12);
  CHECK(x.flatten(1).shape() == Shape{2, 12});
  CHECK(x.permute({2, 0, 1}).shape() == Shape{4, 2, 3});
}

TEST_CASE("dtype conversion: f32, f64, i32, bf16") {
  Tensor x = from_vector(std::vector<float>{1.5f, -2.25f, 3.0f, 1e-3f});
  Tensor d = x.to(DType::f64);
  CHECK(d.dtype() == DType::f64);
  check_close(d, {1.5, -2.25, 3.0, 1e-3}, 1e-7);
  Tensor i = x.to(DType::i32);
  CHECK(i.to_vector<int32_t>() == std::vector<int32_t>{1, -2, 3, 0});
  Tensor b = x.to(DType::bf16);
  CHECK(b.dtype() == DType::bf16);
  Tensor back = b.to(DType::f32);
  std::vector<float> bv = back.to_vector<float>();
  CHECK(bv[0] == 1.5f);
  CHECK(bv[1] == -2.25f);
  CHECK(std::abs(bv[3] - 1e-3f) < 1e-5f);  // bf16 keeps 8 bits of mantissa
  // round to nearest even: 1 + 2^-8 is halfway between 1 and 1 + 2^-7 -> 1
  CHECK(float(bf16(1.0f + 1.0f / 256)) == 1.0f);
  CHECK(float(bf16(1.0f + 3.0f / 256)) == 1.0f + 4.0f / 256);
  CHECK(std::isnan(float(bf16(NAN))));
}

TEST_CASE("bf16 casts of whole tensors: the vectorised paths give bf16::from_float's bits for every class of float") {
  // Bit patterns: every sign/exponent with ties, near-ties and random mantissas, so zeros,
  // subnormals, rounding carries into the exponent, overflow to inf, inf and NaN payloads all
  // occur. Long enough that the contiguous cast is split across threads.
  std::vector<uint32_t> bits;
  std::mt19937 rng(5);
  for (uint32_t sign_exp = 0; sign_exp < 512; ++sign_exp)
    for (uint32_t m : {0x0u, 0x1u, 0x7fffu, 0x8000u, 0x8001u, 0x18000u, 0x7fffffu, 0x7f8000u, 0x400000u})
      bits.push_back(sign_exp << 23 | m);
  while (bits.size() < 70007) bits.push_back(uint32_t(rng()));
  std::vector<float> vals(bits.size());
  std::memcpy(vals.data(), bits.data(), bits.size() * 4);
  const Tensor x = from_vector(vals, Shape{int64_t(vals.size())});
  const std::vector<bf16> got = x.to(DType::bf16).to_vector<bf16>();
  const std::vector<bf16> strided = x.view({7, 10001}).t().to(DType::bf16).t().contiguous().to_vector<bf16>();
  int64_t bad = 0, bad_strided = 0, bad_back = 0;
  for (size_t i = 0; i < vals.size(); ++i) {
    const uint16_t want = bf16::from_float(vals[i]);
    bad += got[i].bits != want;
    bad_strided += strided[i].bits != want;
  }
  CHECK(bad == 0);
  CHECK(bad_strided == 0);
  // Back to f32: exact (the bf16 bits in the high half).
  const std::vector<float> back = x.to(DType::bf16).to(DType::f32).to_vector<float>();
  for (size_t i = 0; i < vals.size(); ++i) {
    uint32_t u;
    std::memcpy(&u, &back[i], 4);
    bad_back += u != uint32_t(got[i].bits) << 16;
  }
  CHECK(bad_back == 0);
}

TEST_CASE("Philox random numbers: deterministic, seeded, well distributed") {
  Tensor a = randn({10000}, 7), b = randn({10000}, 7), c = randn({10000}, 8);
  CHECK(a.to_vector<float>() == b.to_vector<float>());
  CHECK(a.to_vector<float>() != c.to_vector<float>());
  double m = mean(a).item(), v = var(a).item();
  CHECK(std::abs(m) < 0.05);
  CHECK(std::abs(v - 1.0) < 0.05);
  Tensor u = rand({10000}, 3);
  CHECK(max(u).item() < 1.0);
  CHECK(-max(neg(u)).item() >= 0.0);
  CHECK(std::abs(mean(u).item() - 0.5) < 0.02);
  Tensor r = randint(-3, 5, {1000}, 11);
  CHECK(r.dtype() == DType::i32);
  std::vector<int> seen(8, 0);
  for (int32_t x : r.to_vector<int32_t>()) {
    REQUIRE(x >= -3);
    REQUIRE(x < 5);
    seen[size_t(x + 3)]++;
  }
  for (int s : seen) CHECK(s > 60);
  // A generator advances: two draws differ, a reseeded generator repeats them.
  Generator g(5), g2(5);
  Tensor d1 = randn({16}, g), d2 = randn({16}, g);
  CHECK(d1.to_vector<float>() != d2.to_vector<float>());
  CHECK(randn({16}, g2).to_vector<float>() == d1.to_vector<float>());
  // f64 draws are in range too
  Tensor n64 = randn({5000}, 1, TensorOptions{DType::f64});
  CHECK(std::abs(mean(n64).item()) < 0.06);
}

TEST_CASE("printing shows shape, dtype, device and values") {
  std::ostringstream os;
  os << from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2});
  std::string s = os.str();
  CHECK(s.find("shape=[2, 2]") != std::string::npos);
  CHECK(s.find("dtype=f32") != std::string::npos);
  CHECK(s.find("device=cpu") != std::string::npos);
  CHECK(s.find("[[ 1,  2],\n [ 3,  4]]") != std::string::npos);
  std::ostringstream big;
  big << zeros({100, 100});
  CHECK(big.str().find("...") != std::string::npos);
  CHECK(big.str().size() < 2000);
}

TEST_CASE("errors name the op and the shapes") {
  Tensor a = zeros({2, 3}), b = zeros({4, 3});
  CHECK_THROWS_WITH_AS(add(a, b), doctest::Contains("add: shapes [2, 3] and [4, 3] cannot be broadcast"), Error);
  CHECK_THROWS_WITH_AS(matmul(a, b), doctest::Contains("matmul: inner dims differ"), Error);
  CHECK_THROWS_WITH_AS(add(a, zeros({2, 3}, TensorOptions{DType::f64})),
                       doctest::Contains("add: dtype mismatch: f32[2, 3] on cpu vs f64[2, 3] on cpu"), Error);
  CHECK_THROWS_WITH_AS(a.reshape({5}), doctest::Contains("reshape: shape [5] is invalid for f32[2, 3]"), Error);
  CHECK_THROWS_WITH_AS(sum(a, {2}), doctest::Contains("sum: dim 2 out of range"), Error);
  CHECK_THROWS_WITH_AS(cat({a, zeros({2, 4})}, 0), doctest::Contains("cat: tensor 1"), Error);
  CHECK_THROWS_WITH_AS(index_select(a, 0, from_vector(std::vector<int32_t>{0, 2})),
                       doctest::Contains("index 2 at position 1 out of range [0, 2)"), Error);
  CHECK_THROWS_WITH_AS(zeros({2}).to(kCUDA), doctest::Contains("cuda"), Error);
  CHECK_THROWS_WITH_AS(exp(arange(0, 3, 1, TensorOptions{DType::i32})), doctest::Contains("exp: expected a floating tensor"),
                       Error);
  CHECK_THROWS_WITH_AS(zeros({1, 1, 1, 1, 1, 1, 1, 1, 1}), doctest::Contains("at most 8"), Error);
}

TEST_CASE("size products that overflow int64 are errors naming the shape, never wrapped sizes") {
  const int64_t big = int64_t(1) << 40;
  CHECK_THROWS_WITH_AS(numel({big, big}), doctest::Contains("shape [1099511627776, 1099511627776] overflows int64"),
                       Error);
  CHECK(numel({big, 1024}) == big * 1024);
  // A zero-size dim keeps numel at 0, but the strides of the other dims must still exist.
  CHECK(numel({0, big, big}) == 0);
  CHECK_THROWS_WITH_AS(contiguous_strides({0, big, big}), doctest::Contains("strides of shape [0, "), Error);
  CHECK(contiguous_strides({big, 0, 4}) == Shape{4, 4, 1});
  // numel fits int64 but the bytes do not fit size_t.
  CHECK_THROWS_WITH_AS(shape_nbytes({int64_t(1) << 62, 8}, 4), doctest::Contains("overflows int64"), Error);
  CHECK_THROWS_WITH_AS(shape_nbytes({int64_t(1) << 61, 2}, 8), doctest::Contains("byte size of shape"), Error);
  CHECK(shape_nbytes({3, 5}, 8) == 120);
  // Nothing is allocated for a shape whose size overflows.
  CHECK_THROWS_WITH_AS(Tensor::empty({big, big, big}), doctest::Contains("overflows"), Error);
  CHECK_THROWS_WITH_AS(zeros({0, big, big}), doctest::Contains("overflows"), Error);
  // reshape/view: the product of the known sizes is checked before inferring the -1.
  Tensor a = zeros({2, 3});
  CHECK_THROWS_WITH_AS(a.reshape({big, big, -1}), doctest::Contains("reshape of shape [1099511627776, 1099511627776, -1] overflows"),
                       Error);
  CHECK_THROWS_WITH_AS(a.view({big, big, -1}), doctest::Contains("view of shape"), Error);
  CHECK_THROWS_WITH_AS(zeros({0}).reshape({0, big, big}), doctest::Contains("overflows"), Error);
  // expand: a broadcast view still needs a representable element count, and sizes >= 0.
  Tensor one = zeros({1, 1});
  CHECK_THROWS_WITH_AS(one.expand({big, big}), doctest::Contains("expand of shape [1099511627776, 1099511627776] overflows"),
                       Error);
  CHECK_THROWS_WITH_AS(one.expand({-5, 3}), doctest::Contains("expand: invalid size -5"), Error);
  CHECK(one.expand({big, 2}).shape() == Shape{big, 2});
}
