// A one-thread kernel that keeps `stream` busy for `ns` nanoseconds of GPU time: queued ahead of
// a timed region, it lets the host finish enqueueing the region's work (tensor-map encoding,
// cuDNN variant packs, launches) before the GPU reaches the region's start event, so the events
// time the GPU's work and not the host's.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace kiln::cuda {

cudaError_t gpu_delay(cudaStream_t stream, uint64_t ns);

}  // namespace kiln::cuda
