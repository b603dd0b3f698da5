// Slice: clamping, negative steps and axes, INT64 extremes, defaults.
#include "tensorops_test_util.hpp"

namespace kiln::test {
namespace {

// The indices one axis keeps, enumerated one by one (the spec's clamping: start to [0, dim-1] and
// end to [-1, dim-1] when stepping backwards).
std::vector<int64_t> py_slice(int64_t dim, int64_t start, int64_t end, int64_t step) {
  std::vector<int64_t> out;
  auto norm = [dim](int64_t v) { return v < 0 ? std::max<int64_t>(v + dim, -1) : v; };
  int64_t s = start < 0 ? start + dim : start, e = end < 0 ? end + dim : end;
  if (step > 0) {
    s = std::clamp<int64_t>(s, 0, dim);
    e = std::clamp<int64_t>(e, 0, dim);
    for (int64_t i = s; i < e; i += step) out.push_back(i);
  } else {
    s = std::clamp<int64_t>(s, 0, dim - 1);
    e = std::clamp<int64_t>(norm(end), -1, dim - 1);
    for (int64_t i = s; i > e; i += step) out.push_back(i);
  }
  return out;
}

Tensor naive_slice(const Tensor& x, const std::vector<std::array<int64_t, 4>>& specs) {  // axis, start, end, step
  std::vector<std::vector<int64_t>> picks;
  Dims dims = x.dims();
  for (int64_t d : dims) {
    std::vector<int64_t> all(static_cast<size_t>(d));
    std::iota(all.begin(), all.end(), 0);
    picks.push_back(all);
  }
  for (const auto& s : specs) {
    size_t a = static_cast<size_t>(s[0] < 0 ? s[0] + x.rank() : s[0]);
    picks[a] = py_slice(dims[a], s[1], s[2], s[3]);
    dims[a] = static_cast<int64_t>(picks[a].size());
  }
  return map_tensor(x, dims, [&](const std::vector<int64_t>& o) {
    std::vector<int64_t> src(o.size());
    for (size_t k = 0; k < o.size(); ++k) src[k] = picks[k][static_cast<size_t>(o[k])];
    return std::optional(src);
  });
}

OpCall slice_call(const Tensor& x, const std::vector<std::array<int64_t, 4>>& specs) {
  std::vector<int64_t> st, en, ax, sp;
  for (const auto& s : specs) {
    ax.push_back(s[0]);
    st.push_back(s[1]);
    en.push_back(s[2]);
    sp.push_back(s[3]);
  }
  return {"Slice", {x, i64v(st), i64v(en), i64v(ax), i64v(sp)}};
}

TEST(Slice, ClampingNegativeStepsAndExtremes) {
  const int64_t kMax = INT64_MAX, kMin = INT64_MIN;
  Tensor x = random_tensor(DType::kFloat32, {5, 6, 7}, 1);
  const std::vector<std::vector<std::array<int64_t, 4>>> cases = {
      {{0, 1, 4, 1}},
      {{1, 0, kMax, 2}, {2, -3, kMax, 1}},
      {{-1, kMax, kMin, -1}},           // full reverse
      {{-1, -1, kMin, -3}},             // reverse with a step
      {{0, 10, 20, 1}},                 // start past the end: empty
      {{1, -100, 3, 1}},                // clamped start
      {{1, -100, kMin, -1}},            // clamped to index 0 going backwards
      {{2, 5, 1, -2}, {0, 4, -10, -1}},
      {{1, 2, 2, 1}},                   // empty
      {{0, 0, kMax, kMax}},             // huge step: one element
      {{2, 6, kMin, kMin}},             // huge negative step: one element
  };
  for (const auto& spec : cases) {
    EXPECT_TRUE(tensors_equal(run1(slice_call(x, spec)), naive_slice(x, spec)))
        << fmt::format("axis {} start {} end {} step {}", spec[0][0], spec[0][1], spec[0][2], spec[0][3]);
  }
}

TEST(Slice, DefaultAxesAndStepsDtypes) {
  for (DType t : {DType::kFloat16, DType::kInt64, DType::kBool}) {
    Tensor x = random_tensor(t, {4, 5}, 2);
    Tensor y = run1({"Slice", {x, i64v({1, -4}), i64v({3, 5})}});
    EXPECT_TRUE(tensors_equal(y, naive_slice(x, {{0, 1, 3, 1}, {1, -4, 5, 1}}))) << dtype_name(t);
  }
  Tensor x = random_tensor(DType::kFloat32, {4, 5}, 3);
  Tensor y = run1({"Slice", {x, Tensor::from_vector<int32_t>({1}, {1}), Tensor::from_vector<int32_t>({1}, {-1}),
                             Tensor::from_vector<int32_t>({1}, {-1})}});
  EXPECT_TRUE(tensors_equal(y, naive_slice(x, {{1, 1, -1, 1}})));
}

TEST(Slice, Errors) {
  Tensor x = random_tensor(DType::kFloat32, {4, 5}, 4);
  expect_error({"Slice", {x, i64v({0}), i64v({1}), i64v({0}), i64v({0})}}, {"step of axis 0 is 0"});
  expect_error({"Slice", {x, i64v({0}), i64v({1}), i64v({2})}}, {"axis 2 is out of range"});
  expect_error({"Slice", {x, i64v({0, 0}), i64v({1, 1}), i64v({1, -1})}}, {"sliced twice"});
  expect_error({"Slice", {x, i64v({0}), i64v({1, 2})}}, {"one length"});
}

TEST(Slice, InferenceKeepsSymbolicDimsAndFolds) {
  auto r = infer_op("Slice", {ttype(DType::kFloat32, {Dim::symbolic("n"), 10}), i64v({2}), i64v({-1}), i64v({1})});
  EXPECT_EQ(r.outputs[0].to_string(), "float32[n,7]");
  r = infer_op("Slice", {ttype(DType::kFloat32, {Dim::symbolic("n"), 10}), i64v({1}), i64v({INT64_MAX}), i64v({0})});
  EXPECT_EQ(r.outputs[0].to_string(), "float32[?,10]");
  r = infer_op("Slice", {ttype(DType::kFloat32, {Dim::symbolic("n"), 10}), ttype(DType::kInt64, {1}),
                         ttype(DType::kInt64, {1}), i64v({1})});
  EXPECT_EQ(r.outputs[0].to_string(), "float32[n,?]");
  r = infer_op("Slice", {i64v({8, 3, 224, 224}), i64v({-2}), i64v({INT64_MAX})});
  ASSERT_TRUE(r.values[0].has_value());
  EXPECT_TRUE(tensors_equal(*r.values[0], i64v({224, 224})));
}

}  // namespace
}  // namespace kiln::test
