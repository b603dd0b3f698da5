#include "ops/infer_util.hpp"

#include <algorithm>

namespace kiln {

Expected<Shape> broadcast_shapes(const std::vector<Shape>& shapes) {
  size_t rank = 0;
  for (const auto& s : shapes) {
    if (!s.has_rank()) return Shape::unknown_rank();
    rank = std::max(rank, s.rank());
  }
  std::vector<Dim> out(rank, Dim(1));
  for (const auto& s : shapes) {
    size_t off = rank - s.rank();
    for (size_t i = 0; i < s.rank(); ++i) {
      const Dim& d = s[i];
      Dim& o = out[off + i];
      if (d.known() && d.value == 1) continue;
      if (o.known() && o.value == 1) { o = d; continue; }
      if (d.known() && o.known()) {
        if (d.value != o.value)
          return invalid_model("shapes {} cannot be broadcast together (dim {} vs {})",
                               s.to_string(), d.value, o.value);
        continue;
      }
      if (d.known()) { o = d; continue; }   // a symbolic dim broadcast against a known one
      if (o.known()) continue;
      if (o.symbol != d.symbol) o = Dim();  // two different unknowns
    }
  }
  return Shape(std::move(out));
}

Expected<Dims> broadcast_dims(const Dims& a, const Dims& b) {
  KILN_ASSIGN_OR_RETURN(Shape s, broadcast_shapes({Shape::from_dims(a), Shape::from_dims(b)}));
  return *s.to_dims();
}

Expected<int64_t> normalize_axis(const InferContext& ctx, int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= std::max<int64_t>(rank, 1))
    return ctx.error("axis {} is out of range for rank {}", axis, rank);
  return axis < 0 ? axis + rank : axis;
}

Status infer_same_as_input0(InferContext& ctx) {
  ctx.set_output(0, ctx.input(0).dtype, ctx.input(0).shape);
  return Status::Ok();
}

static Status broadcast_impl(InferContext& ctx, DType out_type) {
  std::vector<Shape> shapes;
  for (size_t i = 0; i < ctx.num_inputs(); ++i)
    if (ctx.has_input(i)) shapes.push_back(ctx.input(i).shape);
  auto s = broadcast_shapes(shapes);
  if (!s) return ctx.error("{}", s.status().message());
  ctx.set_output(0, out_type, *s);
  return Status::Ok();
}

Status infer_broadcast(InferContext& ctx) { return broadcast_impl(ctx, ctx.input(0).dtype); }
Status infer_broadcast_bool(InferContext& ctx) { return broadcast_impl(ctx, DType::kBool); }

Expected<Shape> matmul_shape(const InferContext& ctx, const Shape& a, const Shape& b) {
  if (!a.has_rank() || !b.has_rank()) return Shape::unknown_rank();
  if (a.rank() == 0 || b.rank() == 0)
    return ctx.error("operands must have rank 1 or more, got A {} and B {}", a.to_string(), b.to_string());
  // A 1-D A is a row vector and a 1-D B a column vector; the added dim is then removed.
  std::vector<Dim> ad = a.dims(), bd = b.dims();
  const bool a_vec = ad.size() == 1, b_vec = bd.size() == 1;
  if (a_vec) ad.insert(ad.begin(), Dim(1));
  if (b_vec) bd.push_back(Dim(1));
  const Dim& ka = ad.back();
  const Dim& kb = bd[bd.size() - 2];
  if (ka.known() && kb.known() && ka.value != kb.value)
    return ctx.error("inner dims differ: A {} and B {}", a.to_string(), b.to_string());
  auto batch = broadcast_shapes({Shape(std::vector<Dim>(ad.begin(), ad.end() - 2)),
                                 Shape(std::vector<Dim>(bd.begin(), bd.end() - 2))});
  if (!batch) return ctx.error("batch dims of A {} and B {} cannot be broadcast", a.to_string(), b.to_string());
  std::vector<Dim> out = batch->dims();
  if (!a_vec) out.push_back(ad[ad.size() - 2]);
  if (!b_vec) out.push_back(bd.back());
  return Shape(std::move(out));
}

std::optional<std::vector<int64_t>> int_values(const InferContext& ctx, size_t input) {
  const Tensor* t = ctx.value(input);
  if (!t) return std::nullopt;
  auto v = t->to_int64_vector();
  if (!v) return std::nullopt;
  return *v;
}

}  // namespace kiln
