// ArgMax/ArgMin against a naive scan; ties, select_last_index, keepdims, negative axes, dtypes.
#include <algorithm>
#include <cmath>

#include "op_test_util.hpp"

namespace kiln::test {
namespace {

// Index of the first/last extreme element of each slice along `axis` (keepdims=1 layout).
std::vector<int64_t> naive_arg(const Tensor& x, int axis, bool is_max, bool last) {
  const Dims& d = x.dims();
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= d[static_cast<size_t>(i)];
  for (size_t i = static_cast<size_t>(axis) + 1; i < d.size(); ++i) inner *= d[i];
  const int64_t n = d[static_cast<size_t>(axis)];
  auto v = x.to_double_vector();
  std::vector<int64_t> out;
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      std::vector<double> slice;
      for (int64_t k = 0; k < n; ++k) slice.push_back(v[static_cast<size_t>((o * n + k) * inner + i)]);
      double ext = is_max ? *std::max_element(slice.begin(), slice.end())
                          : *std::min_element(slice.begin(), slice.end());
      auto pos = last ? slice.rend() - std::find(slice.rbegin(), slice.rend(), ext) - 1
                      : std::find(slice.begin(), slice.end(), ext) - slice.begin();
      out.push_back(pos);
    }
  }
  return out;
}

Attributes arg_attrs(int64_t axis, int64_t keepdims, int64_t last) {
  Attributes a;
  a.set("axis", axis);
  a.set("keepdims", keepdims);
  a.set("select_last_index", last);
  return a;
}

TEST(ArgReduce, MatchesNaiveWithTies) {
  const Dims dims = {3, 4, 5};
  // Integers in [0, 3) give many ties.
  Tensor xf = random_tensor(DType::kFloat32, dims, 4, 0.0, 3.0).cast(DType::kInt32).cast(DType::kFloat32);
  for (const char* op : {"ArgMax", "ArgMin"}) {
    for (int64_t axis : {0, 1, 2, -1, -3}) {
      for (int64_t keep : {0, 1}) {
        for (int64_t last : {0, 1}) {
          auto out = run_op({.op_type = op, .inputs = {xf}, .attrs = arg_attrs(axis, keep, last)});
          ASSERT_TRUE(out.ok()) << out.status().message();
          const int ax = static_cast<int>(axis < 0 ? axis + 3 : axis);
          Dims want_dims = dims;
          if (keep) want_dims[static_cast<size_t>(ax)] = 1;
          else want_dims.erase(want_dims.begin() + ax);
          const Tensor& y = out->at(0);
          ASSERT_EQ(y.dtype(), DType::kInt64);
          ASSERT_EQ(y.dims(), want_dims);
          auto want = naive_arg(xf, ax, std::string(op) == "ArgMax", last);
          std::vector<int64_t> got(y.data<int64_t>(), y.data<int64_t>() + y.numel());
          EXPECT_EQ(got, want) << op << " axis " << axis << " keepdims " << keep << " last " << last;
        }
      }
    }
  }
}

TEST(ArgReduce, Dtypes) {
  for (DType dt : {DType::kFloat16, DType::kBFloat16, DType::kFloat64, DType::kInt8, DType::kUInt8,
                   DType::kInt64, DType::kUInt32}) {
    Tensor x = random_tensor(dt, {4, 6}, 9, 0.0, 5.0);
    for (int64_t last : {0, 1}) {
      auto out = run_op({.op_type = "ArgMin", .inputs = {x}, .attrs = arg_attrs(1, 0, last)});
      ASSERT_TRUE(out.ok()) << dtype_name(dt) << ": " << out.status().message();
      auto want = naive_arg(x, 1, false, last);
      std::vector<int64_t> got(out->at(0).data<int64_t>(), out->at(0).data<int64_t>() + 4);
      EXPECT_EQ(got, want) << dtype_name(dt);
    }
  }
  auto b = run_op({.op_type = "ArgMax", .inputs = {Tensor::from_vector<bool>({2}, {false, true})}});
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kUnsupported);
}

TEST(ArgReduce, NaNIsTheExtreme) {
  Tensor x = Tensor::from_vector<float>({5}, {1.f, NAN, 7.f, NAN, -3.f});
  for (const char* op : {"ArgMax", "ArgMin"}) {
    auto first = run_op({.op_type = op, .inputs = {x}, .attrs = arg_attrs(0, 0, 0)});
    ASSERT_TRUE(first.ok());
    EXPECT_EQ(first->at(0).data<int64_t>()[0], 1) << op;
    auto last = run_op({.op_type = op, .inputs = {x}, .attrs = arg_attrs(0, 0, 1)});
    ASSERT_TRUE(last.ok());
    EXPECT_EQ(last->at(0).data<int64_t>()[0], 3) << op;
  }
}

TEST(ArgReduce, ErrorsNameTheNode) {
  Tensor x = random_tensor(DType::kFloat32, {2, 3}, 1);
  auto bad = run_op({.op_type = "ArgMax", .inputs = {x}, .attrs = arg_attrs(2, 1, 0)});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("ArgMax_node"), std::string::npos) << bad.status().message();
  EXPECT_NE(bad.status().message().find("axis 2 is out of range"), std::string::npos);
  auto neg = run_op({.op_type = "ArgMin", .inputs = {x}, .attrs = arg_attrs(-3, 1, 0)});
  ASSERT_FALSE(neg.ok());
  EXPECT_NE(neg.status().message().find("ArgMin_node"), std::string::npos);
  auto empty = run_op({.op_type = "ArgMax", .inputs = {Tensor(DType::kFloat32, {2, 0})}, .attrs = arg_attrs(1, 1, 0)});
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("size 0"), std::string::npos) << empty.status().message();
}

}  // namespace
}  // namespace kiln::test
