// CPU kernel for Scan (opset 9+ form): slices the scan inputs along their axes, runs the body once
// per element with the states, and assembles the scan outputs along theirs.
#include <cstring>

#include "ops/op_registry.hpp"

namespace kiln {
namespace {

int64_t prod(const Dims& d, size_t begin, size_t end) {
  int64_t n = 1;
  for (size_t i = begin; i < end; ++i) n *= d[i];
  return n;
}

// The sub-tensor at `index` along `axis`, with that axis removed.
Tensor slice_axis(const Tensor& t, size_t axis, int64_t index) {
  const Dims& d = t.dims();
  const int64_t outer = prod(d, 0, axis);
  const size_t block = static_cast<size_t>(prod(d, axis + 1, d.size())) * dtype_size(t.dtype());
  Dims od = d;
  od.erase(od.begin() + static_cast<ptrdiff_t>(axis));
  Tensor out(t.dtype(), od);
  const char* src = static_cast<const char*>(t.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  for (int64_t o = 0; o < outer; ++o)
    std::memcpy(dst + o * block, src + (o * d[axis] + index) * block, block);
  return out;
}

// Writes `elem` (out's dims without `axis`) at `index` along `axis` of `out`.
void place_axis(Tensor& out, size_t axis, int64_t index, const Tensor& elem) {
  const Dims& d = out.dims();
  const int64_t outer = prod(d, 0, axis);
  const size_t block = static_cast<size_t>(prod(d, axis + 1, d.size())) * dtype_size(out.dtype());
  const char* src = static_cast<const char*>(elem.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  for (int64_t o = 0; o < outer; ++o)
    std::memcpy(dst + (o * d[axis] + index) * block, src + o * block, block);
}

size_t norm_axis(int64_t axis, size_t rank) {
  return static_cast<size_t>(axis < 0 ? axis + static_cast<int64_t>(rank) : axis);
}

Status scan_kernel(KernelContext& ctx) {
  // Inference has validated the attributes and counts.
  const Graph& body = *ctx.attrs().graph("body");
  const size_t n_scan_in = static_cast<size_t>(ctx.attrs().i("num_scan_inputs"));
  const size_t n_state = ctx.num_inputs() - n_scan_in;
  const size_t n_scan_out = ctx.num_outputs() - n_state;
  const auto in_axes = ctx.attrs().ints("scan_input_axes", std::vector<int64_t>(n_scan_in, 0));
  const auto in_dirs = ctx.attrs().ints("scan_input_directions", std::vector<int64_t>(n_scan_in, 0));
  const auto out_axes = ctx.attrs().ints("scan_output_axes", std::vector<int64_t>(n_scan_out, 0));
  const auto out_dirs = ctx.attrs().ints("scan_output_directions", std::vector<int64_t>(n_scan_out, 0));

  int64_t seq_len = 0;
  std::vector<size_t> axes(n_scan_in);
  for (size_t i = 0; i < n_scan_in; ++i) {
    const Tensor& x = ctx.input(n_state + i);
    if (dtype_size(x.dtype()) == 0) return ctx.unsupported_dtype(x.dtype(), n_state + i);
    axes[i] = norm_axis(in_axes[i], static_cast<size_t>(x.rank()));
    const int64_t len = x.dims()[axes[i]];
    if (i > 0 && len != seq_len)
      return ctx.error("scan input {} has {} elements along axis {}, but scan input 0 has {}", i, len,
                       axes[i], seq_len);
    seq_len = len;
  }

  std::vector<Tensor> states;
  for (size_t i = 0; i < n_state; ++i) states.push_back(ctx.input(i));
  std::vector<Tensor> outs_acc(n_scan_out);  // allocated once the first element's dims are known
  std::vector<size_t> out_axis(n_scan_out);
  std::vector<Tensor> first_elem(n_scan_out);
  for (int64_t t = 0; t < seq_len; ++t) {
    std::vector<Tensor> feeds = states;
    for (size_t i = 0; i < n_scan_in; ++i)
      feeds.push_back(slice_axis(ctx.input(n_state + i), axes[i], in_dirs[i] ? seq_len - 1 - t : t));
    KILN_ASSIGN_OR_RETURN(std::vector<Tensor> outs, ctx.run_subgraph(body, feeds));
    if (outs.size() != n_state + n_scan_out)
      return ctx.error("body produced {} outputs, expected {}", outs.size(), n_state + n_scan_out);
    for (size_t i = 0; i < n_state; ++i) states[i] = std::move(outs[i]);
    for (size_t j = 0; j < n_scan_out; ++j) {
      const Tensor& e = outs[n_state + j];
      if (t == 0) {
        if (dtype_size(e.dtype()) == 0)
          return Status(StatusCode::kUnsupported,
                        fmt::format("{}: scan output {} has dtype {}, which the CPU backend does not support",
                                    ctx.node().describe(), j, dtype_name(e.dtype())));
        out_axis[j] = norm_axis(out_axes[j], static_cast<size_t>(e.rank()) + 1);
        Dims od = e.dims();
        od.insert(od.begin() + static_cast<ptrdiff_t>(out_axis[j]), seq_len);
        outs_acc[j] = Tensor(e.dtype(), od);
        first_elem[j] = e;
      } else if (e.dtype() != first_elem[j].dtype() || e.dims() != first_elem[j].dims()) {
        return ctx.error("scan output {} is {} in iteration {} but {} in iteration 0: scan outputs must "
                         "keep their dtype and shape", j, e.describe(), t, first_elem[j].describe());
      }
      place_axis(outs_acc[j], out_axis[j], out_dirs[j] ? seq_len - 1 - t : t, e);
    }
  }

  for (size_t i = 0; i < n_state; ++i) ctx.set_output(i, std::move(states[i]));
  for (size_t j = 0; j < n_scan_out; ++j) {
    if (seq_len > 0) {
      ctx.set_output(n_state + j, std::move(outs_acc[j]));
      continue;
    }
    // Nothing to scan: the declared element dims (unknown ones as 0) with 0 at the scan axis.
    const TensorType& elem = body.outputs[n_state + j]->type;
    DType dt = ctx.output_type(n_state + j).dtype;
    if (dt == DType::kUndefined) dt = elem.dtype;
    if (dt == DType::kUndefined || !elem.shape.has_rank())
      return ctx.error("scan output {} has an unknown type and the sequence is empty", j);
    Dims od;
    for (const Dim& d : elem.shape.dims()) od.push_back(d.known() ? d.value : 0);
    od.insert(od.begin() + static_cast<ptrdiff_t>(norm_axis(out_axes[j], od.size() + 1)), 0);
    ctx.allocate_output(n_state + j, dt, od);
  }
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL("Scan", kiln::scan_kernel);
