// Pad (all modes, negative pads, axes input) and CenterCropPad against numpy-style references.
#include "tensorops_test_util.hpp"

namespace kiln::test {
namespace {

// numpy.pad's index rule for one axis; `n` source elements, out-of-range index q.
int64_t np_index(int64_t q, int64_t n, const std::string& mode) {
  if (q >= 0 && q < n) return q;
  if (mode == "constant") return -1;
  if (mode == "edge") return q < 0 ? 0 : n - 1;
  if (mode == "wrap") return ((q % n) + n) % n;
  // reflect: bounce between the ends until inside
  if (n == 1) return 0;
  while (q < 0 || q >= n) q = q < 0 ? -q : 2 * (n - 1) - q;
  return q;
}

// Crop by the negative pads, then pad by the positive ones.
Tensor naive_pad(const Tensor& x, const std::vector<int64_t>& begin, const std::vector<int64_t>& end,
                 const std::string& mode, const void* fill) {
  Dims out;
  for (size_t k = 0; k < begin.size(); ++k) out.push_back(x.dims()[k] + begin[k] + end[k]);
  return map_tensor(x, out, [&](const std::vector<int64_t>& o) -> std::optional<std::vector<int64_t>> {
    std::vector<int64_t> s(o.size());
    for (size_t k = 0; k < o.size(); ++k) {
      int64_t lo = std::max<int64_t>(0, -begin[k]);
      int64_t n = x.dims()[k] - lo - std::max<int64_t>(0, -end[k]);
      int64_t q = np_index(o[k] - std::max<int64_t>(0, begin[k]), n, mode);
      if (q < 0) return std::nullopt;
      s[k] = q + lo;
    }
    return s;
  }, fill);
}

TEST(Pad, ModesAndLargePads) {
  for (std::string mode : {"constant", "reflect", "edge", "wrap"}) {
    for (DType t : {DType::kFloat32, DType::kInt64, DType::kFloat16}) {
      Tensor x = random_tensor(t, {2, 3, 4}, 1);
      std::vector<int64_t> b = {0, 2, 5}, e = {1, 4, 1};
      Attributes a;
      a.set("mode", mode);
      std::vector<int64_t> pads = b;
      pads.insert(pads.end(), e.begin(), e.end());
      Tensor y = run1({"Pad", {x, i64v(pads)}, {}, a});
      EXPECT_TRUE(tensors_equal(y, naive_pad(x, b, e, mode, nullptr))) << mode << " " << dtype_name(t);
    }
  }
}

TEST(Pad, ConstantValueNegativePadsAndAxes) {
  Tensor x = random_tensor(DType::kFloat32, {4, 5}, 2);
  Tensor v = Tensor::scalar<float>(1.25f);
  float fill = 1.25f;
  Tensor y = run1({"Pad", {x, i64v({-1, 2, 1, -2}), v}});
  EXPECT_TRUE(tensors_equal(y, naive_pad(x, {-1, 2}, {1, -2}, "constant", &fill)));
  // An empty constant_value means 0.
  y = run1({"Pad", {x, i64v({1, 0, 0, 0}), Tensor(DType::kFloat32, {0})}});
  EXPECT_TRUE(tensors_equal(y, naive_pad(x, {1, 0}, {0, 0}, "constant", nullptr)));
  // Only axis -1 padded, via the axes input.
  y = run1({"Pad", {x, i64v({1, 3}), v, i64v({-1})}});
  EXPECT_TRUE(tensors_equal(y, naive_pad(x, {0, 1}, {0, 3}, "constant", &fill)));
  // reflect after cropping: the reflection is of what is left.
  Attributes a;
  a.set("mode", std::string("reflect"));
  y = run1({"Pad", {x, i64v({0, -2, 0, 3})}, {}, a});
  EXPECT_TRUE(tensors_equal(y, naive_pad(x, {0, -2}, {0, 3}, "reflect", nullptr)));
  // Empty input: constant padding of an empty axis works.
  Tensor e(DType::kFloat32, {0, 2});
  y = run1({"Pad", {e, i64v({1, 0, 1, 0}), v}});
  EXPECT_TRUE(tensors_equal(y, Tensor::from_vector<float>({2, 2}, {fill, fill, fill, fill})));
}

TEST(Pad, Errors) {
  Tensor x = random_tensor(DType::kFloat32, {4, 5}, 3);
  expect_error({"Pad", {x, i64v({1, 1})}}, {"pads has 2 values", "expected 4"});
  expect_error({"Pad", {x, i64v({-3, 0, -2, 0})}}, {"remove more"});
  expect_error({"Pad", {x, i64v({1, 0, 1, 0}), Tensor::scalar<int64_t>(1)}}, {"constant_value has dtype int64"});
  Attributes a;
  a.set("mode", std::string("mirror"));
  expect_error({"Pad", {x, i64v({1, 0, 1, 0})}, {}, a}, {"mode"});
  a.set("mode", std::string("edge"));
  expect_error({"Pad", {Tensor(DType::kFloat32, {0, 2}), i64v({1, 0, 1, 0})}, {}, a}, {"no elements"});
  auto r = infer_op("Pad", {ttype(DType::kFloat32, {Dim::symbolic("n"), 5}), i64v({0, 1, 0, 1})});
  EXPECT_EQ(r.outputs[0].to_string(), "float32[n,7]");
}

TEST(CenterCropPad, CropsAndPadsCentered) {
  Tensor x = random_tensor(DType::kFloat32, {5, 4, 3}, 4);
  // axis 0: 5 -> 2 (crop begin 1), axis 1: 4 -> 7 (pad begin 1, end 2), axis 2 kept.
  Tensor y = run1({"CenterCropPad", {x, i64v({2, 7, 3})}});
  EXPECT_TRUE(tensors_equal(y, naive_pad(x, {-1, 1, 0}, {-2, 2, 0}, "constant", nullptr)));
  Attributes a;
  a.set("axes", std::vector<int64_t>{-2});
  y = run1({"CenterCropPad", {x, i64v({1})}, {}, a});
  EXPECT_TRUE(tensors_equal(y, naive_pad(x, {0, -1, 0}, {0, -2, 0}, "constant", nullptr)));
  expect_error({"CenterCropPad", {x, i64v({1, 2})}}, {"shape has 2 values"});
}

}  // namespace
}  // namespace kiln::test
