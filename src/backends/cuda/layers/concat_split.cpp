// Concat and Split: each input (output) is a block of columns in a (outer, axis * inner) view of
// the output (input), moved with one pitched 2-D copy. Any dtype: bytes are bytes.
#include "backends/cuda/layers/nn_kernels.hpp"
#include "backends/cuda/layers/nn_util.hpp"

namespace kiln::cuda {
namespace {

struct AxisView {
  int64_t outer = 1, inner_bytes = 1;  // inner_bytes: bytes of one step along the axis
};

// The axis attribute normalized against `rank`, or -1 when out of range.
int64_t axis_of(const Node& n, int64_t def, size_t rank) {
  int64_t a = n.attrs.i("axis", def);
  if (a < 0) a += static_cast<int64_t>(rank);
  return a >= 0 && a < static_cast<int64_t>(rank) ? a : -1;
}

AxisView view_of(const Dims& d, int64_t axis, size_t elem) {
  AxisView v;
  v.inner_bytes = static_cast<int64_t>(elem);
  for (int64_t i = 0; i < axis; ++i) v.outer *= d[static_cast<size_t>(i)];
  for (size_t i = static_cast<size_t>(axis) + 1; i < d.size(); ++i) v.inner_bytes *= d[i];
  return v;
}

// Concat (split = false): inputs -> output; Split (split = true): input -> outputs.
class ConcatSplitLayer : public CudaLayer {
 public:
  ConcatSplitLayer(int64_t axis, bool split) : axis_(axis), split_(split) {}
  Status enqueue(const LaunchArgs& a) const override {
    const std::vector<DeviceTensor>& parts = split_ ? a.outputs : a.inputs;
    const DeviceTensor& whole = split_ ? a.inputs[0] : a.outputs[0];
    const AxisView v = view_of(whole.dims, axis_, dtype_size(whole.dtype));
    const int64_t whole_pitch = whole.dims[static_cast<size_t>(axis_)] * v.inner_bytes;
    if (v.outer > 1 && parts.size() <= static_cast<size_t>(kernels::kMaxRowParts)) {  // one launch for all parts
      void* ptrs[kernels::kMaxRowParts];
      int64_t widths[kernels::kMaxRowParts];
      bool present = true;
      for (size_t k = 0; k < parts.size(); ++k) {
        ptrs[k] = parts[k].data;
        widths[k] = parts[k].dims[static_cast<size_t>(axis_)] * v.inner_bytes;
        present = present && (ptrs[k] || widths[k] == 0);
      }
      if (present && whole.data) {
        const cudaError_t e = kernels::concat_rows(whole.data, ptrs, widths, static_cast<int>(parts.size()), v.outer,
                                                   split_, a.stream);
        if (e != cudaErrorNotSupported) {
          KILN_CUDA_CHECK(e);
          return Status::Ok();
        }
      }
    }
    int64_t offset = 0;
    for (const DeviceTensor& p : parts) {
      const int64_t width = p.dims[static_cast<size_t>(axis_)] * v.inner_bytes;
      if (width > 0 && v.outer > 0 && p.data) {
        char* base = static_cast<char*>(whole.data) + offset;
        if (split_)
          KILN_CUDA_CHECK(kernels::copy_2d(p.data, width, base, whole_pitch, width, v.outer, a.stream));
        else
          KILN_CUDA_CHECK(kernels::copy_2d(base, whole_pitch, p.data, width, width, v.outer, a.stream));
      }
      offset += width;
    }
    return Status::Ok();
  }

 private:
  int64_t axis_;
  bool split_;
};

bool concat_supports(const Node& n) {
  if (!n.has_output(0) || n.inputs.empty() || !all_static(n)) return false;
  const DType t = n.outputs[0]->type.dtype;
  const size_t rank = static_dims(n.outputs[0])->size();
  if (dtype_size(t) == 0 || rank == 0 || axis_of(n, 0, rank) < 0) return false;
  for (const Value* v : n.inputs)
    if (!v || v->type.dtype != t || static_dims(v)->size() != rank) return false;
  return true;
}

bool split_supports(const Node& n) {
  if (!n.has_input(0) || !all_static(n)) return false;
  const DType t = n.inputs[0]->type.dtype;
  const size_t rank = static_dims(n.inputs[0])->size();
  if (dtype_size(t) == 0 || rank == 0 || axis_of(n, 0, rank) < 0) return false;
  // Every output present: an absent one's width would be unknown.
  for (const Value* v : n.outputs)
    if (!v || v->type.dtype != t || static_dims(v)->size() != rank) return false;
  return true;
}

CudaLayerFactory concat_split_factory(bool split) {
  return CudaLayerFactory{
      .supports = split ? split_supports : concat_supports,
      .tactics = nullptr,
      .create = [split](const Node& n, const LayerChoice&) -> Expected<std::unique_ptr<CudaLayer>> {
        const Value* whole = split ? n.inputs[0] : n.outputs[0];
        const int64_t axis = axis_of(n, 0, static_dims(whole)->size());
        if (axis < 0) return invalid_model("{}: axis out of range", n.describe());
        return std::unique_ptr<CudaLayer>(std::make_unique<ConcatSplitLayer>(axis, split));
      }};
}

}  // namespace
}  // namespace kiln::cuda

KILN_REGISTER_CUDA_LAYER("Concat", kiln::cuda::concat_split_factory(false));
KILN_REGISTER_CUDA_LAYER("Split", kiln::cuda::concat_split_factory(true));
