// Optimization profiles: the range of shapes a plan accepts for its dynamic inputs.
//
// A profile gives, for each input whose dims are dynamic, the smallest (min), typical (opt: the
// CUDA builder times tactics at it) and largest (max: activation memory is planned for it) shape.
// A plan may hold several profiles; an execution context uses one at a time.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "ir/graph.hpp"
#include "kiln/status.hpp"

namespace kiln {

struct ProfileShapes {
  Dims min, opt, max;
};

struct OptimizationProfile {
  std::map<std::string, ProfileShapes> inputs;  // input name -> its range
  // The shapes at one end: `which` is 0 (min), 1 (opt) or 2 (max).
  std::map<std::string, Dims> at(int which) const;
};

// Ok when `dims` lies within profile `index` for input `name` (or the profile does not name it);
// otherwise an error naming the binding, the dims given and the allowed min..max range.
Status check_profile_shape(const std::vector<OptimizationProfile>& profiles, size_t index, const std::string& name,
                           const Dims& dims);

// Checks profiles against a graph's inputs: every name is an input, ranks match each other and
// the declared shape, known dims are kept, and min <= opt <= max in every dim.
Status validate_profiles(const Graph& graph, const std::vector<OptimizationProfile>& profiles);

// Builds profiles from --min-shapes/--opt-shapes/--max-shapes style lists: the i-th entry of each
// list is profile i, and every input named in one of its three must be named in all three.
Expected<std::vector<OptimizationProfile>> make_profiles(const std::vector<std::map<std::string, Dims>>& min,
                                                         const std::vector<std::map<std::string, Dims>>& opt,
                                                         const std::vector<std::map<std::string, Dims>>& max);

std::string profile_to_string(const OptimizationProfile& p);

}  // namespace kiln
