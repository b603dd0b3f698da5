// Control flow: If, Loop and Scan (opset 9+ form). Their bodies are graph attributes; infer_shapes
// types a node's subgraphs before the node, so the output types here come from the bodies' outputs.
#include <algorithm>

#include "ops/infer_util.hpp"

namespace kiln {
namespace {

// The union of two possible shapes: dims both agree on are kept, others become unknown; a rank
// mismatch gives an unknown rank.
Shape union_shape(const Shape& a, const Shape& b) {
  if (!a.has_rank() || !b.has_rank() || a.rank() != b.rank()) return Shape::unknown_rank();
  std::vector<Dim> dims;
  for (size_t i = 0; i < a.rank(); ++i) dims.push_back(a[i] == b[i] ? a[i] : Dim());
  return Shape(std::move(dims));
}

Expected<const Graph*> graph_attr(const InferContext& ctx, const char* name) {
  const Graph* g = ctx.attrs().graph(name);
  if (!g) return ctx.error("the graph attribute '{}' is required", name);
  return g;
}

// A scalar-like control input (M, cond): of dtype `want` with one element when its shape is known.
Status check_control_input(const InferContext& ctx, size_t i, DType want, const char* what) {
  const TensorType& t = ctx.input(i);
  if (t.dtype != DType::kUndefined && t.dtype != want)
    return ctx.error("{} must be {}, got {}", what, dtype_name(want), t.to_string());
  if (auto d = t.shape.to_dims(); d && dims_numel(*d) != 1)
    return ctx.error("{} must have one element, got shape {}", what, t.shape.to_string());
  return Status::Ok();
}

Status infer_if(InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Graph* then_g, graph_attr(ctx, "then_branch"));
  KILN_ASSIGN_OR_RETURN(const Graph* else_g, graph_attr(ctx, "else_branch"));
  KILN_RETURN_IF_ERROR(check_control_input(ctx, 0, DType::kBool, "cond"));
  for (const Graph* g : {then_g, else_g}) {
    if (g->outputs.size() != ctx.num_outputs())
      return ctx.error("{} has {} outputs, but the node has {}",
                       g == then_g ? "then_branch" : "else_branch", g->outputs.size(),
                       ctx.num_outputs());
  }
  // A known condition (a constant, or at execution) selects one branch's types exactly.
  const Tensor* cond = ctx.value(0);
  const Graph* chosen = nullptr;
  if (cond && cond->dtype() == DType::kBool && cond->numel() == 1)
    chosen = *cond->data<bool>() ? then_g : else_g;
  for (size_t i = 0; i < ctx.num_outputs(); ++i) {
    const TensorType& t = then_g->outputs[i]->type;
    const TensorType& e = else_g->outputs[i]->type;
    if (t.dtype != DType::kUndefined && e.dtype != DType::kUndefined && t.dtype != e.dtype)
      return ctx.error("output {} is {} in then_branch but {} in else_branch", i,
                       dtype_name(t.dtype), dtype_name(e.dtype));
    if (chosen) {
      ctx.set_output_type(i, chosen->outputs[i]->type);
      continue;
    }
    DType dt = t.dtype != DType::kUndefined ? t.dtype : e.dtype;
    // Branches may give sequences or optionals (an untyped branch output reads as a tensor).
    ctx.set_output_type(i, TensorType{dt, union_shape(t.shape, e.shape), t.is_tensor() ? e.kind : t.kind});
  }
  return Status::Ok();
}

Status infer_loop(InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Graph* body, graph_attr(ctx, "body"));
  const Node& node = ctx.node();
  const size_t n_carried = ctx.num_inputs() > 2 ? ctx.num_inputs() - 2 : 0;
  if (ctx.num_outputs() < n_carried)
    return ctx.error("has {} loop-carried inputs but only {} outputs", n_carried, ctx.num_outputs());
  const size_t n_scan = ctx.num_outputs() - n_carried;
  if (body->inputs.size() != 2 + n_carried)
    return ctx.error("body takes {} inputs, expected {} (iteration_num, cond and {} loop-carried values)",
                     body->inputs.size(), 2 + n_carried, n_carried);
  if (body->outputs.size() != 1 + n_carried + n_scan)
    return ctx.error("body has {} outputs, expected {} (cond, {} loop-carried values and {} scan outputs)",
                     body->outputs.size(), 1 + n_carried + n_scan, n_carried, n_scan);
  for (size_t i = 0; i < n_carried; ++i)
    if (!node.has_input(2 + i)) return ctx.error("loop-carried input {} is missing", i);
  const bool has_m = node.has_input(0), has_cond = node.has_input(1);
  if (!has_m && !has_cond)
    return ctx.unsupported("has neither a trip count M nor a condition: the loop would never end");
  if (has_m) KILN_RETURN_IF_ERROR(check_control_input(ctx, 0, DType::kInt64, "trip count M"));
  if (has_cond) KILN_RETURN_IF_ERROR(check_control_input(ctx, 1, DType::kBool, "cond"));

  // The iteration count is known when M is and no condition can end the loop early, or when the
  // initial condition is a known false.
  std::optional<int64_t> trips;
  if (has_m && !has_cond)
    if (auto m = int_values(ctx, 0); m && m->size() == 1) trips = std::max<int64_t>((*m)[0], 0);
  if (has_cond && ctx.value(1) && ctx.value(1)->dtype() == DType::kBool &&
      ctx.value(1)->numel() == 1 && !*ctx.value(1)->data<bool>())
    trips = 0;

  for (size_t i = 0; i < n_carried; ++i) {
    const TensorType& init = ctx.input(2 + i);
    const TensorType& out = body->outputs[1 + i]->type;
    if (init.dtype != DType::kUndefined && out.dtype != DType::kUndefined && init.dtype != out.dtype)
      return ctx.error("loop-carried value {} enters as {} but the body returns {}", i,
                       dtype_name(init.dtype), dtype_name(out.dtype));
    DType dt = init.dtype != DType::kUndefined ? init.dtype : out.dtype;
    // Zero iterations return the initial value; otherwise the body's last output (whose shape may
    // change between iterations).
    Shape s = trips == 0 ? init.shape : (trips ? out.shape : union_shape(init.shape, out.shape));
    // A sequence or optional may enter; the body may turn an optional into what it holds.
    ValueKind kind = trips == 0 || out.is_tensor() ? init.kind : out.kind;
    ctx.set_output_type(i, TensorType{dt, std::move(s), kind});
  }
  for (size_t j = 0; j < n_scan; ++j) {
    const TensorType& elem = body->outputs[1 + n_carried + j]->type;
    if (!elem.is_tensor()) return ctx.unsupported("scan output {} is a {}: only tensors can be stacked", j, elem.to_string());
    Shape s;
    if (elem.shape.has_rank()) {
      std::vector<Dim> dims{trips ? Dim(*trips) : Dim()};
      dims.insert(dims.end(), elem.shape.dims().begin(), elem.shape.dims().end());
      s = Shape(std::move(dims));
    }
    ctx.set_output(n_carried + j, elem.dtype, std::move(s));
  }
  return Status::Ok();
}

// A list attribute of `n` entries, defaulting to zeros; entries must be 0/1 when `flags`.
Expected<std::vector<int64_t>> scan_list_attr(const InferContext& ctx, const char* name, size_t n,
                                              bool flags) {
  std::vector<int64_t> v = ctx.attrs().ints(name, std::vector<int64_t>(n, 0));
  if (v.size() != n) return ctx.error("attribute '{}' has {} entries, expected {}", name, v.size(), n);
  if (flags)
    for (int64_t x : v)
      if (x != 0 && x != 1) return ctx.error("attribute '{}' entries must be 0 or 1, got {}", name, x);
  return v;
}

Status infer_scan(InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Graph* body, graph_attr(ctx, "body"));
  if (!ctx.attrs().get_ptr<int64_t>("num_scan_inputs"))
    return ctx.error("the int attribute 'num_scan_inputs' is required");
  const int64_t m = ctx.attrs().i("num_scan_inputs");
  if (m < 1 || m > static_cast<int64_t>(ctx.num_inputs()))
    return ctx.error("num_scan_inputs is {}, but the node has {} inputs", m, ctx.num_inputs());
  const size_t n_scan_in = static_cast<size_t>(m);
  const size_t n_state = ctx.num_inputs() - n_scan_in;
  if (ctx.num_outputs() < n_state)
    return ctx.error("has {} state inputs but only {} outputs", n_state, ctx.num_outputs());
  const size_t n_scan_out = ctx.num_outputs() - n_state;
  if (body->inputs.size() != n_state + n_scan_in)
    return ctx.error("body takes {} inputs, expected {} ({} states and {} scan inputs)",
                     body->inputs.size(), n_state + n_scan_in, n_state, n_scan_in);
  if (body->outputs.size() != n_state + n_scan_out)
    return ctx.error("body has {} outputs, expected {} ({} states and {} scan outputs)",
                     body->outputs.size(), n_state + n_scan_out, n_state, n_scan_out);
  for (size_t i = 0; i < ctx.num_inputs(); ++i)
    if (!ctx.node().has_input(i)) return ctx.error("input {} is missing", i);
  KILN_ASSIGN_OR_RETURN(auto in_axes, scan_list_attr(ctx, "scan_input_axes", n_scan_in, false));
  KILN_ASSIGN_OR_RETURN([[maybe_unused]] auto in_dirs,
                        scan_list_attr(ctx, "scan_input_directions", n_scan_in, true));
  KILN_ASSIGN_OR_RETURN(auto out_axes, scan_list_attr(ctx, "scan_output_axes", n_scan_out, false));
  KILN_ASSIGN_OR_RETURN([[maybe_unused]] auto out_dirs,
                        scan_list_attr(ctx, "scan_output_directions", n_scan_out, true));

  // The sequence length: every scan input's scanned dim, which must agree.
  Dim seq_len;
  for (size_t i = 0; i < n_scan_in; ++i) {
    const Shape& s = ctx.input(n_state + i).shape;
    if (!s.has_rank()) continue;
    if (s.rank() == 0) return ctx.error("scan input {} is a scalar: it has no axis to scan", i);
    KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, in_axes[i], static_cast<int64_t>(s.rank())));
    const Dim& d = s[static_cast<size_t>(axis)];
    if (d.known() && seq_len.known() && d.value != seq_len.value)
      return ctx.error("scan input {} has {} elements along axis {}, but scan input 0 has {}", i,
                       d.value, axis, seq_len.value);
    if (d.known() || (!seq_len.known() && seq_len.symbol.empty())) seq_len = d;
  }

  for (size_t i = 0; i < n_state; ++i) {
    const TensorType& init = ctx.input(i);
    const TensorType& out = body->outputs[i]->type;
    if (init.dtype != DType::kUndefined && out.dtype != DType::kUndefined && init.dtype != out.dtype)
      return ctx.error("state {} enters as {} but the body returns {}", i, dtype_name(init.dtype),
                       dtype_name(out.dtype));
    // States keep their shape across iterations (a requirement of the spec).
    ctx.set_output(i, init.dtype != DType::kUndefined ? init.dtype : out.dtype,
                   init.shape.has_rank() ? init.shape : out.shape);
  }
  for (size_t j = 0; j < n_scan_out; ++j) {
    const TensorType& elem = body->outputs[n_state + j]->type;
    Shape s;
    if (elem.shape.has_rank()) {
      KILN_ASSIGN_OR_RETURN(int64_t axis,
                            normalize_axis(ctx, out_axes[j], static_cast<int64_t>(elem.shape.rank()) + 1));
      std::vector<Dim> dims = elem.shape.dims();
      dims.insert(dims.begin() + axis, seq_len);
      s = Shape(std::move(dims));
    }
    ctx.set_output(n_state + j, elem.dtype, std::move(s));
  }
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "If", .min_inputs = 1, .max_inputs = 1, .min_outputs = 1,
                  .max_outputs = INT_MAX, .infer = kiln::infer_if, .non_tensor_values = true});
// M and cond are optional: counts are checked by the inference, which knows which are present.
KILN_REGISTER_OP({.name = "Loop", .min_inputs = 0, .min_outputs = 1, .max_outputs = INT_MAX,
                  .infer = kiln::infer_loop, .non_tensor_values = true});
KILN_REGISTER_OP({.name = "Scan", .min_inputs = 1, .min_outputs = 1, .max_outputs = INT_MAX,
                  .infer = kiln::infer_scan});
