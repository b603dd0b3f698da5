// FastDiv (src/util/fast_div.hpp): n / d through a multiply-high and a shift, as the CUDA kernels
// use it, against `/` for small, power-of-two, odd, large and boundary divisors and dividends.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "util/fast_div.hpp"

namespace kiln {
namespace {

TEST(FastDiv, MatchesIntegerDivision) {
  std::mt19937 rng(7);
  std::vector<uint32_t> divisors = {1, 2, 3, 5, 7, 14, 28, 56, 112, 196, 784, 3136, 12544, 50176, 65535, 65536,
                                    (1u << 20) + 3, (1u << 30) - 1, 1u << 30, (1u << 31) - 1};
  for (int i = 0; i < 200; ++i) divisors.push_back(1 + rng() % 100000);
  const uint32_t kMax = (1u << 31) - 1;
  for (uint32_t d : divisors) {
    const FastDiv f = FastDiv::of(d);
    std::vector<uint32_t> ns = {0, 1, d - 1, d, d + 1, 2 * d - 1, kMax, kMax - 1, kMax - d};
    for (int i = 0; i < 2000; ++i) ns.push_back(rng() & kMax);
    for (int k = 1; k < 64; ++k) ns.push_back(static_cast<uint32_t>(std::min<uint64_t>(kMax, uint64_t{k} * d)));
    for (uint32_t n : ns) {
      if (n > kMax) continue;
      ASSERT_EQ(f.div(n), n / d) << "n " << n << " d " << d;
    }
  }
}

}  // namespace
}  // namespace kiln
