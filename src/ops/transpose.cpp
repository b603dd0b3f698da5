// Transpose, DepthToSpace, SpaceToDepth: permutations of the data.
#include "ops/tensor_infer_util.hpp"

namespace kiln {
namespace {

Status infer_transpose(InferContext& ctx) {
  const TensorType& in = ctx.input(0);
  const bool has_perm = ctx.attrs().has("perm");
  if (!in.shape.has_rank()) {
    ctx.set_output(0, in.dtype, has_perm ? Shape(std::vector<Dim>(ctx.attrs().ints("perm").size()))
                                         : Shape::unknown_rank());
    return Status::Ok();
  }
  const size_t rank = in.shape.rank();
  std::vector<int64_t> perm = ctx.attrs().ints("perm");
  if (!has_perm)
    for (size_t i = 0; i < rank; ++i) perm.push_back(static_cast<int64_t>(rank - 1 - i));
  std::vector<bool> seen(rank, false);
  bool valid = perm.size() == rank;
  for (int64_t p : perm) {
    if (!valid) break;
    valid = p >= 0 && p < static_cast<int64_t>(rank) && !seen[static_cast<size_t>(p)];
    if (valid) seen[static_cast<size_t>(p)] = true;
  }
  if (!valid)
    return ctx.error("perm [{}] is not a permutation of the {} axes of input shape {}", fmt::join(perm, ","),
                     rank, in.shape.to_string());
  std::vector<Dim> out;
  for (int64_t p : perm) out.push_back(in.shape[static_cast<size_t>(p)]);
  ctx.set_output(0, in.dtype, Shape(std::move(out)));
  return Status::Ok();
}

// Shared checks of DepthToSpace/SpaceToDepth: a 4-D input and a positive blocksize.
Expected<int64_t> block_size(const InferContext& ctx) {
  if (!ctx.attrs().has("blocksize")) return ctx.error("attribute blocksize is required");
  int64_t b = ctx.attrs().i("blocksize");
  if (b <= 0) return ctx.error("blocksize must be positive, got {}", b);
  const Shape& s = ctx.input(0).shape;
  if (s.has_rank() && s.rank() != 4) return ctx.error("input must be 4-D (NCHW), got shape {}", s.to_string());
  return b;
}

Dim scale_dim(const Dim& d, int64_t mul, int64_t div, bool* bad) {
  if (!d.known()) return Dim();
  if ((d.value * mul) % div != 0) *bad = true;
  return Dim(d.value * mul / div);
}

Status infer_depth_to_space(InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(int64_t b, block_size(ctx));
  const std::string mode = ctx.attrs().s("mode", "DCR");
  if (mode != "DCR" && mode != "CRD") return ctx.error("mode must be DCR or CRD, got '{}'", mode);
  const TensorType& in = ctx.input(0);
  if (!in.shape.has_rank()) {
    ctx.set_output(0, in.dtype, Shape(std::vector<Dim>(4)));
    return Status::Ok();
  }
  bool bad = false;
  Shape out({in.shape[0], scale_dim(in.shape[1], 1, b * b, &bad), scale_dim(in.shape[2], b, 1, &bad),
             scale_dim(in.shape[3], b, 1, &bad)});
  if (bad)
    return ctx.error("channels of input shape {} are not divisible by blocksize^2 = {}", in.shape.to_string(), b * b);
  ctx.set_output(0, in.dtype, std::move(out));
  return Status::Ok();
}

Status infer_space_to_depth(InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(int64_t b, block_size(ctx));
  const TensorType& in = ctx.input(0);
  if (!in.shape.has_rank()) {
    ctx.set_output(0, in.dtype, Shape(std::vector<Dim>(4)));
    return Status::Ok();
  }
  bool bad = false;
  Shape out({in.shape[0], scale_dim(in.shape[1], b * b, 1, &bad), scale_dim(in.shape[2], 1, b, &bad),
             scale_dim(in.shape[3], 1, b, &bad)});
  if (bad)
    return ctx.error("spatial dims of input shape {} are not divisible by blocksize {}", in.shape.to_string(), b);
  ctx.set_output(0, in.dtype, std::move(out));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "Transpose", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_transpose});
KILN_REGISTER_OP({.name = "DepthToSpace", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_depth_to_space});
KILN_REGISTER_OP({.name = "SpaceToDepth", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_space_to_depth});
