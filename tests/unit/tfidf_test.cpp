#include <gtest/gtest.h>

#include "op_test_util.hpp"

namespace kiln::test {
namespace {

// The pool of the ONNX examples: unigrams 2, 3, 5, 4 and bigrams (5,6), (7,8), (6,7).
Attributes pool_attrs(int64_t min_n, int64_t max_n, int64_t skip, const std::string& mode = "TF") {
  Attributes a;
  a.set("min_gram_length", min_n);
  a.set("max_gram_length", max_n);
  a.set("max_skip_count", skip);
  a.set("mode", mode);
  a.set("ngram_counts", std::vector<int64_t>{0, 4});
  a.set("ngram_indexes", std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6});
  a.set("pool_int64s", std::vector<int64_t>{2, 3, 5, 4, 5, 6, 7, 8, 6, 7});
  return a;
}

const std::vector<int64_t> kSeq = {1, 1, 3, 3, 3, 7, 8, 6, 7, 5, 6, 8};

TEST(TfIdfVectorizer, CountsWithSkipsOneAndTwoDim) {
  struct Case {
    int64_t min_n, max_n, skip;
    std::vector<float> want;
  };
  // Values of the ONNX specification's examples.
  const std::vector<Case> cases = {
      {2, 2, 0, {0, 0, 0, 0, 1, 1, 1}},
      {2, 2, 5, {0, 0, 0, 0, 1, 3, 1}},
      {1, 2, 5, {0, 3, 1, 0, 1, 3, 1}},
  };
  for (DType dt : {DType::kInt32, DType::kInt64})
    for (const Case& c : cases) {
      SCOPED_TRACE(std::to_string(c.min_n) + "-" + std::to_string(c.max_n) + " skip " + std::to_string(c.skip));
      Tensor x = Tensor::from_vector<int64_t>({12}, kSeq).cast(dt);
      auto out = run_op({.op_type = "TfIdfVectorizer", .inputs = {x}, .attrs = pool_attrs(c.min_n, c.max_n, c.skip)});
      ASSERT_TRUE(out.ok()) << out.status().message();
      EXPECT_TRUE(tensors_close(out->at(0), Tensor::from_vector<float>({7}, c.want), 0, 0));
    }
  // [2, 6]: each row counted separately.
  Tensor x2 = Tensor::from_vector<int64_t>({2, 6}, kSeq).cast(DType::kInt32);
  auto out = run_op({.op_type = "TfIdfVectorizer", .inputs = {x2}, .attrs = pool_attrs(1, 2, 5)});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_TRUE(tensors_close(out->at(0), Tensor::from_vector<float>({2, 7}, {0, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 1}), 0, 0));
}

TEST(TfIdfVectorizer, IdfAndTfIdfWeightsAndStrings) {
  const std::vector<float> w = {0.5f, 2, 3, 4, 5, 6, 7};
  Tensor x = Tensor::from_vector<int64_t>({12}, kSeq);
  Attributes a = pool_attrs(1, 2, 5, "IDF");
  a.set("weights", w);
  auto out = run_op({.op_type = "TfIdfVectorizer", .inputs = {x}, .attrs = a});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_TRUE(tensors_close(out->at(0), Tensor::from_vector<float>({7}, {0, 2, 3, 0, 5, 6, 7}), 0, 0));
  a.set("mode", std::string("TFIDF"));
  out = run_op({.op_type = "TfIdfVectorizer", .inputs = {x}, .attrs = a});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_TRUE(tensors_close(out->at(0), Tensor::from_vector<float>({7}, {0, 6, 3, 0, 5, 18, 7}), 0, 0));

  Tensor s(DType::kString, {5});
  const std::vector<std::string> words = {"a", "b", "a", "b", "c"};
  std::copy(words.begin(), words.end(), s.data<std::string>());
  Attributes sa;
  sa.set("min_gram_length", int64_t{1});
  sa.set("max_gram_length", int64_t{2});
  sa.set("max_skip_count", int64_t{0});
  sa.set("mode", std::string("TF"));
  sa.set("ngram_counts", std::vector<int64_t>{0, 2});
  sa.set("ngram_indexes", std::vector<int64_t>{2, 0, 1});  // "a" -> 2, "c" -> 0, ("a","b") -> 1
  sa.set("pool_strings", std::vector<std::string>{"a", "c", "a", "b"});
  out = run_op({.op_type = "TfIdfVectorizer", .inputs = {s}, .attrs = sa});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_TRUE(tensors_close(out->at(0), Tensor::from_vector<float>({3}, {1, 2, 2}), 0, 0));
}

TEST(TfIdfVectorizer, Errors) {
  Tensor x = Tensor::from_vector<int64_t>({12}, kSeq);
  Attributes a = pool_attrs(1, 2, 0, "BM25");
  auto out = run_op({.op_type = "TfIdfVectorizer", .inputs = {x}, .attrs = a});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("TfIdfVectorizer_node"), std::string::npos);
  EXPECT_NE(out.status().message().find("BM25"), std::string::npos);
  a = pool_attrs(1, 2, 0);
  a.set("ngram_counts", std::vector<int64_t>{0, 5});  // 5 values left do not make whole bigrams
  out = run_op({.op_type = "TfIdfVectorizer", .inputs = {x}, .attrs = a});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("ngram_counts"), std::string::npos);
  out = run_op({.op_type = "TfIdfVectorizer", .inputs = {random_tensor(DType::kFloat32, {3})}, .attrs = pool_attrs(1, 2, 0)});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("int32 or int64"), std::string::npos);
}

}  // namespace
}  // namespace kiln::test
