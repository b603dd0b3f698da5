// Trilu, OneHot, ReverseSequence.
#include "tensorops_test_util.hpp"

namespace kiln::test {
namespace {

TEST(Trilu, UpperLowerWithK) {
  Tensor x = random_tensor(DType::kFloat32, {2, 3, 5}, 1);
  for (int upper : {0, 1}) {
    for (int64_t k : {-4, -1, 0, 2, 6}) {
      Tensor want = map_tensor(x, x.dims(), [&](const std::vector<int64_t>& o) -> std::optional<std::vector<int64_t>> {
        bool keep = upper ? o[2] - o[1] >= k : o[2] - o[1] <= k;
        if (!keep) return std::nullopt;
        return o;
      });
      OpCall c{"Trilu", {x, Tensor::scalar<int64_t>(k)}};
      c.attrs.set("upper", int64_t{upper});
      EXPECT_TRUE(tensors_equal(run1(c), want)) << upper << " " << k;
    }
  }
  Tensor i = random_tensor(DType::kInt64, {4, 4}, 2, -9, 9);
  Tensor want = map_tensor(i, i.dims(), [](const std::vector<int64_t>& o) -> std::optional<std::vector<int64_t>> {
    if (o[1] < o[0]) return std::nullopt;
    return o;
  });
  EXPECT_TRUE(tensors_equal(run1({"Trilu", {i}}), want));
  EXPECT_EQ(run1({"Trilu", {Tensor(DType::kFloat32, {0, 3})}}).dims(), (Dims{0, 3}));
  expect_error({"Trilu", {random_tensor(DType::kFloat32, {3})}}, {"rank >= 2"});
}

TEST(OneHot, AxesNegativeIndicesAndValueTypes) {
  Tensor idx = Tensor::from_vector<float>({2, 2}, {1.f, -1.f, 3.f, 7.f});  // 7 is out of range: all off
  Tensor values = i64v({-5, 9});
  for (int64_t axis : {-1, 0, 1}) {
    const int64_t ax = axis < 0 ? axis + 3 : axis;
    Dims od = {2, 2};
    od.insert(od.begin() + ax, 4);
    std::vector<int64_t> want;
    for (int64_t i = 0; i < dims_numel(od); ++i) {
      auto o = unravel(i, od);
      int64_t d = o[static_cast<size_t>(ax)];
      o.erase(o.begin() + ax);
      int64_t v = static_cast<int64_t>(idx.data<float>()[o[0] * 2 + o[1]]);
      if (v < 0) v += 4;
      want.push_back(v == d ? 9 : -5);
    }
    OpCall c{"OneHot", {idx, Tensor::scalar<int64_t>(4), values}};
    c.attrs.set("axis", axis);
    EXPECT_TRUE(tensors_equal(run1(c), i64(od, want))) << axis;
  }
  OpCall bad{"OneHot", {idx, Tensor::scalar<int64_t>(4), values}};
  bad.attrs.set("axis", int64_t{3});
  expect_error(bad, {"axis 3"});
  expect_error({"OneHot", {idx, Tensor::scalar<int64_t>(4), i64v({1, 2, 3})}}, {"2 elements"});
  auto r = infer_op("OneHot", {ttype(DType::kInt64, {Dim::symbolic("n")}), Tensor::scalar<int64_t>(10),
                               Tensor::from_vector<Half>({2}, {Half(0.f), Half(1.f)})});
  EXPECT_EQ(r.outputs[0].to_string(), "float16[n,10]");
}

TEST(ReverseSequence, BatchAndTimeMajor) {
  Tensor x = random_tensor(DType::kFloat32, {4, 3, 2}, 3);
  Tensor lens = i64v({4, 1, 2});
  for (int64_t batch_axis : {1, 0}) {
    Tensor in = batch_axis == 1 ? x : random_tensor(DType::kFloat32, {3, 4, 2}, 4);
    OpCall c{"ReverseSequence", {in, lens}};
    c.attrs.set("batch_axis", batch_axis);
    c.attrs.set("time_axis", 1 - batch_axis);
    Tensor want = map_tensor(in, in.dims(), [&](std::vector<int64_t> o) {
      int64_t& t = o[static_cast<size_t>(1 - batch_axis)];
      int64_t len = lens.data<int64_t>()[o[static_cast<size_t>(batch_axis)]];
      if (t < len) t = len - 1 - t;
      return std::optional(o);
    });
    EXPECT_TRUE(tensors_equal(run1(c), want)) << batch_axis;
  }
  expect_error({"ReverseSequence", {x, i64v({5, 1, 1})}}, {"outside [0, 4]"});
  OpCall bad{"ReverseSequence", {x, lens}};
  bad.attrs.set("batch_axis", int64_t{2});
  expect_error(bad, {"batch_axis"});
}

}  // namespace
}  // namespace kiln::test
