// Node attributes: a typed value per name (ints, floats, strings, tensors, subgraphs and lists).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "ir/tensor.hpp"

namespace kiln {

class Graph;
using GraphPtr = std::shared_ptr<Graph>;

using AttrValue = std::variant<int64_t, float, std::string, Tensor, GraphPtr, std::vector<int64_t>,
                               std::vector<float>, std::vector<std::string>, std::vector<Tensor>,
                               std::vector<GraphPtr>>;

class Attributes {
 public:
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  void set(const std::string& name, AttrValue v) { values_[name] = std::move(v); }
  void erase(const std::string& name) { values_.erase(name); }
  const std::map<std::string, AttrValue>& all() const { return values_; }
  const AttrValue* find(const std::string& name) const {
    auto it = values_.find(name);
    return it == values_.end() ? nullptr : &it->second;
  }

  // Typed getters: the default when absent (or of another type; ops validate types where it matters).
  int64_t i(const std::string& name, int64_t def = 0) const { return get<int64_t>(name, def); }
  float f(const std::string& name, float def = 0.f) const { return get<float>(name, def); }
  std::string s(const std::string& name, const std::string& def = "") const {
    return get<std::string>(name, def);
  }
  std::vector<int64_t> ints(const std::string& name, std::vector<int64_t> def = {}) const {
    return get<std::vector<int64_t>>(name, std::move(def));
  }
  std::vector<float> floats(const std::string& name, std::vector<float> def = {}) const {
    return get<std::vector<float>>(name, std::move(def));
  }
  std::vector<std::string> strings(const std::string& name) const {
    return get<std::vector<std::string>>(name, {});
  }
  const Tensor* tensor(const std::string& name) const { return get_ptr<Tensor>(name); }
  const Graph* graph(const std::string& name) const {
    const GraphPtr* g = get_ptr<GraphPtr>(name);
    return g ? g->get() : nullptr;
  }
  template <typename T>
  const T* get_ptr(const std::string& name) const {
    const AttrValue* v = find(name);
    return v ? std::get_if<T>(v) : nullptr;
  }

 private:
  template <typename T>
  T get(const std::string& name, T def) const {
    const T* p = get_ptr<T>(name);
    return p ? *p : def;
  }
  std::map<std::string, AttrValue> values_;
};

}  // namespace kiln
