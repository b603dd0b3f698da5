// CPU kernels for If and Loop: they run their subgraphs through the executor (ctx.run_subgraph).
// Tensors are immutable once produced, so subgraph outputs are handed on without copies.
#include <cstring>
#include <limits>

#include "ops/op_registry.hpp"

namespace kiln {
namespace {

// The single element of a control input (cond, M), checked.
template <typename T>
Expected<T> control_scalar(const KernelContext& ctx, const Tensor& t, const char* what) {
  if (t.dtype() != dtype_of<T>) return ctx.error("{} must be {}, got {}", what, dtype_name(dtype_of<T>), t.describe());
  if (t.numel() != 1) return ctx.error("{} must have one element, got {}", what, t.describe());
  return t.data<T>()[0];
}

Status if_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(bool cond, control_scalar<bool>(ctx, ctx.input(0), "cond"));
  const Graph* branch = ctx.attrs().graph(cond ? "then_branch" : "else_branch");
  if (!branch) return ctx.error("the graph attribute '{}' is missing", cond ? "then_branch" : "else_branch");
  KILN_ASSIGN_OR_RETURN(std::vector<RuntimeValue> outs, ctx.run_subgraph_values(*branch, {}));
  if (outs.size() != ctx.num_outputs())
    return ctx.error("{} produced {} outputs, but the node has {}", cond ? "then_branch" : "else_branch",
                     outs.size(), ctx.num_outputs());
  for (size_t i = 0; i < outs.size(); ++i) ctx.set_output_value(i, std::move(outs[i]));
  return Status::Ok();
}

// Stacks the per-iteration values of a scan output along a new axis 0. Every iteration must give
// the same dtype and dims (the spec requires it; the output could not be a tensor otherwise).
Status stack_scan_output(KernelContext& ctx, size_t out_index, const std::vector<Tensor>& items) {
  const Tensor& first = items.front();
  if (dtype_size(first.dtype()) == 0)
    return Status(StatusCode::kUnsupported, fmt::format("{}: scan output {} has dtype {}, which the CPU backend does not support",
                                                        ctx.node().describe(), out_index, dtype_name(first.dtype())));
  Dims dims{static_cast<int64_t>(items.size())};
  dims.insert(dims.end(), first.dims().begin(), first.dims().end());
  Tensor& out = ctx.allocate_output(out_index, first.dtype(), dims);
  char* dst = static_cast<char*>(out.raw_data());
  for (size_t it = 0; it < items.size(); ++it) {
    const Tensor& t = items[it];
    if (t.dtype() != first.dtype() || t.dims() != first.dims())
      return ctx.error("scan output {} is {} in iteration {} but {} in iteration 0: scan outputs must "
                       "keep their dtype and shape", out_index, t.describe(), it, first.describe());
    std::memcpy(dst + it * first.nbytes(), t.raw_data(), first.nbytes());
  }
  return Status::Ok();
}

// A scan output of a loop that ran zero times: [0, dims...], taking the dims the body's output
// declares (unknown ones as 0), like other runtimes do.
Status empty_scan_output(KernelContext& ctx, size_t out_index, const Graph& body, size_t body_out) {
  const TensorType& elem = body.outputs[body_out]->type;
  DType dt = ctx.output_type(out_index).dtype;
  if (dt == DType::kUndefined) dt = elem.dtype;
  if (dt == DType::kUndefined)
    return ctx.error("scan output {} has an unknown dtype and the loop ran zero times", out_index);
  Dims dims{0};
  if (elem.shape.has_rank())
    for (const Dim& d : elem.shape.dims()) dims.push_back(d.known() ? d.value : 0);
  ctx.allocate_output(out_index, dt, dims);
  return Status::Ok();
}

Status loop_kernel(KernelContext& ctx) {
  const Graph* body = ctx.attrs().graph("body");
  if (!body) return ctx.error("the graph attribute 'body' is missing");
  const size_t n_carried = ctx.num_inputs() > 2 ? ctx.num_inputs() - 2 : 0;
  const size_t n_scan = ctx.num_outputs() - n_carried;  // inference checked the counts

  int64_t max_trips = std::numeric_limits<int64_t>::max();
  if (ctx.has_input(0)) {
    KILN_ASSIGN_OR_RETURN(max_trips, control_scalar<int64_t>(ctx, ctx.input(0), "trip count M"));
  }
  // Without a cond input the body's cond output is ignored (the spec's "for loop" form).
  const bool use_cond = ctx.has_input(1);
  bool cond = true;
  if (use_cond) {
    KILN_ASSIGN_OR_RETURN(cond, control_scalar<bool>(ctx, ctx.input(1), "cond"));
  }

  // Loop-carried values may be sequences or optionals; scan outputs are tensors.
  std::vector<RuntimeValue> carried;
  for (size_t i = 0; i < n_carried; ++i) {
    const RuntimeValue* v = ctx.input_value(2 + i);
    if (!v && !ctx.has_input(2 + i)) return ctx.error("loop-carried input {} is missing", i);
    carried.push_back(v ? *v : RuntimeValue(ctx.input(2 + i)));
  }
  std::vector<std::vector<Tensor>> scans(n_scan);
  int64_t it = 0;
  for (; it < max_trips && cond; ++it) {
    std::vector<RuntimeValue> feeds{Tensor::scalar<int64_t>(it), Tensor::scalar<bool>(cond)};
    feeds.insert(feeds.end(), carried.begin(), carried.end());
    KILN_ASSIGN_OR_RETURN(std::vector<RuntimeValue> outs, ctx.run_subgraph_values(*body, feeds));
    if (outs.size() != 1 + n_carried + n_scan)
      return ctx.error("body produced {} outputs, expected {}", outs.size(), 1 + n_carried + n_scan);
    if (use_cond) {
      const Tensor* c = as_tensor(outs[0]);
      if (!c) return ctx.error("the body's cond output must be a tensor");
      KILN_ASSIGN_OR_RETURN(cond, control_scalar<bool>(ctx, *c, "the body's cond output"));
    }
    for (size_t i = 0; i < n_carried; ++i) carried[i] = std::move(outs[1 + i]);
    for (size_t j = 0; j < n_scan; ++j) {
      const Tensor* t = as_tensor(outs[1 + n_carried + j]);
      if (!t) return ctx.error("scan output {} must be a tensor", j);
      scans[j].push_back(*t);
    }
  }

  for (size_t i = 0; i < n_carried; ++i) ctx.set_output_value(i, std::move(carried[i]));
  for (size_t j = 0; j < n_scan; ++j) {
    if (it == 0) KILN_RETURN_IF_ERROR(empty_scan_output(ctx, n_carried + j, *body, 1 + n_carried + j));
    else KILN_RETURN_IF_ERROR(stack_scan_output(ctx, n_carried + j, scans[j]));
  }
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL("If", kiln::if_kernel);
KILN_REGISTER_CPU_KERNEL("Loop", kiln::loop_kernel);
