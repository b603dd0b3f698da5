// TfIdfVectorizer: n-gram counts of an integer or string sequence ([C] or [N, C]) over a pool of
// n-grams given by attributes; the output is float32 [max(ngram_indexes) + 1] (or [N, that]).
#include <algorithm>

#include "ops/infer_util.hpp"

namespace kiln {
namespace {

Status infer_tfidf(InferContext& ctx) {
  const auto& a = ctx.attrs();
  const TensorType& x = ctx.input(0);
  const bool int_pool = a.has("pool_int64s"), string_pool = a.has("pool_strings");
  if (int_pool == string_pool) return ctx.error("exactly one of pool_int64s and pool_strings must be set");
  if (x.dtype != DType::kUndefined) {
    if (string_pool && x.dtype != DType::kString)
      return ctx.error("pool_strings needs a string input, got {}", dtype_name(x.dtype));
    if (int_pool && x.dtype != DType::kInt32 && x.dtype != DType::kInt64)
      return ctx.error("pool_int64s needs an int32 or int64 input, got {}", dtype_name(x.dtype));
  }
  const std::string mode = a.s("mode");
  if (mode != "TF" && mode != "IDF" && mode != "TFIDF")
    return ctx.error("mode '{}' must be TF, IDF or TFIDF", mode);
  const int64_t min_n = a.i("min_gram_length", 0), max_n = a.i("max_gram_length", 0);
  if (min_n < 1 || max_n < min_n)
    return ctx.error("gram lengths must satisfy 1 <= min_gram_length ({}) <= max_gram_length ({})", min_n, max_n);
  if (a.i("max_skip_count", 0) < 0) return ctx.error("max_skip_count must be >= 0");
  const std::vector<int64_t> indexes = a.ints("ngram_indexes");
  if (indexes.empty()) return ctx.error("ngram_indexes must not be empty");
  for (int64_t i : indexes)
    if (i < 0) return ctx.error("ngram_indexes holds a negative index {}", i);
  const Dim width(*std::max_element(indexes.begin(), indexes.end()) + 1);
  if (!x.shape.has_rank()) {
    ctx.set_output(0, DType::kFloat32, Shape::unknown_rank());
  } else if (x.shape.rank() == 1) {
    ctx.set_output(0, DType::kFloat32, Shape({width}));
  } else if (x.shape.rank() == 2) {
    ctx.set_output(0, DType::kFloat32, Shape({x.shape[0], width}));
  } else {
    return ctx.error("input must be 1-D [C] or 2-D [N, C], got {}", x.shape.to_string());
  }
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "TfIdfVectorizer", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_tfidf});
