// Numpy broadcasting as strides over the output, with mergeable dims merged (fewer index
// divisions in the kernels, and the innermost run as long as possible for vector access).
#include "backends/cuda/layers/ew_kernels.hpp"

namespace kiln::cuda {

bool merge_broadcast_dims(const Dims& out, const std::vector<Dims>& inputs, std::vector<int64_t>& dims,
                          std::vector<std::vector<int64_t>>& merged) {
  const size_t n = inputs.size();
  const size_t rank = out.size();
  std::vector<std::vector<int64_t>> strides(n, std::vector<int64_t>(rank, 0));
  for (size_t k = 0; k < n; ++k) {
    const Dims& d = inputs[k];
    if (d.size() > rank) return false;
    const size_t lead = rank - d.size();
    int64_t s = 1;
    for (size_t i = d.size(); i-- > 0;) {
      const int64_t od = out[lead + i];
      if (d[i] == od) strides[k][lead + i] = od == 1 ? 0 : s;
      else if (d[i] != 1) return false;
      s *= d[i];
    }
  }
  // Walk outer to inner; dim i joins the previous one when, for every input, stepping the
  // previous dim once equals stepping dim i out[i] times.
  dims.clear();
  merged.assign(n, {});
  for (size_t i = 0; i < rank; ++i) {
    if (out[i] == 1) continue;
    bool join = !dims.empty();
    for (size_t k = 0; join && k < n; ++k) join = merged[k].back() == strides[k][i] * out[i];
    if (join) {
      dims.back() *= out[i];
      for (size_t k = 0; k < n; ++k) merged[k].back() = strides[k][i];
    } else {
      dims.push_back(out[i]);
      for (size_t k = 0; k < n; ++k) merged[k].push_back(strides[k][i]);
    }
  }
  if (dims.empty()) {  // a scalar, or every dim 1
    dims.push_back(1);
    for (size_t k = 0; k < n; ++k) merged[k].push_back(0);
  }
  return true;
}

bool make_broadcast_geometry(const Dims& out, const std::vector<Dims>& inputs, BroadcastGeometry& g) {
  const size_t n = inputs.size();
  if (n == 0 || n > static_cast<size_t>(kMaxBroadcastInputs)) return false;
  std::vector<int64_t> dims;
  std::vector<std::vector<int64_t>> merged;
  if (!merge_broadcast_dims(out, inputs, dims, merged)) return false;
  if (dims.size() > static_cast<size_t>(kMaxBroadcastRank)) return false;
  g = BroadcastGeometry{};
  g.rank = static_cast<int>(dims.size());
  g.num_inputs = static_cast<int>(n);
  g.numel = dims_numel(out);
  for (size_t d = 0; d < dims.size(); ++d) {
    g.dims[d] = dims[d];
    for (size_t k = 0; k < n; ++k) g.strides[k][d] = merged[k][d];
  }
  return true;
}

}  // namespace kiln::cuda
