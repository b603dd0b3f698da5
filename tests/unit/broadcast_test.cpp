// The CPU broadcasting utility: layout collapsing and broadcast_map against naive indexing.
#include "backends/cpu/broadcast.hpp"

#include "elementwise_test_util.hpp"

namespace kiln::test {
namespace {

using cpu::BroadcastLayout;
using cpu::make_broadcast_layout;

TEST(Broadcast, SameShapeCollapsesToOneContiguousDim) {
  Dims d{2, 3, 4};
  BroadcastLayout<2> l;
  ASSERT_TRUE(make_broadcast_layout<2>(d, {&d, &d}, l));
  EXPECT_EQ(l.shape, (Dims{24}));
  EXPECT_EQ(l.strides[0], (Dims{1}));
  EXPECT_EQ(l.strides[1], (Dims{1}));
}

TEST(Broadcast, ScalarOperandHasStrideZero) {
  Dims out{2, 3, 4}, scalar{}, one{1, 1};
  BroadcastLayout<3> l;
  ASSERT_TRUE(make_broadcast_layout<3>(out, {&out, &scalar, &one}, l));
  EXPECT_EQ(l.shape, (Dims{24}));
  EXPECT_EQ(l.strides[1], (Dims{0}));
  EXPECT_EQ(l.strides[2], (Dims{0}));
}

TEST(Broadcast, MergesOnlyDimsWalkedAlike) {
  // b = [3, 1] against [2, 3, 4]: dims 0 and (1, 2) cannot merge for b.
  Dims out{2, 3, 4}, b{3, 1};
  BroadcastLayout<2> l;
  ASSERT_TRUE(make_broadcast_layout<2>(out, {&out, &b}, l));
  EXPECT_EQ(l.shape, (Dims{2, 3, 4}));
  EXPECT_EQ(l.strides[0], (Dims{12, 4, 1}));
  EXPECT_EQ(l.strides[1], (Dims{0, 1, 0}));
  // Size-1 output dims are dropped: [1, 5, 1, 6] with a [5, 1, 6] operand is one dim of 30.
  Dims out2{1, 5, 1, 6}, c{5, 1, 6};
  BroadcastLayout<1> l2;
  ASSERT_TRUE(make_broadcast_layout<1>(out2, {&c}, l2));
  EXPECT_EQ(l2.shape, (Dims{30}));
}

TEST(Broadcast, RejectsIncompatibleShapes) {
  Dims out{2, 3}, bad{4}, too_long{1, 2, 3}, ok{3};
  BroadcastLayout<1> l;
  EXPECT_FALSE(make_broadcast_layout<1>(out, {&bad}, l));
  EXPECT_FALSE(make_broadcast_layout<1>(out, {&too_long}, l));
  EXPECT_TRUE(make_broadcast_layout<1>(out, {&ok}, l));
  Tensor a = random_tensor(DType::kFloat32, {2, 3}), b = random_tensor(DType::kFloat32, {4});
  Tensor o(DType::kFloat32, {2, 3});
  EXPECT_FALSE((cpu::broadcast_map<float, float, float>(o, {&a, &b}, [](float x, float y) { return x + y; })));
}

// Random shape pairs (incl. size-0 and size-1 dims) against the naive reference.
TEST(Broadcast, MapMatchesNaiveIndexing) {
  std::vector<std::pair<Dims, Dims>> cases = {
      {{}, {}},         {{5}, {}},           {{}, {2, 3}},          {{2, 3}, {2, 3}},
      {{2, 3}, {3}},    {{2, 1}, {1, 3}},    {{4, 1, 3}, {5, 1}},   {{2, 3, 4, 5}, {3, 1, 5}},
      {{1, 1, 7}, {6, 1}}, {{3, 0, 2}, {1, 2}}, {{2, 1, 2, 1, 2}, {2, 1, 2, 1}}, {{1}, {3, 1, 1}},
  };
  uint32_t seed = 7;
  for (const auto& [da, db] : cases) {
    Tensor a = random_tensor(DType::kFloat32, da, seed++);
    Tensor b = random_tensor(DType::kInt32, db, seed++, -50, 50);
    auto out_dims = broadcast_dims(da, db);
    ASSERT_TRUE(out_dims.ok());
    Tensor out(DType::kFloat64, *out_dims);
    ASSERT_TRUE((cpu::broadcast_map<double, float, int32_t>(
        out, {&a, &b}, [](float x, int32_t y) { return 3.0 * x - y; })));
    Tensor want = naive_map(*out_dims, {a, b}, DType::kFloat64,
                            [](const std::vector<double>& v) { return 3.0 * v[0] - v[1]; });
    EXPECT_TRUE(tensors_close(out, want, 1e-6, 1e-6))
        << dims_to_string(da) << " with " << dims_to_string(db);
  }
}

TEST(Broadcast, ThreeOperandsAndHalfComputedInFloat) {
  Tensor c = random_tensor(DType::kBool, {2, 1, 4}, 3);
  Tensor x = random_tensor(DType::kFloat16, {3, 1}, 4);
  Tensor y = random_tensor(DType::kFloat16, {4}, 5);
  Tensor out(DType::kFloat16, {2, 3, 4});
  ASSERT_TRUE((cpu::broadcast_map<Half, bool, Half, Half>(out, {&c, &x, &y}, [](bool k, auto a, auto b) {
    static_assert(std::is_same_v<decltype(a), float>);
    return k ? a : b;
  })));
  Tensor want = naive_map({2, 3, 4}, {c, x, y}, DType::kFloat16,
                          [](const std::vector<double>& v) { return v[0] != 0 ? v[1] : v[2]; });
  EXPECT_TRUE(tensors_close(out, want, 0, 0));
}

TEST(Broadcast, OutputMayAliasAnOperand) {
  Tensor acc = random_tensor(DType::kFloat32, {3, 4}, 11);
  Tensor before = acc.clone();
  Tensor b = random_tensor(DType::kFloat32, {4}, 12);
  ASSERT_TRUE((cpu::broadcast_map<float, float, float>(acc, {&acc, &b}, [](float x, float y) { return x * y; })));
  Tensor want = naive_map({3, 4}, {before, b}, DType::kFloat32,
                          [](const std::vector<double>& v) { return v[0] * v[1]; });
  EXPECT_TRUE(tensors_close(acc, want));
}

TEST(Broadcast, ConvertSaturatesAndTruncates) {
  EXPECT_EQ(cpu::convert<int32_t>(2.9f), 2);
  EXPECT_EQ(cpu::convert<int32_t>(-2.9), -2);
  EXPECT_EQ(cpu::convert<int8_t>(300.0f), 127);
  EXPECT_EQ(cpu::convert<uint8_t>(-5.0f), 0);
  EXPECT_EQ(cpu::convert<int64_t>(1e30), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(cpu::convert<int32_t>(std::nanf("")), 0);
  EXPECT_EQ(cpu::convert<bool>(Half(0.5f)), true);
  EXPECT_EQ(cpu::convert<int16_t>(int32_t{70000}), static_cast<int16_t>(70000 - 65536));
  EXPECT_EQ(cpu::wrap_mul<uint16_t>(65535, 65535), 1);
  EXPECT_EQ(cpu::wrap_neg<int32_t>(std::numeric_limits<int32_t>::min()), std::numeric_limits<int32_t>::min());
}

}  // namespace
}  // namespace kiln::test
