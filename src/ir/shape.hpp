// Shapes: concrete (Dims, a vector of sizes) for tensors, symbolic (Shape) for graph values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kiln {

using Dims = std::vector<int64_t>;

int64_t dims_numel(const Dims& d);
bool dims_all_equal(const Dims& d, int64_t v);  // every entry is v (true when empty)
std::string dims_to_string(const Dims& d);  // "1x3x224x224"; "scalar" for rank 0
// {product of the dims before `axis`, product of the dims after it}: a tensor as
// [outer, d[axis], inner] for ops that work along one axis.
std::pair<int64_t, int64_t> dims_outer_inner(const Dims& d, size_t axis);

// One dimension of a symbolic shape: a known size, a named symbol ("batch"), or unknown.
struct Dim {
  int64_t value = -1;  // >= 0 when known
  std::string symbol;  // may be set when value is unknown

  Dim() = default;
  Dim(int64_t v) : value(v) {}  // NOLINT(implicit)
  static Dim symbolic(std::string s) {
    Dim d;
    d.symbol = std::move(s);
    return d;
  }
  bool known() const { return value >= 0; }
  bool operator==(const Dim& o) const { return value == o.value && (known() || symbol == o.symbol); }
  std::string to_string() const;  // "3", "batch" or "?"
};

// The shape of a graph value: may have unknown rank, and unknown or symbolic dims.
class Shape {
 public:
  Shape() = default;  // unknown rank
  explicit Shape(std::vector<Dim> dims) : dims_(std::move(dims)) {}
  static Shape from_dims(const Dims& d);
  static Shape unknown_rank() { return Shape(); }
  static Shape scalar() { return Shape(std::vector<Dim>{}); }

  bool has_rank() const { return dims_.has_value(); }
  size_t rank() const { return dims_ ? dims_->size() : 0; }
  const std::vector<Dim>& dims() const { return *dims_; }
  std::vector<Dim>& dims() { return *dims_; }
  const Dim& operator[](size_t i) const { return (*dims_)[i]; }
  bool is_static() const;              // rank known and every dim known
  std::optional<Dims> to_dims() const; // the concrete sizes when static
  std::string to_string() const;       // "[1,3,batch,?]" or "[*]"
  bool operator==(const Shape& o) const { return dims_ == o.dims_; }

 private:
  std::optional<std::vector<Dim>> dims_;
};

}  // namespace kiln
