// CPU kernel of Einsum as one clean loop: for each output element, sum over the labels that are
// not in the output of the product of the operands. Repeated labels in one operand (diagonals)
// add their strides; broadcast dims of size 1 get stride 0. float16 accumulates in float.
#include <vector>

#include "backends/cpu/accumulate.hpp"
#include "ops/einsum.hpp"
#include "ops/op_registry.hpp"

namespace kiln::cpu {
namespace {

struct EinsumLoop {
  std::vector<int64_t> out_sizes, sum_sizes;               // output labels, then summed labels
  std::vector<std::vector<int64_t>> out_strides, sum_strides;  // [operand][label]
};

// Advances a multi-index over `sizes`, moving each operand's offset by the matching strides.
// Returns false after the last index.
bool advance(std::vector<int64_t>& idx, const std::vector<int64_t>& sizes,
             const std::vector<std::vector<int64_t>>& strides, std::vector<int64_t>& offsets, size_t end) {
  for (size_t d = end; d-- > 0;) {
    for (size_t k = 0; k < offsets.size(); ++k) offsets[k] += strides[k][d];
    if (++idx[d] < sizes[d]) return true;
    for (size_t k = 0; k < offsets.size(); ++k) offsets[k] -= strides[k][d] * sizes[d];
    idx[d] = 0;
  }
  return false;
}

template <typename T>
void einsum_typed(const std::vector<const Tensor*>& ins, Tensor& y, const EinsumLoop& loop) {
  using A = acc_t<T>;
  const size_t n_in = ins.size();
  std::vector<const T*> data;
  for (const Tensor* t : ins) data.push_back(t->data<T>());
  T* out = y.data<T>();
  const int64_t out_numel = y.numel();
  for (int64_t s : loop.sum_sizes) {
    if (s == 0) {  // an empty sum: every output element is 0
      for (int64_t o = 0; o < out_numel; ++o) out[o] = store_as<T>(A(0));
      return;
    }
  }
  const size_t n_sum = loop.sum_sizes.size();
  // The innermost summed label runs in a tight loop; with no summed labels there is one term.
  const int64_t inner = n_sum ? loop.sum_sizes[n_sum - 1] : 1;
  std::vector<int64_t> inner_stride(n_in, 0);
  for (size_t k = 0; k < n_in && n_sum; ++k) inner_stride[k] = loop.sum_strides[k][n_sum - 1];
  std::vector<int64_t> out_idx(loop.out_sizes.size(), 0), base(n_in, 0);
  std::vector<int64_t> sum_idx(n_sum, 0), off(n_in, 0);
  for (int64_t o = 0; o < out_numel; ++o) {
    A acc(0);
    off = base;
    do {
      for (int64_t j = 0; j < inner; ++j) {
        A p = load_acc<A>(data[0][off[0] + j * inner_stride[0]]);
        for (size_t k = 1; k < n_in; ++k) p = acc_mul(p, load_acc<A>(data[k][off[k] + j * inner_stride[k]]));
        acc = acc_add(acc, p);
      }
    } while (n_sum > 1 && advance(sum_idx, loop.sum_sizes, loop.sum_strides, off, n_sum - 1));
    out[o] = store_as<T>(acc);
    advance(out_idx, loop.out_sizes, loop.out_strides, base, out_idx.size());
  }
}

Status einsum_kernel(KernelContext& ctx) {
  std::vector<const Tensor*> ins;
  std::vector<size_t> ranks;
  for (size_t k = 0; k < ctx.num_inputs(); ++k) {
    ins.push_back(&ctx.input(k));
    ranks.push_back(static_cast<size_t>(ctx.input(k).rank()));
  }
  auto spec = parse_einsum(ctx.attrs().s("equation"), ranks);
  if (!spec) return ctx.error("{}", spec.status().message());
  const size_t n_labels = static_cast<size_t>(spec->num_labels);
  std::vector<int64_t> size(n_labels, 1);
  std::vector<bool> used(n_labels, false);
  for (size_t k = 0; k < ins.size(); ++k)
    for (size_t d = 0; d < ranks[k]; ++d) {
      const size_t id = static_cast<size_t>(spec->inputs[k][d]);
      used[id] = true;
      if (ins[k]->dims()[d] != 1) size[id] = ins[k]->dims()[d];  // sizes were checked by inference
    }
  std::vector<bool> in_output(n_labels, false);
  for (int id : spec->output) in_output[static_cast<size_t>(id)] = true;
  std::vector<int> sum_labels;
  for (size_t id = 0; id < n_labels; ++id)
    if (used[id] && !in_output[id]) sum_labels.push_back(static_cast<int>(id));

  // Stride of each label in each operand; a dim of size 1 broadcasts (stride 0).
  auto strides_for = [&](const std::vector<int>& labels) {
    std::vector<std::vector<int64_t>> st(ins.size(), std::vector<int64_t>(labels.size(), 0));
    for (size_t k = 0; k < ins.size(); ++k) {
      int64_t stride = 1;
      for (size_t d = ranks[k]; d-- > 0;) {
        const int64_t dim = ins[k]->dims()[d];
        for (size_t l = 0; l < labels.size(); ++l)
          if (labels[l] == spec->inputs[k][d] && dim != 1) st[k][l] += stride;
        stride *= dim;
      }
    }
    return st;
  };
  EinsumLoop loop;
  for (int id : spec->output) loop.out_sizes.push_back(size[static_cast<size_t>(id)]);
  for (int id : sum_labels) loop.sum_sizes.push_back(size[static_cast<size_t>(id)]);
  loop.out_strides = strides_for(spec->output);
  loop.sum_strides = strides_for(sum_labels);

  Tensor& y = ctx.output(0);
  const DType dt = ins[0]->dtype();
  bool supported = true;
  bool ok = dispatch_dtype(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, bool>) supported = false;
    else einsum_typed<T>(ins, y, loop);
  });
  return ok && supported ? Status::Ok() : ctx.unsupported_dtype(dt, 0);
}

}  // namespace
}  // namespace kiln::cpu

KILN_REGISTER_CPU_KERNEL("Einsum", kiln::cpu::einsum_kernel);
