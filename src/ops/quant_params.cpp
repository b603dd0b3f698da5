#include "ops/quant_params.hpp"

#include "ops/infer_util.hpp"

namespace kiln {
namespace {

bool is_one_element(const Shape& p) { return p.has_rank() && (p.rank() == 0 || (p.rank() == 1 && p[0].value == 1)); }

bool dims_differ(const Dim& a, const Dim& b) { return a.known() && b.known() && a.value != b.value; }

}  // namespace

Status check_qdq_param(const InferContext& ctx, const char* what, const Shape& x, const Shape& param, int64_t axis,
                       int64_t block_size) {
  if (block_size < 0) return ctx.error("block_size {} must not be negative", block_size);
  if (!param.has_rank()) return Status::Ok();
  if (block_size == 0) {
    if (is_one_element(param)) return Status::Ok();
    if (param.rank() != 1)
      return ctx.error("{} {} must be a scalar (per tensor) or 1-D (per axis) without block_size", what,
                       param.to_string());
    if (!x.has_rank()) return Status::Ok();
    KILN_ASSIGN_OR_RETURN(int64_t a, normalize_axis(ctx, axis, static_cast<int64_t>(x.rank())));
    if (x.rank() == 0) return ctx.error("{} {} is per axis but x is a scalar", what, param.to_string());
    if (dims_differ(param[0], x[static_cast<size_t>(a)]))
      return ctx.error("{} {} must have x.shape[{}] = {} values (x is {})", what, param.to_string(), a,
                       x[static_cast<size_t>(a)].value, x.to_string());
    return Status::Ok();
  }
  // Blocked: every scale covers block_size consecutive elements along axis.
  if (!x.has_rank()) return Status::Ok();
  if (param.rank() != x.rank())
    return ctx.error("{} {} must have the rank of x {} for blocked quantization (block_size {})", what,
                     param.to_string(), x.to_string(), block_size);
  KILN_ASSIGN_OR_RETURN(int64_t a, normalize_axis(ctx, axis, static_cast<int64_t>(x.rank())));
  for (size_t i = 0; i < x.rank(); ++i) {
    Dim want = x[i];
    if (static_cast<int64_t>(i) == a && want.known()) want = Dim((want.value + block_size - 1) / block_size);
    if (static_cast<int64_t>(i) != a || want.known()) {
      if (dims_differ(param[i], want))
        return ctx.error("{} {} does not match x {} with block_size {} along axis {} (expected {} at dim {})", what,
                         param.to_string(), x.to_string(), block_size, a, want.value, i);
    }
  }
  return Status::Ok();
}

Status check_same_param_shape(const InferContext& ctx, const char* zp_name, const Shape& zp, const char* scale_name,
                              const Shape& scale) {
  if (!zp.has_rank() || !scale.has_rank() || (is_one_element(zp) && is_one_element(scale))) return Status::Ok();
  bool differ = zp.rank() != scale.rank();
  for (size_t i = 0; !differ && i < zp.rank(); ++i) differ = dims_differ(zp[i], scale[i]);
  if (differ)
    return ctx.error("{} {} and {} {} must have the same shape", zp_name, zp.to_string(), scale_name,
                     scale.to_string());
  return Status::Ok();
}

Status check_matmul_param(const InferContext& ctx, const char* what, const Shape& operand, const Shape& param,
                          bool rows) {
  if (!param.has_rank() || !operand.has_rank() || is_one_element(param)) return Status::Ok();
  // A 1-D A is one row of K values; a 1-D B one column.
  std::vector<Dim> od = operand.dims();
  if (od.size() == 1) {
    if (rows) od.insert(od.begin(), Dim(1));
    else od.push_back(Dim(1));
  }
  if (od.size() < 2) return Status::Ok();  // rank 0 is reported by the shape inference
  const Dim count = rows ? od[od.size() - 2] : od.back();
  const char* unit = rows ? "row" : "column";
  if (param.rank() == 1) {
    if (dims_differ(param[0], count))
      return ctx.error("{} {} must have one value per {} of {} ({})", what, param.to_string(), unit,
                       operand.to_string(), count.to_string());
    return Status::Ok();
  }
  // N-D: [batch..., M, 1] for A, [batch..., 1, N] for B, the batch dims broadcasting to the operand's.
  if (param.rank() > od.size())
    return ctx.error("{} {} has more dims than its operand {}", what, param.to_string(), operand.to_string());
  const size_t r = param.rank();
  const Dim& reduced = rows ? param[r - 1] : param[r - 2];
  const Dim& kept = rows ? param[r - 2] : param[r - 1];
  if (dims_differ(reduced, Dim(1)) || dims_differ(kept, count))
    return ctx.error("{} {} must be per tensor or have shape [..., {}] per {} of {}", what, param.to_string(),
                     rows ? count.to_string() + ", 1" : "1, " + count.to_string(), unit, operand.to_string());
  const size_t lead = od.size() - r;
  for (size_t i = 0; i + 2 < r; ++i) {
    const Dim& p = param[i];
    if (p.known() && p.value != 1 && dims_differ(p, od[lead + i]))
      return ctx.error("{} {} does not broadcast to the batch dims of {}", what, param.to_string(), operand.to_string());
  }
  return Status::Ok();
}

Status check_per_channel_param(const InferContext& ctx, const char* what, const Shape& param, Dim channels) {
  if (!param.has_rank() || is_one_element(param)) return Status::Ok();
  if (param.rank() != 1 || dims_differ(param[0], channels))
    return ctx.error("{} {} must be a scalar or 1-D with one value per output channel ({})", what, param.to_string(),
                     channels.to_string());
  return Status::Ok();
}

Status check_scalar_param(const InferContext& ctx, const char* what, const Shape& param) {
  if (!param.has_rank() || is_one_element(param)) return Status::Ok();
  if (param.rank() == 1 && !param[0].known()) return Status::Ok();
  return ctx.error("{} {} must be a scalar (one value)", what, param.to_string());
}

Status check_same_dtype(const InferContext& ctx, const char* what, DType got, const char* of, DType want) {
  if (got != want)
    return ctx.error("{} is {} but {} is {}: they must have the same dtype", what, dtype_name(got), of,
                     dtype_name(want));
  return Status::Ok();
}

}  // namespace kiln
