// StringNormalizer: drops stopwords from a [C] or [1, C] string tensor and changes case.
#include "ops/infer_util.hpp"

namespace kiln {
namespace {

// The output length depends on the data (how many stopwords are found): known only at execution.
Status infer_string_normalizer(InferContext& ctx) {
  const TensorType& x = ctx.input(0);
  if (x.dtype != DType::kUndefined && x.dtype != DType::kString)
    return ctx.error("input must be a string tensor, got {}", dtype_name(x.dtype));
  const std::string action = ctx.attrs().s("case_change_action", "NONE");
  if (action != "NONE" && action != "LOWER" && action != "UPPER")
    return ctx.error("case_change_action '{}' must be NONE, LOWER or UPPER", action);
  if (x.shape.has_rank()) {
    const size_t r = x.shape.rank();
    if (r != 1 && !(r == 2 && (!x.shape[0].known() || x.shape[0].value == 1)))
      return ctx.error("input must have shape [C] or [1, C], got {}", x.shape.to_string());
    std::vector<Dim> out(r, Dim(1));
    out.back() = Dim();
    ctx.set_output(0, DType::kString, Shape(std::move(out)));
  } else {
    ctx.set_output(0, DType::kString, Shape::unknown_rank());
  }
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "StringNormalizer", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_string_normalizer});
