#pragma once
// The project's non-cryptographic hashes, fixed on every platform (results are stored in files
// and decide data splits, so they must never change): FNV-1a over bytes and the splitmix64
// finaliser.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace mg {

inline constexpr std::uint64_t kFnv1aOffset = 0xCBF29CE484222325ULL;  // FNV-1a 64-bit offset basis
inline constexpr std::uint64_t kFnv1aPrime = 0x100000001B3ULL;

// 64-bit FNV-1a of n bytes, continuing from state h (the offset basis for a fresh hash), so a
// record can be hashed field by field: fnv1a(b, nb, fnv1a(a, na)).
inline std::uint64_t fnv1a(const void* data, std::size_t n, std::uint64_t h = kFnv1aOffset) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= kFnv1aPrime;
  }
  return h;
}
inline std::uint64_t fnv1a(std::string_view s, std::uint64_t h = kFnv1aOffset) { return fnv1a(s.data(), s.size(), h); }

// splitmix64's output function of state x (Steele, Lea, Flood 2014): a fixed bijection of 64-bit
// words whose every output bit depends on every input bit. A splitmix64 generator returns
// splitmix64(s) and then advances s by 0x9E3779B97F4A7C15.
inline std::uint64_t splitmix64(std::uint64_t x) {
  std::uint64_t z = x + 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace mg
