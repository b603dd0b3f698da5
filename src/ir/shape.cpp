#include "ir/shape.hpp"

#include <fmt/format.h>

namespace kiln {

int64_t dims_numel(const Dims& d) {
  int64_t n = 1;
  for (int64_t x : d) n *= x;
  return n;
}

bool dims_all_equal(const Dims& d, int64_t v) {
  for (int64_t x : d)
    if (x != v) return false;
  return true;
}

std::string dims_to_string(const Dims& d) {
  if (d.empty()) return "scalar";
  std::string s;
  for (size_t i = 0; i < d.size(); ++i) s += (i ? "x" : "") + std::to_string(d[i]);
  return s;
}

std::pair<int64_t, int64_t> dims_outer_inner(const Dims& d, size_t axis) {
  int64_t outer = 1, inner = 1;
  for (size_t i = 0; i < d.size(); ++i) {
    if (i < axis) outer *= d[i];
    if (i > axis) inner *= d[i];
  }
  return {outer, inner};
}

std::string Dim::to_string() const {
  if (known()) return std::to_string(value);
  return symbol.empty() ? "?" : symbol;
}

Shape Shape::from_dims(const Dims& d) {
  std::vector<Dim> v(d.begin(), d.end());
  return Shape(std::move(v));
}

bool Shape::is_static() const {
  if (!dims_) return false;
  for (const auto& d : *dims_)
    if (!d.known()) return false;
  return true;
}

std::optional<Dims> Shape::to_dims() const {
  if (!is_static()) return std::nullopt;
  Dims out;
  for (const auto& d : *dims_) out.push_back(d.value);
  return out;
}

std::string Shape::to_string() const {
  if (!dims_) return "[*]";
  std::string s = "[";
  for (size_t i = 0; i < dims_->size(); ++i) s += (i ? "," : "") + (*dims_)[i].to_string();
  return s + "]";
}

}  // namespace kiln
