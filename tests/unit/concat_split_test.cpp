// Concat and Split along negative and positive axes, with empty parts.
#include "tensorops_test_util.hpp"

namespace kiln::test {
namespace {

TEST(Concat, AxesAndDtypes) {
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kInt64, DType::kUInt8}) {
    Tensor a = random_tensor(t, {2, 3, 4}, 1), b = random_tensor(t, {2, 1, 4}, 2), c = random_tensor(t, {2, 2, 4}, 3);
    for (int64_t axis : {1, -2}) {
      Attributes at;
      at.set("axis", axis);
      Tensor ref(t, {2, 6, 4});
      const size_t es = dtype_size(t);
      for (int64_t i = 0; i < ref.numel(); ++i) {
        auto o = unravel(i, ref.dims());
        const Tensor& src = o[1] < 3 ? a : o[1] < 4 ? b : c;
        o[1] -= o[1] < 3 ? 0 : o[1] < 4 ? 3 : 4;
        std::memcpy(static_cast<char*>(ref.raw_data()) + i * es,
                    static_cast<const char*>(src.raw_data()) + ravel(o, src.dims()) * es, es);
      }
      EXPECT_TRUE(tensors_equal(run1({"Concat", {a, b, c}, {}, at}), ref)) << dtype_name(t) << axis;
    }
  }
}

TEST(Concat, EmptyInputsAndErrors) {
  Tensor a = random_tensor(DType::kFloat32, {2, 3}, 4), e(DType::kFloat32, {0, 3});
  Attributes at;
  at.set("axis", int64_t{0});
  EXPECT_TRUE(tensors_equal(run1({"Concat", {e, a, e}, {}, at}), a));
  expect_error({"Concat", {a, random_tensor(DType::kFloat32, {2, 4})}, {}, at}, {"[2,4]", "differs"});
  expect_error({"Concat", {a, random_tensor(DType::kFloat32, {2, 3, 1})}, {}, at}, {"rank"});
  expect_error({"Concat", {a, random_tensor(DType::kInt32, {2, 3})}, {}, at}, {"dtypes"});
  expect_error({"Concat", {a, a}}, {"axis is required"});
  at.set("axis", int64_t{2});
  expect_error({"Concat", {a, a}, {}, at}, {"out of range"});
}

TEST(Concat, SymbolicDimsAndFolding) {
  Attributes at;
  at.set("axis", int64_t{1});
  auto r = infer_op("Concat", {ttype(DType::kFloat32, {Dim::symbolic("n"), 3}), ttype(DType::kFloat32, {Dim(), 5})}, at);
  EXPECT_EQ(r.outputs[0].to_string(), "float32[n,8]");
  at.set("axis", int64_t{0});
  r = infer_op("Concat", {i64v({1, 2}), i64v({-1})}, at);
  ASSERT_TRUE(r.values[0].has_value());
  EXPECT_TRUE(tensors_equal(*r.values[0], i64v({1, 2, -1})));
}

std::vector<Tensor> run_all(const OpCall& call) {
  auto r = run_op(call);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? *r : std::vector<Tensor>{};
}

Tensor slice_axis(const Tensor& x, int64_t axis, int64_t begin, int64_t len) {
  Dims d = x.dims();
  d[static_cast<size_t>(axis)] = len;
  return map_tensor(x, d, [&](std::vector<int64_t> o) {
    o[static_cast<size_t>(axis)] += begin;
    return std::optional(o);
  });
}

TEST(Split, SplitInputNumOutputsAndEqualParts) {
  Tensor x = random_tensor(DType::kFloat16, {2, 7, 3}, 5);
  OpCall c{"Split", {x, i64v({2, 0, 5})}};
  c.num_outputs = 3;
  c.attrs.set("axis", int64_t{-2});
  auto outs = run_all(c);
  ASSERT_EQ(outs.size(), 3u);
  EXPECT_TRUE(tensors_equal(outs[0], slice_axis(x, 1, 0, 2)));
  EXPECT_TRUE(tensors_equal(outs[1], slice_axis(x, 1, 2, 0)));
  EXPECT_TRUE(tensors_equal(outs[2], slice_axis(x, 1, 2, 5)));

  OpCall n{"Split", {x}};  // num_outputs=3 on 7: 3, 3, 1
  n.num_outputs = 3;
  n.attrs.set("axis", int64_t{1});
  n.attrs.set("num_outputs", int64_t{3});
  outs = run_all(n);
  ASSERT_EQ(outs.size(), 3u);
  EXPECT_TRUE(tensors_equal(outs[0], slice_axis(x, 1, 0, 3)));
  EXPECT_TRUE(tensors_equal(outs[2], slice_axis(x, 1, 6, 1)));

  OpCall z{"Split", {x, i64({0}, {})}};  // an empty split input is no split: 7 -> 4, 3
  z.num_outputs = 2;
  z.attrs.set("axis", int64_t{1});
  outs = run_all(z);
  ASSERT_EQ(outs.size(), 2u);
  EXPECT_TRUE(tensors_equal(outs[1], slice_axis(x, 1, 4, 3)));

  OpCall e{"Split", {x}};  // no split, no num_outputs: equal parts over the outputs
  e.num_outputs = 2;
  outs = run_all(e);
  ASSERT_EQ(outs.size(), 2u);
  EXPECT_TRUE(tensors_equal(outs[1], slice_axis(x, 0, 1, 1)));
}

TEST(Split, Errors) {
  Tensor x = random_tensor(DType::kInt64, {6}, 6);
  OpCall c{"Split", {x, i64v({2, 3})}};
  c.num_outputs = 2;
  expect_error(c, {"sums to 5", "size 6"});
  c.inputs[1] = i64v({2, 2, 2});
  expect_error(c, {"3 values", "2 outputs"});
  OpCall n{"Split", {x}};
  n.num_outputs = 2;
  n.attrs.set("num_outputs", int64_t{3});
  expect_error(n, {"num_outputs is 3"});
  OpCall k{"Split", {random_tensor(DType::kInt64, {5})}};  // ceil(5/4)=2: 2,2,2,-1 is impossible
  k.num_outputs = 4;
  expect_error(k, {"cannot be split into 4 parts"});
}

}  // namespace
}  // namespace kiln::test
