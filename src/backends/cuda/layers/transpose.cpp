// Transpose of any dtype and rank. Unit dims are dropped and runs of dims that stay adjacent
// are merged first, so most real permutations become a plain copy, a batched 2-D transpose
// (tiled through shared memory: NCHW <-> NHWC, the last two dims swapped), the interleaving of a
// few planes (a 3-channel image to NHWC) or a low-rank strided gather.
#include <algorithm>
#include <numeric>

#include "backends/cuda/layers/nn_kernels.hpp"
#include "backends/cuda/layers/nn_util.hpp"

namespace kiln::cuda {
namespace {

struct TransposePlan {
  enum class Kind { kCopy, kTiled, kInterleave, kGeneral } kind = Kind::kCopy;
  int64_t batch = 1, rows = 1, cols = 1;  // kTiled, kInterleave (rows: the planes)
  kernels::StridedParams strided;         // kGeneral
  // kGeneral when the innermost dim stays innermost: the same gather moving `unit`-byte pieces
  // of each inner run (16 bytes where the run and both buffers allow), used when aligned.
  kernels::StridedParams wide;
  int64_t unit = 0;
};

std::optional<Dims> perm_of(const Node& n, size_t rank) {
  Dims perm = n.attrs.ints("perm");
  if (perm.empty()) {  // default: reverse the dims
    perm.resize(rank);
    std::iota(perm.rbegin(), perm.rend(), 0);
  }
  if (perm.size() != rank) return std::nullopt;
  std::vector<bool> seen(rank, false);
  for (int64_t& p : perm) {
    if (p < 0) p += static_cast<int64_t>(rank);
    if (p < 0 || p >= static_cast<int64_t>(rank) || seen[static_cast<size_t>(p)]) return std::nullopt;
    seen[static_cast<size_t>(p)] = true;
  }
  return perm;
}

std::optional<TransposePlan> plan_transpose(const Dims& in, const Dims& perm, size_t es) {
  // Output-order list of input axes, without unit dims, renumbered 0.. (so that axes around a
  // dropped unit dim count as adjacent).
  std::vector<int64_t> compact(in.size(), -1);
  Dims sizes;
  for (size_t i = 0; i < in.size(); ++i)
    if (in[i] != 1) {
      compact[i] = static_cast<int64_t>(sizes.size());
      sizes.push_back(in[i]);
    }
  std::vector<int64_t> order;
  for (int64_t p : perm)
    if (compact[static_cast<size_t>(p)] >= 0) order.push_back(compact[static_cast<size_t>(p)]);
  // Merge runs of consecutive input axes: groups of (first input axis, size).
  std::vector<std::pair<int64_t, int64_t>> groups;
  for (size_t i = 0; i < order.size(); ++i) {
    const int64_t size = sizes[static_cast<size_t>(order[i])];
    if (i > 0 && order[i] == order[i - 1] + 1)
      groups.back().second *= size;
    else
      groups.push_back({order[i], size});
  }
  TransposePlan plan;
  const size_t r = groups.size();
  if (r <= 1) return plan;  // nothing moves relative to anything else
  // The merged input: groups sorted by their first axis.
  std::vector<size_t> by_axis(r);
  std::iota(by_axis.begin(), by_axis.end(), 0);
  std::sort(by_axis.begin(), by_axis.end(), [&](size_t a, size_t b) { return groups[a].first < groups[b].first; });
  std::vector<size_t> rank_of(r);  // out position -> merged input position
  for (size_t i = 0; i < r; ++i) rank_of[by_axis[i]] = i;
  Dims mdims(r);
  for (size_t i = 0; i < r; ++i) mdims[i] = groups[by_axis[i]].second;
  Dims mperm(r);
  for (size_t o = 0; o < r; ++o) mperm[o] = static_cast<int64_t>(rank_of[o]);
  // 32x32 tiles waste most of their threads when one side is only a few elements long (an NHWC ->
  // NCHW output with 2 channels, a 3-channel image to NHWC): the strided gather below reads those
  // few interleaved streams with full-width coalesced writes instead.
  const bool narrow = (r == 2 || r == 3) && std::min(mdims[r - 2], mdims[r - 1]) < 8;
  // (batch,) planes, size -> (batch,) size, planes with a few planes: interleaved in shared memory.
  const bool swap_last = (r == 2 && mperm == Dims{1, 0}) || (r == 3 && mperm == Dims{0, 2, 1});
  if (swap_last && mdims[r - 2] <= kernels::kMaxInterleavePlanes && es <= 8) {
    plan.kind = TransposePlan::Kind::kInterleave;
    plan.batch = r == 3 ? mdims[0] : 1;
    plan.rows = mdims[r - 2];
    plan.cols = mdims[r - 1];
    return plan;
  }
  if (r == 2 && mperm == Dims{1, 0} && !narrow) {
    plan.kind = TransposePlan::Kind::kTiled;
    plan.rows = mdims[0];
    plan.cols = mdims[1];
    return plan;
  }
  if (r == 3 && mperm == Dims{0, 2, 1} && !narrow) {
    plan.kind = TransposePlan::Kind::kTiled;
    plan.batch = mdims[0];
    plan.rows = mdims[1];
    plan.cols = mdims[2];
    return plan;
  }
  if (r > static_cast<size_t>(kernels::kMaxRank)) return std::nullopt;
  Dims strides(r, 1);
  for (size_t i = r - 1; i-- > 0;) strides[i] = strides[i + 1] * mdims[i + 1];
  plan.kind = TransposePlan::Kind::kGeneral;
  plan.strided.rank = static_cast<int>(r);
  for (size_t o = 0; o < r; ++o) {
    plan.strided.out_dims[o] = mdims[static_cast<size_t>(mperm[o])];
    plan.strided.in_strides[o] = strides[static_cast<size_t>(mperm[o])];
  }
  if (mperm[r - 1] == static_cast<int64_t>(r - 1)) {
    const int64_t run = mdims[r - 1] * static_cast<int64_t>(es);
    int64_t unit = 16;
    while (unit > static_cast<int64_t>(es) && run % unit != 0) unit /= 2;
    if (unit > static_cast<int64_t>(es)) {
      const int64_t k = unit / static_cast<int64_t>(es);  // elements per unit
      plan.unit = unit;
      plan.wide = plan.strided;
      plan.wide.out_dims[r - 1] /= k;
      for (size_t o = 0; o + 1 < r; ++o) plan.wide.in_strides[o] /= k;
    }
  }
  return plan;
}

bool aligned(const void* p, int64_t unit) {
  return reinterpret_cast<uintptr_t>(p) % static_cast<uintptr_t>(unit) == 0;
}

class TransposeLayer : public CudaLayer {
 public:
  explicit TransposeLayer(TransposePlan p) : p_(p) {}
  Status enqueue(const LaunchArgs& a) const override {
    const DeviceTensor &x = a.inputs[0], &y = a.outputs[0];
    if (y.numel() == 0) return Status::Ok();
    const size_t es = dtype_size(x.dtype);
    switch (p_.kind) {
      case TransposePlan::Kind::kCopy:
        if (x.data != y.data)
          KILN_CUDA_CHECK(cudaMemcpyAsync(y.data, x.data, y.nbytes(), cudaMemcpyDeviceToDevice, a.stream));
        break;
      case TransposePlan::Kind::kTiled:
        KILN_CUDA_CHECK(kernels::batched_transpose(es, x.data, y.data, p_.batch, p_.rows, p_.cols, a.stream));
        break;
      case TransposePlan::Kind::kInterleave:
        KILN_CUDA_CHECK(kernels::interleave_planes(es, x.data, y.data, p_.batch, p_.rows, p_.cols, a.stream));
        break;
      case TransposePlan::Kind::kGeneral:
        if (p_.unit > 0 && aligned(x.data, p_.unit) && aligned(y.data, p_.unit))
          KILN_CUDA_CHECK(kernels::strided_copy(static_cast<size_t>(p_.unit), x.data, y.data, p_.wide, a.stream));
        else
          KILN_CUDA_CHECK(kernels::strided_copy(es, x.data, y.data, p_.strided, a.stream));
        break;
    }
    return Status::Ok();
  }

 private:
  TransposePlan p_;
};

std::optional<TransposePlan> node_plan(const Node& n) {
  if (!n.has_input(0) || !n.has_output(0) || !all_static(n)) return std::nullopt;
  const DType t = n.inputs[0]->type.dtype;
  const size_t es = dtype_size(t);
  if (n.outputs[0]->type.dtype != t || !(es == 1 || es == 2 || es == 4 || es == 8)) return std::nullopt;
  const Dims in = *static_dims(n.inputs[0]);
  auto perm = perm_of(n, in.size());
  if (!perm) return std::nullopt;
  return plan_transpose(in, *perm, es);
}

}  // namespace
}  // namespace kiln::cuda

KILN_REGISTER_CUDA_LAYER(
    "Transpose",
    kiln::cuda::CudaLayerFactory{
        .supports = [](const kiln::Node& n) { return kiln::cuda::node_plan(n).has_value(); },
        .tactics = nullptr,
        .create = [](const kiln::Node& n, const kiln::LayerChoice&) -> kiln::Expected<std::unique_ptr<kiln::cuda::CudaLayer>> {
          auto plan = kiln::cuda::node_plan(n);
          if (!plan) return kiln::invalid_model("{}: cannot plan this transpose", n.describe());
          return std::unique_ptr<kiln::cuda::CudaLayer>(std::make_unique<kiln::cuda::TransposeLayer>(*plan));
        }});
