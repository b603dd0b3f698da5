// NonMaxSuppression on the ONNX spec's examples, plus thresholds, limits and errors.
#include "op_test_util.hpp"

namespace kiln::test {
namespace {

const std::vector<float> kBoxes = {0.0f, 0.0f,  1.0f, 1.0f,  0.0f, 0.1f,  1.0f, 1.1f,  0.0f, -0.1f, 1.0f, 0.9f,
                                   0.0f, 10.0f, 1.0f, 11.0f, 0.0f, 10.1f, 1.0f, 11.1f, 0.0f, 100.0f, 1.0f, 101.0f};
const std::vector<float> kScores = {0.9f, 0.75f, 0.6f, 0.95f, 0.5f, 0.3f};

std::vector<int64_t> run_nms(const Tensor& boxes, const Tensor& scores, int64_t max_out, float iou,
                             std::optional<float> score_threshold, int64_t center = 0) {
  Attributes a;
  a.set("center_point_box", center);
  OpCall call{.op_type = "NonMaxSuppression",
              .inputs = {boxes, scores, Tensor::from_vector<int64_t>({1}, {max_out}), Tensor::from_vector<float>({1}, {iou}),
                         score_threshold ? Tensor::from_vector<float>({1}, {*score_threshold}) : Tensor()},
              .attrs = a};
  auto out = run_op(call);
  EXPECT_TRUE(out.ok()) << out.status().message();
  if (!out.ok()) return {};
  const Tensor& y = out->at(0);
  EXPECT_EQ(y.dtype(), DType::kInt64);
  EXPECT_EQ(y.rank(), 2);
  EXPECT_EQ(y.dim(1), 3);
  return std::vector<int64_t>(y.data<int64_t>(), y.data<int64_t>() + y.numel());
}

Tensor boxes1(const std::vector<float>& b) { return Tensor::from_vector<float>({1, static_cast<int64_t>(b.size() / 4), 4}, b); }
Tensor scores1(const std::vector<float>& s) { return Tensor::from_vector<float>({1, 1, static_cast<int64_t>(s.size())}, s); }

TEST(NonMaxSuppression, SpecExamples) {
  // suppress_by_IOU, suppress_by_IOU_and_scores, limit_output_size
  EXPECT_EQ(run_nms(boxes1(kBoxes), scores1(kScores), 3, 0.5f, 0.0f), (std::vector<int64_t>{0, 0, 3, 0, 0, 0, 0, 0, 5}));
  EXPECT_EQ(run_nms(boxes1(kBoxes), scores1(kScores), 3, 0.5f, 0.4f), (std::vector<int64_t>{0, 0, 3, 0, 0, 0}));
  EXPECT_EQ(run_nms(boxes1(kBoxes), scores1(kScores), 2, 0.5f, 0.0f), (std::vector<int64_t>{0, 0, 3, 0, 0, 0}));
  // flipped_coordinates: corners given in either order
  const std::vector<float> flipped = {1.0f, 1.0f,  0.0f, 0.0f,  0.0f, 0.1f,  1.0f, 1.1f,  0.0f, 0.9f,   1.0f, -0.1f,
                                      0.0f, 10.0f, 1.0f, 11.0f, 1.0f, 10.1f, 0.0f, 11.1f, 1.0f, 101.0f, 0.0f, 100.0f};
  EXPECT_EQ(run_nms(boxes1(flipped), scores1(kScores), 3, 0.5f, 0.0f), (std::vector<int64_t>{0, 0, 3, 0, 0, 0, 0, 0, 5}));
  // center_point_box_format
  const std::vector<float> centers = {0.5f, 0.5f,  1.0f, 1.0f, 0.5f, 0.6f,  1.0f, 1.0f, 0.5f, 0.4f,   1.0f, 1.0f,
                                      0.5f, 10.5f, 1.0f, 1.0f, 0.5f, 10.6f, 1.0f, 1.0f, 0.5f, 100.5f, 1.0f, 1.0f};
  EXPECT_EQ(run_nms(boxes1(centers), scores1(kScores), 3, 0.5f, 0.0f, 1), (std::vector<int64_t>{0, 0, 3, 0, 0, 0, 0, 0, 5}));
  // identical_boxes: ten copies of one box with equal scores: only the first is kept
  std::vector<float> same;
  for (int i = 0; i < 10; ++i) same.insert(same.end(), {0.0f, 0.0f, 1.0f, 1.0f});
  EXPECT_EQ(run_nms(boxes1(same), scores1(std::vector<float>(10, 0.9f)), 3, 0.5f, 0.0f), (std::vector<int64_t>{0, 0, 0}));
  // two_batches and two_classes
  std::vector<float> two_b = kBoxes;
  two_b.insert(two_b.end(), kBoxes.begin(), kBoxes.end());
  std::vector<float> two_s = kScores;
  two_s.insert(two_s.end(), kScores.begin(), kScores.end());
  EXPECT_EQ(run_nms(Tensor::from_vector<float>({2, 6, 4}, two_b), Tensor::from_vector<float>({2, 1, 6}, two_s), 2, 0.5f, 0.0f),
            (std::vector<int64_t>{0, 0, 3, 0, 0, 0, 1, 0, 3, 1, 0, 0}));
  EXPECT_EQ(run_nms(boxes1(kBoxes), Tensor::from_vector<float>({1, 2, 6}, two_s), 2, 0.5f, 0.0f),
            (std::vector<int64_t>{0, 0, 3, 0, 0, 0, 0, 1, 3, 0, 1, 0}));
}

TEST(NonMaxSuppression, ThresholdsAndDefaults) {
  // No score threshold: every box is a candidate; iou 1.0 suppresses nothing.
  EXPECT_EQ(run_nms(boxes1(kBoxes), scores1(kScores), 10, 1.0f, std::nullopt),
            (std::vector<int64_t>{0, 0, 3, 0, 0, 0, 0, 0, 1, 0, 0, 2, 0, 0, 4, 0, 0, 5}));
  // The score threshold is strict: 0.6 drops the box scoring exactly 0.6.
  EXPECT_EQ(run_nms(boxes1(kBoxes), scores1(kScores), 10, 1.0f, 0.6f), (std::vector<int64_t>{0, 0, 3, 0, 0, 0, 0, 0, 1}));
  EXPECT_TRUE(run_nms(boxes1(kBoxes), scores1(kScores), 0, 0.5f, 0.0f).empty());
  // Without max_output_boxes_per_class nothing is selected.
  auto none = run_op({.op_type = "NonMaxSuppression", .inputs = {boxes1(kBoxes), scores1(kScores)}});
  ASSERT_TRUE(none.ok()) << none.status().message();
  EXPECT_EQ(none->at(0).dims(), (Dims{0, 3}));
}

TEST(NonMaxSuppression, ErrorsNameTheNode) {
  auto bad_iou = run_op({.op_type = "NonMaxSuppression",
                         .inputs = {boxes1(kBoxes), scores1(kScores), Tensor::from_vector<int64_t>({1}, {3}),
                                    Tensor::from_vector<float>({1}, {1.5f})}});
  ASSERT_FALSE(bad_iou.ok());
  EXPECT_NE(bad_iou.status().message().find("NonMaxSuppression_node"), std::string::npos) << bad_iou.status().message();
  EXPECT_NE(bad_iou.status().message().find("iou_threshold"), std::string::npos);
  auto bad_shape = run_op({.op_type = "NonMaxSuppression",
                           .inputs = {Tensor::from_vector<float>({1, 6, 3}, std::vector<float>(18, 0.f)), scores1(kScores)}});
  ASSERT_FALSE(bad_shape.ok());
  EXPECT_NE(bad_shape.status().message().find("boxes must be"), std::string::npos) << bad_shape.status().message();
  auto mismatch = run_op({.op_type = "NonMaxSuppression", .inputs = {boxes1(kBoxes), scores1({0.5f, 0.4f})}});
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.status().message().find("spatial_dimension"), std::string::npos) << mismatch.status().message();
}

}  // namespace
}  // namespace kiln::test
