// Comparison, logic and bitwise ops against naive broadcasting.
#include "elementwise_test_util.hpp"

namespace kiln::test {
namespace {

using Fn = std::function<double(const std::vector<double>&)>;

TEST(Logic, ComparisonsBroadcastForNumericDtypes) {
  const std::vector<std::pair<const char*, Fn>> cmps = {
      {"Equal", [](const std::vector<double>& v) { return double(v[0] == v[1]); }},
      {"Less", [](const std::vector<double>& v) { return double(v[0] < v[1]); }},
      {"LessOrEqual", [](const std::vector<double>& v) { return double(v[0] <= v[1]); }},
      {"Greater", [](const std::vector<double>& v) { return double(v[0] > v[1]); }},
      {"GreaterOrEqual", [](const std::vector<double>& v) { return double(v[0] >= v[1]); }},
  };
  std::vector<DType> dts = float_dtypes();
  for (DType t : int_dtypes()) dts.push_back(t);
  uint32_t seed = 800;
  for (DType dt : dts) {
    // Small integer-valued ranges so that equal elements occur.
    Tensor a = naive_map({2, 3, 4}, {random_tensor(dt, {2, 3, 4}, seed++, 0, 4)}, dt,
                         [](const std::vector<double>& v) { return std::floor(v[0]); });
    Tensor b = naive_map({3, 1}, {random_tensor(dt, {3, 1}, seed++, 0, 4)}, dt,
                         [](const std::vector<double>& v) { return std::floor(v[0]); });
    for (const auto& [op, ref] : cmps) {
      Tensor y = run1({op, {a, b}});
      EXPECT_EQ(y.dtype(), DType::kBool);
      EXPECT_TRUE(tensors_close(y, naive_map({2, 3, 4}, {a, b}, DType::kBool, ref), 0, 0))
          << op << " " << dtype_name(dt);
    }
  }
  const float nan = std::nanf("");
  Tensor x = Tensor::from_vector<float>({2}, {nan, 1.f});
  EXPECT_EQ(run1({"Equal", {x, x}}).to_double_vector(), (std::vector<double>{0, 1}));
  Tensor bools = Tensor::from_vector<bool>({3}, {true, false, true});
  EXPECT_EQ(run1({"Equal", {bools, Tensor::scalar<bool>(true)}}).to_double_vector(), (std::vector<double>{1, 0, 1}));
}

TEST(Logic, AndOrXorNot) {
  Tensor a = random_tensor(DType::kBool, {4, 1, 3}, 3), b = random_tensor(DType::kBool, {5, 1}, 4);
  Dims od{4, 5, 3};
  const std::vector<std::pair<const char*, Fn>> ops = {
      {"And", [](const std::vector<double>& v) { return double(v[0] != 0 && v[1] != 0); }},
      {"Or", [](const std::vector<double>& v) { return double(v[0] != 0 || v[1] != 0); }},
      {"Xor", [](const std::vector<double>& v) { return double((v[0] != 0) != (v[1] != 0)); }},
  };
  for (const auto& [op, ref] : ops)
    EXPECT_TRUE(tensors_close(run1({op, {a, b}}), naive_map(od, {a, b}, DType::kBool, ref), 0, 0)) << op;
  EXPECT_TRUE(tensors_close(run1({"Not", {a}}), naive_map(a.dims(), {a}, DType::kBool, [](const std::vector<double>& v) {
                              return double(v[0] == 0);
                            }), 0, 0));
  EXPECT_EQ(run_err({"And", {random_tensor(DType::kInt32, {2}), random_tensor(DType::kInt32, {2})}}).code(),
            StatusCode::kUnsupported);
}

TEST(Logic, BitwiseOpsForEveryIntDtype) {
  uint32_t seed = 900;
  for (DType dt : int_dtypes()) {
    Tensor a = random_tensor(dt, {3, 4}, seed++, is_signed_integer(dt) ? -100 : 0, 100);
    Tensor b = random_tensor(dt, {4}, seed++, is_signed_integer(dt) ? -100 : 0, 100);
    auto ints = [](const std::vector<double>& v, size_t i) { return static_cast<int64_t>(v[i]); };
    const std::vector<std::pair<const char*, Fn>> ops = {
        {"BitwiseAnd", [&](const std::vector<double>& v) { return double(ints(v, 0) & ints(v, 1)); }},
        {"BitwiseOr", [&](const std::vector<double>& v) { return double(ints(v, 0) | ints(v, 1)); }},
        {"BitwiseXor", [&](const std::vector<double>& v) { return double(ints(v, 0) ^ ints(v, 1)); }},
    };
    for (const auto& [op, ref] : ops)
      EXPECT_TRUE(tensors_close(run1({op, {a, b}}), naive_map({3, 4}, {a, b}, dt, ref), 0, 0)) << op << " " << dtype_name(dt);
    // ~x as two's complement, then wrapped into the dtype by the reference's integer cast.
    Tensor want = Tensor::from_vector<int64_t>({3, 4}, [&] {
                    std::vector<int64_t> v;
                    for (double d : a.to_double_vector()) v.push_back(~static_cast<int64_t>(d));
                    return v;
                  }()).cast(dt);
    EXPECT_TRUE(tensors_close(run1({"BitwiseNot", {a}}), want, 0, 0)) << dtype_name(dt);
  }
  EXPECT_EQ(run_err({"BitwiseAnd", {random_tensor(DType::kFloat32, {2}), random_tensor(DType::kFloat32, {2})}}).code(),
            StatusCode::kUnsupported);
}

TEST(Logic, BitShiftBothDirections) {
  Attributes left, right;
  left.set("direction", std::string("LEFT"));
  right.set("direction", std::string("RIGHT"));
  Tensor x = Tensor::from_vector<uint8_t>({4}, {16, 4, 1, 255});
  Tensor s = Tensor::from_vector<uint8_t>({4}, {1, 2, 3, 8});
  EXPECT_EQ(run1({"BitShift", {x, s}, {}, left}).to_double_vector(), (std::vector<double>{32, 16, 8, 0}));
  EXPECT_EQ(run1({"BitShift", {x, s}, {}, right}).to_double_vector(), (std::vector<double>{8, 1, 0, 0}));
  Tensor x64 = Tensor::from_vector<uint64_t>({2, 2}, {1, 3, 5, 7});
  Tensor s64 = Tensor::from_vector<uint64_t>({2}, {63, 1});
  auto v = run1({"BitShift", {x64, s64}, {}, left});
  EXPECT_EQ(v.data<uint64_t>()[0], uint64_t{1} << 63);
  EXPECT_EQ(v.data<uint64_t>()[1], 6u);
  EXPECT_EQ(v.data<uint64_t>()[2], uint64_t{1} << 63);
  EXPECT_EQ(v.data<uint64_t>()[3], 14u);
  for (DType dt : {DType::kUInt16, DType::kUInt32}) {
    Tensor a = random_tensor(dt, {10}, 5, 0, 1000), b = random_tensor(dt, {}, 6, 0, 5);
    Tensor want = naive_map({10}, {a, b}, dt, [](const std::vector<double>& p) {
      return double(static_cast<uint64_t>(p[0]) >> static_cast<uint64_t>(p[1]));
    });
    EXPECT_TRUE(tensors_close(run1({"BitShift", {a, b}, {}, right}), want, 0, 0)) << dtype_name(dt);
  }
}

TEST(Logic, Errors) {
  Tensor x = Tensor::from_vector<uint8_t>({2}, {1, 2});
  Status st = run_err({"BitShift", {x, x}});  // direction is required
  EXPECT_TRUE(contains(st.message(), "BitShift_node") && contains(st.message(), "direction")) << st.message();
  st = run_err({"Less", {random_tensor(DType::kFloat32, {2, 3}), random_tensor(DType::kInt64, {2, 3})}});
  EXPECT_TRUE(contains(st.message(), "Less_node") && contains(st.message(), "int64")) << st.message();
  st = run_err({"Equal", {random_tensor(DType::kFloat32, {2, 3}), random_tensor(DType::kFloat32, {2, 2})}});
  EXPECT_TRUE(contains(st.message(), "Equal_node")) << st.message();
}

}  // namespace
}  // namespace kiln::test
