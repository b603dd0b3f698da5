// A layer that moves elements through per-axis index maps, computed at create from the node's
// static shapes and constant inputs (Slice, Pad, Expand, Tile, nearest Resize): output index c
// of axis k reads input index maps[k][c], or the fill value when that is -1.
#pragma once

#include "backends/cuda/device_buffer.hpp"
#include "backends/cuda/layers/nn_kernels.hpp"
#include "backends/cuda/layers/nn_util.hpp"

namespace kiln::cuda {

using AxisMaps = std::vector<std::vector<int64_t>>;

// Uploads the maps as element offsets for kernels::axis_map_gather and fills its parameters.
Status upload_axis_maps(const Dims& in_dims, const AxisMaps& maps, DeviceBuffer& buffer, kernels::AxisMapParams& p);

// fill_input: the node input holding the fill value (same dtype), or -1 for zero.
Expected<std::unique_ptr<CudaLayer>> make_axis_map_layer(const Dims& in_dims, const AxisMaps& maps, int fill_input);

// The values of constant integer input i; nullopt when absent, empty or not constant.
std::optional<std::vector<int64_t>> constant_ints(const Node& n, size_t i);
// Whether optional input i is absent (unwired or empty).
bool input_absent(const Node& n, size_t i);

}  // namespace kiln::cuda
