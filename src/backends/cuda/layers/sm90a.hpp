// Whether the current device runs kiln's Hopper-only kernels (wgmma, TMA): an sm_90 GPU, and
// device code compiled for sm_90a in this build (a build for other architectures has the kernels
// as traps). Tactics using them are offered only then.
#pragma once

namespace kiln::cuda::kernels {

bool sm90a_kernels_available();

}  // namespace kiln::cuda::kernels
