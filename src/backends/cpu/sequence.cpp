// Sequence kernels. Elements are shared, not copied: tensors are never written once produced.
#include <cstring>

#include "ops/op_registry.hpp"

namespace kiln {
namespace {

Expected<const TensorSequence*> sequence_input(const KernelContext& ctx, size_t i) {
  const TensorSequence* s = ctx.input_sequence(i);
  if (!s) return ctx.error("input {} is not a sequence", i);
  return s;
}

// A position input (int32/int64 scalar) in [-n, n-1], or [-n, n] for an insertion; `def` when absent.
Expected<size_t> position(const KernelContext& ctx, size_t input, int64_t n, int64_t def, bool insert) {
  int64_t p = def;
  if (ctx.has_input(input)) {
    const Tensor& t = ctx.input(input);
    if (t.dtype() != DType::kInt32 && t.dtype() != DType::kInt64)
      return ctx.error("position must be int32 or int64, got {}", dtype_name(t.dtype()));
    if (t.numel() != 1) return ctx.error("position must be a scalar, got shape {}", dims_to_string(t.dims()));
    p = (*t.to_int64_vector())[0];
  }
  const int64_t hi = insert ? n : n - 1;
  if (p < -n || p > hi) return ctx.error("position {} is out of range [{}, {}]", p, -n, hi);
  return static_cast<size_t>(p < 0 ? p + n : p);
}

Status sequence_empty_kernel(KernelContext& ctx) {
  ctx.set_output_sequence(0, TensorSequence{ctx.output_type(0).dtype, {}});
  return Status::Ok();
}

Status sequence_construct_kernel(KernelContext& ctx) {
  TensorSequence s{ctx.input(0).dtype(), {}};
  for (size_t i = 0; i < ctx.num_inputs(); ++i) s.tensors.push_back(ctx.input(i));
  ctx.set_output_sequence(0, std::move(s));
  return Status::Ok();
}

Status sequence_insert_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const TensorSequence* in, sequence_input(ctx, 0));
  if (!ctx.has_input(1)) return ctx.error("input 1 must be a tensor");
  const auto n = static_cast<int64_t>(in->tensors.size());
  KILN_ASSIGN_OR_RETURN(size_t pos, position(ctx, 2, n, n, true));
  if (ctx.input(1).dtype() != in->dtype)
    return ctx.error("inserts a {} tensor into a sequence of {}", dtype_name(ctx.input(1).dtype()), dtype_name(in->dtype));
  TensorSequence out = *in;
  out.tensors.insert(out.tensors.begin() + static_cast<std::ptrdiff_t>(pos), ctx.input(1));
  ctx.set_output_sequence(0, std::move(out));
  return Status::Ok();
}

Status sequence_erase_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const TensorSequence* in, sequence_input(ctx, 0));
  const auto n = static_cast<int64_t>(in->tensors.size());
  if (n == 0) return ctx.error("cannot erase from an empty sequence");
  KILN_ASSIGN_OR_RETURN(size_t pos, position(ctx, 1, n, -1, false));
  TensorSequence out = *in;
  out.tensors.erase(out.tensors.begin() + static_cast<std::ptrdiff_t>(pos));
  ctx.set_output_sequence(0, std::move(out));
  return Status::Ok();
}

Status sequence_at_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const TensorSequence* in, sequence_input(ctx, 0));
  if (!ctx.has_input(1)) return ctx.error("position is required");
  KILN_ASSIGN_OR_RETURN(size_t pos, position(ctx, 1, static_cast<int64_t>(in->tensors.size()), 0, false));
  ctx.set_output(0, in->tensors[pos]);
  return Status::Ok();
}

Status sequence_length_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const TensorSequence* in, sequence_input(ctx, 0));
  ctx.set_output(0, Tensor::scalar<int64_t>(static_cast<int64_t>(in->tensors.size())));
  return Status::Ok();
}

// Block copy of `parts` (all of rank r, equal except along `axis`) into one tensor along `axis`.
Tensor concat_along(const std::vector<Tensor>& parts, size_t axis, DType dtype, Dims out_dims) {
  Tensor out(dtype, out_dims);
  const size_t es = dtype_size(dtype);
  auto [outer, inner] = dims_outer_inner(out_dims, axis);
  char* dst = static_cast<char*>(out.raw_data());
  for (int64_t o = 0; o < outer; ++o) {
    for (const Tensor& p : parts) {
      const size_t block = static_cast<size_t>(p.dims()[axis] * inner) * es;
      std::memcpy(dst, static_cast<const char*>(p.raw_data()) + static_cast<size_t>(o) * block, block);
      dst += block;
    }
  }
  return out;
}

Status concat_from_sequence_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const TensorSequence* in, sequence_input(ctx, 0));
  if (in->tensors.empty()) return ctx.error("cannot concatenate an empty sequence");
  if (dtype_size(in->dtype) == 0) return ctx.unsupported_dtype(in->dtype);
  const bool new_axis = ctx.attrs().i("new_axis", 0) != 0;
  const Tensor& first = in->tensors[0];
  const int64_t rank = first.rank() + (new_axis ? 1 : 0);
  int64_t axis = ctx.attrs().i("axis");
  if (axis < -rank || axis >= std::max<int64_t>(rank, 1))
    return ctx.error("axis {} is out of range for rank {}", axis, rank);
  if (axis < 0) axis += rank;
  const auto ax = static_cast<size_t>(axis);
  // With new_axis, each element is viewed with a size-1 dim inserted at `axis` (a stack).
  std::vector<Tensor> parts;
  Dims out_dims;
  for (size_t i = 0; i < in->tensors.size(); ++i) {
    const Tensor& t = in->tensors[i];
    Dims d = t.dims();
    if (new_axis) d.insert(d.begin() + axis, 1);
    if (t.rank() != first.rank())
      return ctx.error("element {} has rank {}, element 0 rank {}", i, t.rank(), first.rank());
    if (i == 0) out_dims = d;
    else {
      for (size_t k = 0; k < d.size(); ++k)
        if (k != ax && d[k] != out_dims[k])
          return ctx.error("element {} has shape {}, element 0 {}: they may differ only along axis {}", i,
                           dims_to_string(t.dims()), dims_to_string(first.dims()), axis);
      out_dims[ax] += d[ax];
    }
    parts.push_back(t.reshaped(d));
  }
  ctx.set_output(0, concat_along(parts, ax, in->dtype, out_dims));
  return Status::Ok();
}

Status split_to_sequence_kernel(KernelContext& ctx) {
  const Tensor& in = ctx.input(0);
  const size_t es = dtype_size(in.dtype());
  if (es == 0) return ctx.unsupported_dtype(in.dtype());
  int64_t axis = ctx.attrs().i("axis", 0);
  const int64_t rank = in.rank();
  if (axis < -rank || axis >= std::max<int64_t>(rank, 1))
    return ctx.error("axis {} is out of range for rank {}", axis, rank);
  if (axis < 0) axis += rank;
  if (rank == 0) return ctx.error("cannot split a scalar");
  const auto ax = static_cast<size_t>(axis);
  const int64_t len = in.dims()[ax];
  std::vector<int64_t> sizes;
  bool squeeze = false;
  if (!ctx.has_input(1)) {
    sizes.assign(static_cast<size_t>(len), 1);
    squeeze = ctx.attrs().i("keepdims", 1) == 0;
  } else {
    const Tensor& split = ctx.input(1);
    auto v = split.to_int64_vector();
    if (!v) return ctx.error("split must be int32 or int64, got {}", dtype_name(split.dtype()));
    if (split.rank() == 0) {
      const int64_t k = (*v)[0];
      if (k <= 0) return ctx.error("split {} must be positive", k);
      for (int64_t done = 0; done < len; done += k) sizes.push_back(std::min(k, len - done));
    } else {
      int64_t total = 0;
      for (int64_t s : *v) {
        if (s < 0) return ctx.error("split sizes must be >= 0, got {}", s);
        total += s;
      }
      if (total != len) return ctx.error("split sizes sum to {}, but axis {} has size {}", total, axis, len);
      sizes = *v;
    }
  }
  auto [outer, inner] = dims_outer_inner(in.dims(), ax);
  const size_t in_block = static_cast<size_t>(len * inner) * es;
  TensorSequence out{in.dtype(), {}};
  size_t offset = 0;
  for (int64_t s : sizes) {
    Dims d = in.dims();
    d[ax] = s;
    Tensor piece(in.dtype(), d);
    const size_t block = static_cast<size_t>(s * inner) * es;
    const char* src = static_cast<const char*>(in.raw_data()) + offset;
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(static_cast<char*>(piece.raw_data()) + static_cast<size_t>(o) * block,
                  src + static_cast<size_t>(o) * in_block, block);
    offset += block;
    if (squeeze) d.erase(d.begin() + axis);
    out.tensors.push_back(piece.reshaped(d));
  }
  ctx.set_output_sequence(0, std::move(out));
  return Status::Ok();
}

// Runs the body once per element of input 0; further sequence inputs give their element at the
// same index, tensor inputs are passed whole. Output j collects the bodies' output j.
Status sequence_map_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const TensorSequence* first, sequence_input(ctx, 0));
  const Graph* body = ctx.attrs().graph("body");
  if (!body) return ctx.error("attribute 'body' is required");
  const size_t n = first->tensors.size();
  for (size_t i = 1; i < ctx.num_inputs(); ++i) {
    const TensorSequence* s = ctx.input_sequence(i);
    if (s && s->tensors.size() != n)
      return ctx.error("input {} has {} elements, input 0 {}", i, s->tensors.size(), n);
    if (!s && !ctx.has_input(i)) return ctx.error("input {} must be a tensor or a sequence", i);
  }
  std::vector<TensorSequence> outs(ctx.num_outputs());
  for (size_t j = 0; j < outs.size(); ++j) outs[j].dtype = ctx.output_type(j).dtype;
  for (size_t k = 0; k < n; ++k) {
    std::vector<RuntimeValue> args;
    for (size_t i = 0; i < ctx.num_inputs(); ++i) {
      const TensorSequence* s = ctx.input_sequence(i);
      args.emplace_back(s ? s->tensors[k] : ctx.input(i));
    }
    KILN_ASSIGN_OR_RETURN(auto results, ctx.run_subgraph_values(*body, args));
    for (size_t j = 0; j < outs.size(); ++j) {
      const Tensor* t = as_tensor(results[j]);
      if (!t) return ctx.error("body output {} is not a tensor", j);
      if (outs[j].dtype == DType::kUndefined) outs[j].dtype = t->dtype();
      if (t->dtype() != outs[j].dtype)
        return ctx.error("body output {} is {} at element {}, expected {}", j, dtype_name(t->dtype()), k,
                         dtype_name(outs[j].dtype));
      outs[j].tensors.push_back(*t);
    }
  }
  for (size_t j = 0; j < outs.size(); ++j) ctx.set_output_sequence(j, std::move(outs[j]));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL("SequenceEmpty", kiln::sequence_empty_kernel);
KILN_REGISTER_CPU_KERNEL("SequenceConstruct", kiln::sequence_construct_kernel);
KILN_REGISTER_CPU_KERNEL("SequenceInsert", kiln::sequence_insert_kernel);
KILN_REGISTER_CPU_KERNEL("SequenceErase", kiln::sequence_erase_kernel);
KILN_REGISTER_CPU_KERNEL("SequenceAt", kiln::sequence_at_kernel);
KILN_REGISTER_CPU_KERNEL("SequenceLength", kiln::sequence_length_kernel);
KILN_REGISTER_CPU_KERNEL("ConcatFromSequence", kiln::concat_from_sequence_kernel);
KILN_REGISTER_CPU_KERNEL("SplitToSequence", kiln::split_to_sequence_kernel);
KILN_REGISTER_CPU_KERNEL("SequenceMap", kiln::sequence_map_kernel);
