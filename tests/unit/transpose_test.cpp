// Transpose, DepthToSpace, SpaceToDepth against index-mapping references.
#include "tensorops_test_util.hpp"

namespace kiln::test {
namespace {

Tensor naive_transpose(const Tensor& x, const std::vector<int64_t>& perm) {
  Dims out;
  for (int64_t p : perm) out.push_back(x.dims()[static_cast<size_t>(p)]);
  return map_tensor(x, out, [&](const std::vector<int64_t>& o) {
    std::vector<int64_t> s(o.size());
    for (size_t k = 0; k < perm.size(); ++k) s[static_cast<size_t>(perm[k])] = o[k];
    return std::optional(s);
  });
}

TEST(Transpose, AllPermutationsOfRank4AndDtypes) {
  std::vector<int64_t> perm = {0, 1, 2, 3};
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kInt64, DType::kInt8, DType::kBool}) {
    Tensor x = random_tensor(t, {2, 3, 4, 5}, 11);
    do {
      Attributes a;
      a.set("perm", perm);
      EXPECT_TRUE(tensors_equal(run1({"Transpose", {x}, {}, a}), naive_transpose(x, perm)))
          << dtype_name(t) << " " << fmt::format("{}", fmt::join(perm, ","));
    } while (std::next_permutation(perm.begin(), perm.end()));
  }
}

TEST(Transpose, DefaultReversesAndErrors) {
  Tensor x = random_tensor(DType::kFloat32, {2, 3, 4}, 12);
  EXPECT_TRUE(tensors_equal(run1({"Transpose", {x}}), naive_transpose(x, {2, 1, 0})));
  Tensor e(DType::kFloat32, {0, 3});
  EXPECT_EQ(run1({"Transpose", {e}}).dims(), (Dims{3, 0}));
  Attributes a;
  a.set("perm", std::vector<int64_t>{0, 0, 1});
  expect_error({"Transpose", {x}, {}, a}, {"not a permutation"});
  a.set("perm", std::vector<int64_t>{0, 1});
  expect_error({"Transpose", {x}, {}, a}, {"not a permutation"});
  auto r = infer_op("Transpose", {ttype(DType::kFloat32, {Dim::symbolic("n"), 3, 4})});
  EXPECT_EQ(r.outputs[0].to_string(), "float32[4,3,n]");
}

TEST(DepthToSpace, DcrAndCrdModes) {
  const int64_t n = 2, c = 8, h = 3, w = 2, b = 2, oc = c / (b * b);
  Tensor x = random_tensor(DType::kFloat32, {n, c, h, w}, 13);
  for (std::string mode : {"DCR", "CRD"}) {
    Attributes a;
    a.set("blocksize", b);
    a.set("mode", mode);
    Tensor want = map_tensor(x, {n, oc, h * b, w * b}, [&](const std::vector<int64_t>& o) {
      int64_t bh = o[2] % b, bw = o[3] % b;
      int64_t ch = mode == "DCR" ? (bh * b + bw) * oc + o[1] : o[1] * b * b + bh * b + bw;
      return std::optional(std::vector<int64_t>{o[0], ch, o[2] / b, o[3] / b});
    });
    EXPECT_TRUE(tensors_equal(run1({"DepthToSpace", {x}, {}, a}), want)) << mode;
  }
  Attributes a;
  a.set("blocksize", int64_t{3});
  expect_error({"DepthToSpace", {x}, {}, a}, {"divisible"});
  a.set("blocksize", int64_t{2});
  a.set("mode", std::string("XYZ"));
  expect_error({"DepthToSpace", {x}, {}, a}, {"mode"});
}

TEST(SpaceToDepth, InverseOfDcr) {
  Tensor x = random_tensor(DType::kInt64, {1, 2, 4, 6}, 14, -100, 100);
  Attributes a;
  a.set("blocksize", int64_t{2});
  Tensor want = map_tensor(x, {1, 8, 2, 3}, [&](const std::vector<int64_t>& o) {
    int64_t blk = o[1] / 2, ch = o[1] % 2;
    return std::optional(std::vector<int64_t>{o[0], ch, o[2] * 2 + blk / 2, o[3] * 2 + blk % 2});
  });
  Tensor y = run1({"SpaceToDepth", {x}, {}, a});
  EXPECT_TRUE(tensors_equal(y, want));
  EXPECT_TRUE(tensors_equal(run1({"DepthToSpace", {y}, {}, a}), x));
  expect_error({"SpaceToDepth", {random_tensor(DType::kFloat32, {1, 2, 3, 4})}, {}, a}, {"divisible"});
}

}  // namespace
}  // namespace kiln::test
