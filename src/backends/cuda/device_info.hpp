// What the CUDA backend needs to know about the GPU and the libraries it runs with.
#pragma once

#include "runtime/plan.hpp"

namespace kiln::cuda {

// Ok when a CUDA device is usable; otherwise why not (no driver, no device, ...).
Status device_available();
// The current device and library versions, as a plan target.
Expected<PlanTarget> current_target();

}  // namespace kiln::cuda
