#include "runtime/profile.hpp"

#include "util/error.hpp"

namespace kiln {

namespace {

std::string dims_text(const Dims& d) { return dims_to_string(d); }

const char* kEnd[3] = {"min", "opt", "max"};

}  // namespace

std::map<std::string, Dims> OptimizationProfile::at(int which) const {
  std::map<std::string, Dims> out;
  for (const auto& [name, s] : inputs) out[name] = which == 0 ? s.min : which == 1 ? s.opt : s.max;
  return out;
}

std::string profile_to_string(const OptimizationProfile& p) {
  std::string s;
  for (const auto& [name, r] : p.inputs) {
    if (!s.empty()) s += ", ";
    s += fmt::format("{}: {} .. {} (opt {})", name, dims_text(r.min), dims_text(r.max), dims_text(r.opt));
  }
  return s;
}

Status check_profile_shape(const std::vector<OptimizationProfile>& profiles, size_t index, const std::string& name,
                           const Dims& dims) {
  if (profiles.empty()) return Status::Ok();
  if (index >= profiles.size())
    return invalid_argument("optimization profile {} does not exist (the plan has {})", index, profiles.size());
  auto it = profiles[index].inputs.find(name);
  if (it == profiles[index].inputs.end()) return Status::Ok();
  const ProfileShapes& r = it->second;
  bool ok = dims.size() == r.min.size();
  for (size_t i = 0; ok && i < dims.size(); ++i) ok = r.min[i] <= dims[i] && dims[i] <= r.max[i];
  if (!ok)
    return invalid_argument("input '{}': shape {} is outside optimization profile {}, which allows {} .. {} "
                            "(min..max, per dim){}",
                            name, dims_text(dims), index, dims_text(r.min), dims_text(r.max),
                            profiles.size() > 1 ? " (choose another profile with set_optimization_profile)" : "");
  return Status::Ok();
}

Status validate_profiles(const Graph& g, const std::vector<OptimizationProfile>& profiles) {
  for (size_t pi = 0; pi < profiles.size(); ++pi) {
    if (profiles[pi].inputs.empty()) return invalid_argument("optimization profile {} names no input", pi);
    for (const auto& [name, r] : profiles[pi].inputs) {
      const Value* in = nullptr;
      for (const Value* v : g.inputs)
        if (v->name == name) in = v;
      if (!in) {
        std::vector<std::string> names;
        for (const Value* v : g.inputs) names.push_back("'" + v->name + "'");
        return invalid_argument("optimization profile {} names input '{}', but the model's inputs are {}", pi, name,
                                fmt::join(names, ", "));
      }
      const Dims* ends[3] = {&r.min, &r.opt, &r.max};
      for (int e = 0; e < 3; ++e) {
        if (ends[e]->size() != r.min.size())
          return invalid_argument("optimization profile {}, input '{}': {} {} and {} {} differ in rank", pi, name,
                                  kEnd[0], dims_text(r.min), kEnd[e], dims_text(*ends[e]));
        for (int64_t d : *ends[e])
          if (d < 0)
            return invalid_argument("optimization profile {}, input '{}': {} shape {} has a negative dim", pi, name,
                                    kEnd[e], dims_text(*ends[e]));
      }
      for (size_t i = 0; i < r.min.size(); ++i)
        if (!(r.min[i] <= r.opt[i] && r.opt[i] <= r.max[i]))
          return invalid_argument("optimization profile {}, input '{}': dim {} must satisfy min <= opt <= max, but "
                                  "min {}, opt {}, max {}",
                                  pi, name, i, dims_text(r.min), dims_text(r.opt), dims_text(r.max));
      const Shape& declared = in->type.shape;
      if (!declared.has_rank()) continue;
      if (declared.rank() != r.min.size())
        return invalid_argument("optimization profile {}, input '{}': rank {} does not fit the model's {}", pi, name,
                                r.min.size(), declared.to_string());
      for (size_t i = 0; i < declared.rank(); ++i)
        if (declared[i].known() && (r.min[i] != declared[i].value || r.max[i] != declared[i].value))
          return invalid_argument("optimization profile {}, input '{}': dim {} is fixed to {} by the model, but the "
                                  "profile gives {} .. {}",
                                  pi, name, i, declared[i].value, r.min[i], r.max[i]);
    }
  }
  return Status::Ok();
}

Expected<std::vector<OptimizationProfile>> make_profiles(const std::vector<std::map<std::string, Dims>>& min,
                                                         const std::vector<std::map<std::string, Dims>>& opt,
                                                         const std::vector<std::map<std::string, Dims>>& max) {
  if (min.size() != opt.size() || opt.size() != max.size())
    return invalid_argument("each optimization profile needs --min-shapes, --opt-shapes and --max-shapes (got {}, "
                            "{} and {} of them)",
                            min.size(), opt.size(), max.size());
  std::vector<OptimizationProfile> out(min.size());
  const std::vector<std::map<std::string, Dims>>* lists[3] = {&min, &opt, &max};
  for (size_t pi = 0; pi < out.size(); ++pi) {
    for (int e = 0; e < 3; ++e)
      for (const auto& [name, dims] : (*lists[e])[pi])
        for (int o = 0; o < 3; ++o)
          if (!(*lists[o])[pi].count(name))
            return invalid_argument("optimization profile {}: input '{}' has --{}-shapes but no --{}-shapes", pi,
                                    name, kEnd[e], kEnd[o]);
    for (const auto& [name, dims] : min[pi])
      out[pi].inputs[name] = ProfileShapes{dims, opt[pi].at(name), max[pi].at(name)};
  }
  return out;
}

}  // namespace kiln
