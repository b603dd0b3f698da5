// Concat, Split and Transpose (data movement by element size) against the CPU reference; the
// results must be bit-exact.
#include <numeric>

#include "tactic_test_util.hpp"

namespace kiln::test {
namespace {

TEST(CudaConcat, AlongEveryAxisAndNegative) {
  KILN_REQUIRE_GPU();
  for (int64_t axis : {0, 1, 2, -1}) {
    Dims a{2, 3, 4}, b{2, 3, 4}, c{2, 3, 4};
    const size_t ax = static_cast<size_t>(axis < 0 ? axis + 3 : axis);
    a[ax] = 1;
    b[ax] = 5;
    c[ax] = 2;
    OpCall call{.op_type = "Concat",
                .inputs = {random_tensor(DType::kFloat32, a, 1), random_tensor(DType::kFloat32, b, 2),
                           random_tensor(DType::kFloat32, c, 3)}};
    call.attrs.set("axis", axis);
    EXPECT_TRUE(matches_cpu(call, 0.0)) << "axis " << axis;
  }
}

TEST(CudaConcat, DtypesWidthsAndConstantInputs) {
  KILN_REQUIRE_GPU();
  // Odd byte widths (float16 x 3) take the narrow copy path; int64 rows of 16 bytes the wide one.
  OpCall h{.op_type = "Concat",
           .inputs = {random_tensor(DType::kFloat16, {4, 3}, 1), random_tensor(DType::kFloat16, {4, 5}, 2)}};
  h.attrs.set("axis", int64_t{1});
  EXPECT_TRUE(matches_cpu(h, 0.0));
  OpCall i{.op_type = "Concat",
           .inputs = {random_tensor(DType::kInt64, {3, 2}, 1, -50, 50), random_tensor(DType::kInt64, {3, 4}, 2, -50, 50)},
           .constant_inputs = {false, true}};
  i.attrs.set("axis", int64_t{1});
  EXPECT_TRUE(matches_cpu(i, 0.0));
  OpCall u8{.op_type = "Concat",
            .inputs = {random_tensor(DType::kUInt8, {2, 3, 7}, 1, 0, 200), random_tensor(DType::kUInt8, {2, 1, 7}, 2, 0, 200)}};
  u8.attrs.set("axis", int64_t{-2});
  EXPECT_TRUE(matches_cpu(u8, 0.0));
}

TEST(CudaConcat, ChannelRowsInOneLaunchAndManyParts) {
  KILN_REQUIRE_GPU();
  // NHWC channel concat (UNet skip connections): 16-byte units, parts of unequal widths.
  OpCall nhwc{.op_type = "Concat",
              .inputs = {random_tensor(DType::kFloat16, {2, 33, 17, 64}, 1), random_tensor(DType::kFloat16, {2, 33, 17, 8}, 2),
                         random_tensor(DType::kFloat16, {2, 33, 17, 128}, 3)}};
  nhwc.attrs.set("axis", int64_t{-1});
  EXPECT_TRUE(matches_cpu(nhwc, 0.0));
  // 4-byte units (one float32 per row of a part) and 8-byte ones.
  OpCall f32{.op_type = "Concat",
             .inputs = {random_tensor(DType::kFloat32, {300, 1}, 1), random_tensor(DType::kFloat32, {300, 3}, 2)}};
  f32.attrs.set("axis", int64_t{1});
  EXPECT_TRUE(matches_cpu(f32, 0.0));
  OpCall i64{.op_type = "Concat",
             .inputs = {random_tensor(DType::kInt64, {50, 3}, 1, -9, 9), random_tensor(DType::kInt64, {50, 1}, 2, -9, 9)}};
  i64.attrs.set("axis", int64_t{1});
  EXPECT_TRUE(matches_cpu(i64, 0.0));
  // More parts than one launch takes: the pitched copy per part.
  OpCall many{.op_type = "Concat"};
  for (uint32_t k = 0; k < 10; ++k) many.inputs.push_back(random_tensor(DType::kFloat16, {5, 7, 8}, k + 1));
  many.attrs.set("axis", int64_t{2});
  EXPECT_TRUE(matches_cpu(many, 0.0));
  // Split of NHWC rows, 16-byte units.
  OpCall split{.op_type = "Split",
               .inputs = {random_tensor(DType::kFloat16, {3, 9, 11, 96}, 4), Tensor::from_vector<int64_t>({3}, {32, 8, 56})},
               .constant_inputs = {false, true}};
  split.attrs.set("axis", int64_t{3});
  split.num_outputs = 3;
  EXPECT_TRUE(matches_cpu(split, 0.0));
}

TEST(CudaSplit, SplitInputAndEqualParts) {
  KILN_REQUIRE_GPU();
  OpCall call{.op_type = "Split",
              .inputs = {random_tensor(DType::kFloat32, {2, 6, 5}, 1), Tensor::from_vector<int64_t>({3}, {2, 3, 1})},
              .constant_inputs = {false, true}};
  call.attrs.set("axis", int64_t{1});
  call.num_outputs = 3;
  EXPECT_TRUE(matches_cpu(call, 0.0));
  OpCall equal{.op_type = "Split", .inputs = {random_tensor(DType::kBFloat16, {4, 10}, 2)}};
  equal.attrs.set("axis", int64_t{-1});
  equal.attrs.set("num_outputs", int64_t{2});
  equal.num_outputs = 2;
  EXPECT_TRUE(matches_cpu(equal, 0.0));
}

OpCall transpose_call(DType t, Dims x, Dims perm, uint32_t seed = 1) {
  OpCall call{.op_type = "Transpose", .inputs = {random_tensor(t, std::move(x), seed, -100, 100)}};
  if (!perm.empty()) call.attrs.set("perm", perm);
  return call;
}

TEST(CudaTranspose, TiledCases) {
  KILN_REQUIRE_GPU();
  EXPECT_TRUE(matches_cpu(transpose_call(DType::kFloat32, {33, 65}, {1, 0}), 0.0));          // 2-D, ragged tiles
  EXPECT_TRUE(matches_cpu(transpose_call(DType::kFloat32, {2, 5, 7, 9}, {0, 2, 3, 1}), 0.0)); // NCHW -> NHWC
  EXPECT_TRUE(matches_cpu(transpose_call(DType::kFloat16, {2, 7, 9, 5}, {0, 3, 1, 2}), 0.0)); // NHWC -> NCHW
  EXPECT_TRUE(matches_cpu(transpose_call(DType::kInt64, {3, 4, 40, 31}, {0, 1, 3, 2}), 0.0)); // last two dims
  EXPECT_TRUE(matches_cpu(transpose_call(DType::kInt8, {70, 1, 45}, {2, 1, 0}), 0.0));       // unit dim dropped
}

// One side of the 2-D transpose shorter than 8: the strided gather runs instead of 32x32 tiles,
// or, with at most 4 planes on the input's side (an image's channels to NHWC), the interleaving
// kernel (blocks of 1024 positions that straddle images here).
TEST(CudaTranspose, NarrowSides) {
  KILN_REQUIRE_GPU();
  EXPECT_TRUE(matches_cpu(transpose_call(DType::kFloat32, {1, 300, 301, 2}, {0, 3, 1, 2}), 0.0));  // NHWC -> NCHW, C=2
  EXPECT_TRUE(matches_cpu(transpose_call(DType::kFloat16, {4, 3, 64, 65}, {0, 2, 3, 1}), 0.0));   // NCHW -> NHWC, C=3
  EXPECT_TRUE(matches_cpu(transpose_call(DType::kInt8, {7, 1000}, {1, 0}), 0.0));
  EXPECT_TRUE(matches_cpu(transpose_call(DType::kInt8, {5, 3, 37, 41}, {0, 2, 3, 1}), 0.0));     // interleaved
  EXPECT_TRUE(matches_cpu(transpose_call(DType::kFloat32, {2, 4, 33, 35}, {0, 2, 3, 1}), 0.0));  // 4 planes
  EXPECT_TRUE(matches_cpu(transpose_call(DType::kInt64, {2, 2, 700}, {0, 2, 1}), 0.0));
  EXPECT_TRUE(matches_cpu(transpose_call(DType::kUInt8, {3, 2049}, {1, 0}), 0.0));  // 2-D, 3 planes
}

TEST(CudaTranspose, GeneralPermutationsAndDefault) {
  KILN_REQUIRE_GPU();
  EXPECT_TRUE(matches_cpu(transpose_call(DType::kFloat32, {3, 4, 5}, {}), 0.0));  // default: reversed
  EXPECT_TRUE(matches_cpu(transpose_call(DType::kFloat32, {3, 4, 5}, {2, 0, 1}), 0.0));
  EXPECT_TRUE(matches_cpu(transpose_call(DType::kBFloat16, {2, 3, 4, 5}, {1, 3, 0, 2}), 0.0));
  EXPECT_TRUE(matches_cpu(transpose_call(DType::kFloat32, {2, 3, 2, 3, 2, 3}, {5, 3, 1, 4, 2, 0}), 0.0));
  EXPECT_TRUE(matches_cpu(transpose_call(DType::kUInt8, {2, 3, 2, 3, 2, 3, 2, 2}, {7, 0, 6, 1, 5, 2, 4, 3}), 0.0));
  EXPECT_TRUE(matches_cpu(transpose_call(DType::kFloat32, {4, 1, 6}, {1, 0, 2}), 0.0));  // a copy once units go
}

}  // namespace
}  // namespace kiln::test
