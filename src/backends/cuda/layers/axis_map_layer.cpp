#include "backends/cuda/layers/axis_map_layer.hpp"

namespace kiln::cuda {
namespace {

class AxisMapLayer : public CudaLayer {
 public:
  Status enqueue(const LaunchArgs& a) const override {
    const DeviceTensor &x = a.inputs[0], &y = a.outputs[0];
    if (y.numel() == 0) return Status::Ok();
    const void* fill = nullptr;
    if (fill_input_ >= 0 && static_cast<size_t>(fill_input_) < a.inputs.size() &&
        a.inputs[static_cast<size_t>(fill_input_)].numel() > 0)
      fill = a.inputs[static_cast<size_t>(fill_input_)].data;
    KILN_CUDA_CHECK(kernels::axis_map_gather(dtype_size(x.dtype), x.data, y.data, maps_.as<int64_t>(), fill, p_, a.stream));
    return Status::Ok();
  }

  kernels::AxisMapParams p_;
  DeviceBuffer maps_;
  int fill_input_ = -1;
};

}  // namespace

Status upload_axis_maps(const Dims& in_dims, const AxisMaps& maps, DeviceBuffer& buffer, kernels::AxisMapParams& p) {
  if (maps.size() != in_dims.size() || maps.size() > static_cast<size_t>(kernels::kMaxRank))
    return unsupported("rank {} index maps", maps.size());
  p = kernels::AxisMapParams{};
  p.rank = static_cast<int>(maps.size());
  // Entries become element offsets: index * the input stride of the axis.
  std::vector<int64_t> strides(in_dims.size());
  int64_t stride = 1;
  for (size_t k = in_dims.size(); k-- > 0;) {
    strides[k] = stride;
    stride *= in_dims[k];
  }
  std::vector<int64_t> flat;
  for (size_t k = 0; k < maps.size(); ++k) {
    p.out_dims[k] = static_cast<int64_t>(maps[k].size());
    p.map_offset[k] = static_cast<int64_t>(flat.size());
    for (int64_t v : maps[k]) {
      if (v >= in_dims[k]) return internal_error("index map entry {} past dim {}", v, in_dims[k]);
      flat.push_back(v < 0 ? -1 : v * strides[k]);
    }
  }
  KILN_ASSIGN_OR_RETURN(buffer, DeviceBuffer::allocate(flat.size() * sizeof(int64_t)));
  if (!flat.empty())
    KILN_CUDA_CHECK(cudaMemcpy(buffer.get(), flat.data(), flat.size() * sizeof(int64_t), cudaMemcpyHostToDevice));
  return Status::Ok();
}

Expected<std::unique_ptr<CudaLayer>> make_axis_map_layer(const Dims& in_dims, const AxisMaps& maps, int fill_input) {
  auto layer = std::make_unique<AxisMapLayer>();
  layer->fill_input_ = fill_input;
  KILN_RETURN_IF_ERROR(upload_axis_maps(in_dims, maps, layer->maps_, layer->p_));
  return std::unique_ptr<CudaLayer>(std::move(layer));
}

std::optional<std::vector<int64_t>> constant_ints(const Node& n, size_t i) {
  if (!n.has_input(i) || !n.inputs[i]->constant || !is_integer(n.inputs[i]->type.dtype)) return std::nullopt;
  auto v = n.inputs[i]->constant->to_int64_vector();
  if (!v.ok() || v->empty()) return std::nullopt;
  return *v;
}

bool input_absent(const Node& n, size_t i) {
  if (!n.has_input(i)) return true;
  auto d = static_dims(n.inputs[i]);
  return d && dims_numel(*d) == 0;
}

}  // namespace kiln::cuda
