// TfIdfVectorizer on the CPU: every n-gram of each row (for each gram length in
// [min_gram_length, max_gram_length] and each skip in [0, max_skip_count]) is looked up in the pool;
// found ones are counted at their ngram_indexes slot, then weighted as `mode` says.
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "backends/cpu/string_support.hpp"
#include "ops/op_registry.hpp"

namespace kiln {
namespace {

// The pool as a map from n-gram to its pool position. ngram_counts[k] is where the (k+1)-grams
// start in the flat pool; they run to the next start (or the pool's end).
template <typename E>
Expected<std::map<std::vector<E>, size_t>> build_pool(KernelContext& ctx, const std::vector<E>& pool) {
  const std::vector<int64_t> starts = ctx.attrs().ints("ngram_counts");
  std::map<std::vector<E>, size_t> grams;
  size_t index = 0;
  for (size_t k = 0; k < starts.size(); ++k) {
    const int64_t n = static_cast<int64_t>(k) + 1;
    const int64_t begin = starts[k];
    const int64_t end = k + 1 < starts.size() ? starts[k + 1] : static_cast<int64_t>(pool.size());
    if (begin < 0 || end < begin || end > static_cast<int64_t>(pool.size()) || (end - begin) % n != 0)
      return ctx.error("ngram_counts {} do not split a pool of {} into whole {}-grams", begin, pool.size(), n);
    for (int64_t p = begin; p < end; p += n)
      grams.emplace(std::vector<E>(pool.begin() + p, pool.begin() + p + n), index++);
  }
  return grams;
}

template <typename E, typename Get>
Status tfidf_rows(KernelContext& ctx, const std::vector<E>& pool, Get get) {
  const auto& a = ctx.attrs();
  KILN_ASSIGN_OR_RETURN(auto grams, build_pool<E>(ctx, pool));
  const std::vector<int64_t> indexes = a.ints("ngram_indexes");
  if (indexes.size() < grams.size())
    return ctx.error("ngram_indexes has {} entries for {} pool n-grams", indexes.size(), grams.size());
  const std::vector<float> weights = a.floats("weights");
  const std::string mode = a.s("mode");
  if (mode != "TF" && weights.size() < grams.size() && !weights.empty())
    return ctx.error("weights has {} entries for {} pool n-grams", weights.size(), grams.size());
  const int64_t min_n = a.i("min_gram_length"), max_n = a.i("max_gram_length"), max_skip = a.i("max_skip_count");

  const Tensor& x = ctx.input(0);
  const int64_t rows = x.rank() == 2 ? x.dim(0) : 1, cols = x.rank() == 2 ? x.dim(1) : x.numel();
  Tensor& y = ctx.output(0);
  const int64_t width = y.dim(y.rank() - 1);
  float* out = y.data<float>();
  std::fill(out, out + y.numel(), 0.f);
  std::vector<int64_t> counts(grams.size());
  std::vector<E> gram;
  for (int64_t r = 0; r < rows; ++r) {
    std::fill(counts.begin(), counts.end(), 0);
    for (int64_t n = min_n; n <= max_n; ++n) {
      // A unigram is the same for every skip: count it once.
      for (int64_t skip = 0; skip <= (n == 1 ? 0 : max_skip); ++skip) {
        const int64_t step = skip + 1;
        for (int64_t start = 0; start + (n - 1) * step < cols; ++start) {
          gram.clear();
          for (int64_t k = 0; k < n; ++k) gram.push_back(get(r * cols + start + k * step));
          auto it = grams.find(gram);
          if (it != grams.end()) ++counts[it->second];
        }
      }
    }
    for (size_t i = 0; i < counts.size(); ++i) {
      const int64_t slot = indexes[i];
      if (slot >= width) return ctx.error("ngram_indexes value {} is outside the output width {}", slot, width);
      const float w = weights.empty() ? 1.f : weights[i];
      const float c = static_cast<float>(counts[i]);
      out[r * width + slot] = mode == "TF" ? c : mode == "IDF" ? (counts[i] > 0 ? w : 0.f) : c * w;
    }
  }
  return Status::Ok();
}

Status tfidf_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  switch (x.dtype()) {
    case DType::kInt32:
      return tfidf_rows<int64_t>(ctx, ctx.attrs().ints("pool_int64s"), [&](int64_t i) { return int64_t{x.data<int32_t>()[i]}; });
    case DType::kInt64:
      return tfidf_rows<int64_t>(ctx, ctx.attrs().ints("pool_int64s"), [&](int64_t i) { return x.data<int64_t>()[i]; });
    case DType::kString:
      return tfidf_rows<std::string>(ctx, ctx.attrs().strings("pool_strings"),
                                     [&](int64_t i) { return x.data<std::string>()[i]; });
    default: return ctx.unsupported_dtype(x.dtype(), 0);
  }
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL("TfIdfVectorizer", kiln::tfidf_kernel);
KILN_CPU_KERNEL_HANDLES_STRINGS("", "TfIdfVectorizer");
