#include <gtest/gtest.h>

#include "op_test_util.hpp"

namespace kiln::test {
namespace {

Tensor strings(Dims dims, const std::vector<std::string>& v) {
  Tensor t(DType::kString, std::move(dims));
  std::copy(v.begin(), v.end(), t.data<std::string>());
  return t;
}

std::vector<std::string> values(const Tensor& t) {
  return std::vector<std::string>(t.data<std::string>(), t.data<std::string>() + t.numel());
}

Attributes attrs(const std::string& action, int64_t case_sensitive, std::vector<std::string> stop) {
  Attributes a;
  if (!action.empty()) a.set("case_change_action", action);
  a.set("is_case_sensitive", case_sensitive);
  if (!stop.empty()) a.set("stopwords", stop);
  return a;
}

TEST(StringNormalizer, StopwordsAndCase) {
  Tensor x = strings({5}, {"Monday", "tuesday", "MONDAY", "Wed", "monday"});
  struct Case {
    std::string action;
    int64_t sensitive;
    std::vector<std::string> want;
  };
  const std::vector<Case> cases = {
      {"", 1, {"Monday", "tuesday", "MONDAY", "Wed"}},
      {"LOWER", 1, {"monday", "tuesday", "monday", "wed"}},
      {"UPPER", 0, {"TUESDAY", "WED"}},
      {"NONE", 0, {"tuesday", "Wed"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.action + " " + std::to_string(c.sensitive));
    auto out = run_op({.op_type = "StringNormalizer", .inputs = {x}, .attrs = attrs(c.action, c.sensitive, {"monday"})});
    ASSERT_TRUE(out.ok()) << out.status().message();
    ASSERT_EQ(out->at(0).dtype(), DType::kString);
    EXPECT_EQ(out->at(0).dims(), (Dims{static_cast<int64_t>(c.want.size())}));
    EXPECT_EQ(values(out->at(0)), c.want);
  }
}

TEST(StringNormalizer, TwoDimAndAllDropped) {
  auto out = run_op({.op_type = "StringNormalizer", .inputs = {strings({1, 3}, {"a", "B", "c"})},
                     .attrs = attrs("UPPER", 0, {"b"})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(out->at(0).dims(), (Dims{1, 2}));
  EXPECT_EQ(values(out->at(0)), (std::vector<std::string>{"A", "C"}));
  out = run_op({.op_type = "StringNormalizer", .inputs = {strings({1, 2}, {"x", "X"})}, .attrs = attrs("", 0, {"x"})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(out->at(0).dims(), (Dims{1, 1}));
  EXPECT_EQ(values(out->at(0)), (std::vector<std::string>{""}));
}

TEST(StringNormalizer, Errors) {
  auto out = run_op({.op_type = "StringNormalizer", .inputs = {strings({2}, {"a", "b"})}, .attrs = attrs("TITLE", 0, {})});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("StringNormalizer_node"), std::string::npos);
  EXPECT_NE(out.status().message().find("TITLE"), std::string::npos);
  out = run_op({.op_type = "StringNormalizer", .inputs = {strings({2, 2}, {"a", "b", "c", "d"})}});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("[1, C]"), std::string::npos);
  out = run_op({.op_type = "StringNormalizer", .inputs = {random_tensor(DType::kFloat32, {3})}});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("string"), std::string::npos);
}

}  // namespace
}  // namespace kiln::test
