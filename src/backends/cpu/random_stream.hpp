// The random streams of the random ops (RandomNormal, RandomUniform, Bernoulli, Multinomial).
//
// Counter-based: draw i of a stream is a hash of (key, i) — SplitMix64's output for its state
// key + (i + 1) * gamma — so any element can be drawn independently and in parallel, and another
// backend (a CUDA kernel) can reproduce a seeded stream exactly.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>

namespace kiln::cpu {

class RandomStream {
 public:
  explicit RandomStream(uint64_t key) : key_(key) {}

  // A stream keyed by the op's `seed` attribute (reproducible), or a fresh one each call.
  static RandomStream from_seed(const float* seed) {
    if (!seed) {
      std::random_device rd;
      return RandomStream((static_cast<uint64_t>(rd()) << 32) ^ rd());
    }
    uint32_t bits;
    std::memcpy(&bits, seed, sizeof bits);  // every float seed gives its own stream
    return RandomStream(mix(bits ^ 0x6b696c6e72616e64ull));
  }

  uint64_t bits(uint64_t i) const { return mix(key_ + (i + 1) * kGamma); }

  // Uniform in [0, 1), a multiple of 2^-53.
  double uniform(uint64_t i) const { return static_cast<double>(bits(i) >> 11) * 0x1.0p-53; }

  // Standard normal (Box-Muller on draws 2i and 2i+1).
  double normal(uint64_t i) const {
    const double u1 = 1.0 - uniform(2 * i);  // (0, 1]: log stays finite
    const double u2 = uniform(2 * i + 1);
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  static constexpr uint64_t kGamma = 0x9e3779b97f4a7c15ull;
  static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t key_;
};

}  // namespace kiln::cpu
