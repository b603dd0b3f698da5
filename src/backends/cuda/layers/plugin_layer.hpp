// The generic CUDA layer of custom-op plugins: runs a node's plugin's enqueue().
#pragma once

#include "backends/cuda/cuda_layer.hpp"

namespace kiln::cuda {

const CudaLayerFactory& plugin_layer_factory();

}  // namespace kiln::cuda
