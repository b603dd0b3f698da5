// CUDA C++ source for a kiln.FusedElementwise program (compiled with NVRTC at build time by
// fused_elementwise.cpp). The source depends only on the program and the input/output dtypes, not
// on shapes: dims and per-input broadcast strides are kernel parameters, so identical groups (one
// per transformer layer, say) share one compiled kernel.
//
// The module has two kernels (extern "C"), each grid-stride, one thread per output element or per
// vector of `vec` elements, with 32-bit index math (64-bit when `wide`: more than 2^31 elements):
//   kfe_s   scalar
//   kfe_v   vectorized: the innermost dim divides into vec-element groups; an input whose innermost
//           stride is 1 is read with one vector load, a broadcast one (stride 0) once per group;
//           outputs are written as vectors
// Their one parameter is FusedEwParams<num_inputs, num_outputs> (below), passed by value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "builder/build_options.hpp"
#include "ir/graph.hpp"
#include "ops/fused_elementwise.hpp"

namespace kiln::cuda {

inline constexpr int kFusedEwMaxRank = 8;
inline constexpr int kFusedEwMaxInputs = 8;
inline constexpr int kFusedEwMaxOutputs = 4;

// Host mirror of the generated kernels' parameter struct (same layout: the generated code
// declares the arrays at their maximum sizes too).
struct FusedEwParams {
  const void* in[kFusedEwMaxInputs];
  void* out[kFusedEwMaxOutputs];
  long long n;       // output elements (scalar kernels) or vector groups (vector kernels)
  long long rank;
  long long dims[kFusedEwMaxRank];  // merged output dims, innermost last (in groups for vector kernels)
  long long strides[kFusedEwMaxInputs][kFusedEwMaxRank];  // element strides (vector kernels: innermost * kVec)
  long long inner1[kFusedEwMaxInputs];  // vector kernels: 1 when the input's innermost stride is 1
};

struct FusedEwSource {
  std::string code;
  int vec = 1;  // elements per vector group in kfe_v*
};

// NVRTC compilations so far in this process (cache hits and plan loads do not count), for tests.
int64_t fused_ew_nvrtc_compiles();
// NVRTC compilation of generated source for `arch` ("sm_90a"), through the cache; needs no GPU.
Expected<std::string> compile_fused_ew(const std::string& source, const std::string& arch);
// Empties the build-time kernel cache (tests).
void fused_ew_clear_cache();
// The node attributes that carry a fused layer's compiled kernel and its source in the plan.
inline constexpr const char* kCubinAttr = "kiln_cubin";
inline constexpr const char* kSourceAttr = "kiln_source";
// Build time, for a kiln.FusedElementwise node (other nodes: nothing): generates its kernel,
// compiles it with NVRTC for this GPU (cached by source) and sets kCubinAttr / kSourceAttr.
// Errors (NVRTC's log included) are the caller's to attribute to the node.
Status prepare_fused_elementwise(Node& n, const BuildOptions& options);

FusedEwSource fused_ew_source(const fused_ew::Program& p, const std::vector<DType>& inputs,
                              const std::vector<DType>& outputs, bool wide = false);

}  // namespace kiln::cuda
