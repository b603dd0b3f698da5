// StringNormalizer on the CPU. Case changes and case-insensitive matching act on ASCII letters
// (the locale attribute is accepted but not interpreted).
#include <algorithm>
#include <cctype>
#include <set>
#include <string>
#include <vector>

#include "backends/cpu/string_support.hpp"
#include "ops/op_registry.hpp"

namespace kiln {
namespace {

std::string ascii_case(std::string s, bool upper) {
  for (char& c : s) c = static_cast<char>(upper ? std::toupper(static_cast<unsigned char>(c))
                                                 : std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Status string_normalizer_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (x.dtype() != DType::kString) return ctx.unsupported_dtype(x.dtype(), 0);
  if (!(x.rank() == 1 || (x.rank() == 2 && x.dim(0) == 1)))
    return ctx.error("input must have shape [C] or [1, C], got {}", x.describe());
  const std::string action = ctx.attrs().s("case_change_action", "NONE");
  const bool case_sensitive = ctx.attrs().i("is_case_sensitive", 0) != 0;
  std::set<std::string> stop;
  for (const std::string& w : ctx.attrs().strings("stopwords")) stop.insert(case_sensitive ? w : ascii_case(w, false));

  std::vector<std::string> kept;
  const std::string* in = x.data<std::string>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (stop.count(case_sensitive ? in[i] : ascii_case(in[i], false))) continue;
    kept.push_back(action == "NONE" ? in[i] : ascii_case(in[i], action == "UPPER"));
  }
  // All dropped: one empty string, keeping the input's rank.
  if (kept.empty()) kept.emplace_back();
  const int64_t c = static_cast<int64_t>(kept.size());
  Tensor& y = ctx.allocate_output(0, DType::kString, x.rank() == 1 ? Dims{c} : Dims{1, c});
  std::move(kept.begin(), kept.end(), y.data<std::string>());
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL("StringNormalizer", kiln::string_normalizer_kernel);
KILN_CPU_KERNEL_HANDLES_STRINGS("", "StringNormalizer");
