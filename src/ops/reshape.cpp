// Reshape, Flatten, Squeeze, Unsqueeze: ops that only change the dims (the data is shared).
#include <algorithm>
#include <set>

#include "ops/tensor_infer_util.hpp"

namespace kiln {
namespace {

// Output value of a view op when the input is small shape arithmetic.
void fold_view(InferContext& ctx, const Shape& out) {
  auto dims = out.to_dims();
  if (dims && foldable_int(ctx, 0)) ctx.set_output_value(0, ctx.value(0)->reshaped(*dims));
}

// The dim that -1 stands for: the input's element count over the other output dims. Symbolic
// dims cancel by name, so [batch,3,4] -> [0,-1] gives [batch,12].
Expected<Dim> infer_minus_one(const InferContext& ctx, const Shape& in, const std::vector<Dim>& out,
                              size_t at) {
  if (!in.has_rank()) return Dim();
  int64_t known_in = 1, known_out = 1;
  std::multiset<std::string> symbols;  // the input's symbolic dims not matched by the output's
  bool in_unknown = false, out_unknown = false;
  for (const Dim& d : in.dims()) {
    if (d.known()) known_in *= d.value;
    else if (d.symbol.empty()) in_unknown = true;
    else symbols.insert(d.symbol);
  }
  for (size_t i = 0; i < out.size(); ++i) {
    if (i == at) continue;
    const Dim& d = out[i];
    if (d.known()) {
      known_out *= d.value;
    } else if (auto it = d.symbol.empty() ? symbols.end() : symbols.find(d.symbol); it != symbols.end()) {
      symbols.erase(it);
    } else {
      out_unknown = true;
    }
  }
  if (in_unknown || out_unknown) return Dim();
  if (symbols.empty()) {
    if (known_out == 0 || known_in % known_out != 0)
      return ctx.error("cannot reshape input of shape {} to shape {} ({} elements cannot be split "
                       "into blocks of {})", in.to_string(), Shape(out).to_string(), known_in, known_out);
    return Dim(known_in / known_out);
  }
  if (symbols.size() == 1 && known_in == known_out && known_in != 0) return Dim::symbolic(*symbols.begin());
  return Dim();
}

Status infer_reshape(InferContext& ctx) {
  const TensorType& in = ctx.input(0);
  const bool allowzero = ctx.attrs().i("allowzero", 0) != 0;
  KILN_ASSIGN_OR_RETURN(auto shape, int_list_input(ctx, 1, "shape"));
  if (!shape) {
    const Shape& s = ctx.input(1).shape;
    Shape out = s.has_rank() && s.rank() == 1 && s[0].known()
                    ? Shape(std::vector<Dim>(static_cast<size_t>(s[0].value)))
                    : Shape::unknown_rank();
    ctx.set_output(0, in.dtype, out);
    return Status::Ok();
  }
  std::vector<Dim> out;
  std::optional<size_t> minus_one;
  bool has_zero = false;
  for (size_t i = 0; i < shape->size(); ++i) {
    int64_t v = (*shape)[i];
    if (v == -1) {
      if (minus_one) return ctx.error("shape {} has more than one -1", fmt::join(*shape, ","));
      minus_one = i;
      out.emplace_back();
    } else if (v == 0 && !allowzero) {
      if (!in.shape.has_rank()) {
        out.emplace_back();
      } else if (i >= in.shape.rank()) {
        return ctx.error("shape {}: 0 at index {} copies an input dim, but the input {} has rank {}",
                         fmt::join(*shape, ","), i, in.shape.to_string(), in.shape.rank());
      } else {
        out.push_back(in.shape[i]);
      }
    } else if (v < 0) {
      return ctx.error("shape {} has invalid value {}", fmt::join(*shape, ","), v);
    } else {
      has_zero |= v == 0;
      out.emplace_back(v);
    }
  }
  if (minus_one && has_zero)
    return ctx.error("shape {} has both -1 and 0 with allowzero=1", fmt::join(*shape, ","));
  if (minus_one) {
    KILN_ASSIGN_OR_RETURN(out[*minus_one], infer_minus_one(ctx, in.shape, out, *minus_one));
  }
  Shape result(std::move(out));
  if (in.shape.is_static() && result.is_static() &&
      dims_numel(*in.shape.to_dims()) != dims_numel(*result.to_dims()))
    return ctx.error("cannot reshape input of shape {} ({} elements) to shape {} ({} elements)",
                     in.shape.to_string(), dims_numel(*in.shape.to_dims()), result.to_string(),
                     dims_numel(*result.to_dims()));
  fold_view(ctx, result);
  ctx.set_output(0, in.dtype, std::move(result));
  return Status::Ok();
}

Status infer_flatten(InferContext& ctx) {
  const TensorType& in = ctx.input(0);
  if (!in.shape.has_rank()) {
    ctx.set_output(0, in.dtype, Shape(std::vector<Dim>(2)));
    return Status::Ok();
  }
  const int64_t rank = static_cast<int64_t>(in.shape.rank());
  int64_t axis = ctx.attrs().i("axis", 1);
  if (axis < -rank || axis > rank) return ctx.error("axis {} is out of range for rank {}", axis, rank);
  if (axis < 0) axis += rank;
  const auto& d = in.shape.dims();
  Shape out({dim_product(d, 0, static_cast<size_t>(axis)), dim_product(d, static_cast<size_t>(axis), d.size())});
  fold_view(ctx, out);
  ctx.set_output(0, in.dtype, std::move(out));
  return Status::Ok();
}

Status infer_squeeze(InferContext& ctx) {
  const TensorType& in = ctx.input(0);
  std::optional<std::vector<int64_t>> axes;
  if (input_wired(ctx, 1)) {
    KILN_ASSIGN_OR_RETURN(axes, int_list_input(ctx, 1, "axes"));
    if (!axes) {  // the axes are computed: only the rank may be known
      const Shape& a = ctx.input(1).shape;
      bool known = in.shape.has_rank() && a.has_rank() && a.rank() == 1 && a[0].known() &&
                   static_cast<size_t>(a[0].value) <= in.shape.rank();
      ctx.set_output(0, in.dtype, known ? Shape(std::vector<Dim>(in.shape.rank() - static_cast<size_t>(a[0].value)))
                                        : Shape::unknown_rank());
      return Status::Ok();
    }
    if (axes->empty()) axes.reset();  // an empty list squeezes every size-1 dim, like no axes
  }
  if (!in.shape.has_rank()) {
    ctx.set_output(0, in.dtype, Shape::unknown_rank());
    return Status::Ok();
  }
  const auto& d = in.shape.dims();
  std::vector<bool> drop(d.size(), false);
  if (axes) {
    KILN_ASSIGN_OR_RETURN(auto norm, normalize_axes(ctx, *axes, static_cast<int64_t>(d.size())));
    for (int64_t a : norm) {
      if (d[static_cast<size_t>(a)].known() && d[static_cast<size_t>(a)].value != 1)
        return ctx.error("cannot squeeze axis {} of shape {}: its size is not 1", a, in.shape.to_string());
      drop[static_cast<size_t>(a)] = true;
    }
  } else {
    for (size_t i = 0; i < d.size(); ++i) {
      if (!d[i].known()) {  // whether a symbolic dim is 1 is not known until run time
        ctx.set_output(0, in.dtype, Shape::unknown_rank());
        return Status::Ok();
      }
      drop[i] = d[i].value == 1;
    }
  }
  std::vector<Dim> out;
  for (size_t i = 0; i < d.size(); ++i)
    if (!drop[i]) out.push_back(d[i]);
  Shape result(std::move(out));
  fold_view(ctx, result);
  ctx.set_output(0, in.dtype, std::move(result));
  return Status::Ok();
}

Status infer_unsqueeze(InferContext& ctx) {
  const TensorType& in = ctx.input(0);
  KILN_ASSIGN_OR_RETURN(auto axes, int_list_input(ctx, 1, "axes"));
  if (!axes || !in.shape.has_rank()) {
    const Shape& a = ctx.input(1).shape;
    size_t n = axes ? axes->size() : (a.has_rank() && a.rank() == 1 && a[0].known() ? static_cast<size_t>(a[0].value) : 0);
    bool known = in.shape.has_rank() && (axes || n > 0);
    ctx.set_output(0, in.dtype, known ? Shape(std::vector<Dim>(in.shape.rank() + n)) : Shape::unknown_rank());
    return Status::Ok();
  }
  const int64_t out_rank = static_cast<int64_t>(in.shape.rank() + axes->size());
  KILN_ASSIGN_OR_RETURN(auto norm, normalize_axes(ctx, *axes, out_rank));
  std::vector<bool> is_new(static_cast<size_t>(out_rank), false);
  for (int64_t a : norm) is_new[static_cast<size_t>(a)] = true;
  std::vector<Dim> out;
  size_t next = 0;
  for (int64_t i = 0; i < out_rank; ++i) out.push_back(is_new[static_cast<size_t>(i)] ? Dim(1) : in.shape[next++]);
  Shape result(std::move(out));
  fold_view(ctx, result);
  ctx.set_output(0, in.dtype, std::move(result));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "Reshape", .min_inputs = 2, .max_inputs = 2, .infer = kiln::infer_reshape});
KILN_REGISTER_OP({.name = "Flatten", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_flatten});
KILN_REGISTER_OP({.name = "Squeeze", .min_inputs = 1, .max_inputs = 2, .infer = kiln::infer_squeeze});
KILN_REGISTER_OP({.name = "Unsqueeze", .min_inputs = 2, .max_inputs = 2, .infer = kiln::infer_unsqueeze});
