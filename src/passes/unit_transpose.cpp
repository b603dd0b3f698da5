// unit-transpose-to-reshape: a Transpose that only moves size-1 dims keeps every element where it
// was (e.g. NCHW -> NHWC of a 1-channel image, or of a 1x1 spatial map), so it becomes a Reshape,
// which the memory planner turns into a view instead of a copy kernel.
#include <algorithm>

#include "passes/pass.hpp"

namespace kiln {

namespace {

// Whether `perm` keeps the relative order of the dims of `shape` that are not 1.
bool moves_only_unit_dims(const Shape& shape, const std::vector<int64_t>& perm) {
  int64_t last = -1;
  for (int64_t axis : perm) {
    if (axis < 0 || axis >= static_cast<int64_t>(shape.rank())) return false;
    if (shape[axis].value == 1) continue;
    if (axis < last) return false;
    last = axis;
  }
  return true;
}

class UnitTransposeToReshape : public Pass {
 public:
  std::string_view name() const override { return "unit-transpose-to-reshape"; }

  Expected<bool> run(Graph& g) override {
    bool changed = false;
    std::vector<Node*> transposes;
    for (const auto& n : g.nodes())
      if (n->domain.empty() && n->op_type == "Transpose" && n->has_input(0) && n->has_output(0))
        transposes.push_back(n.get());
    for (Node* t : transposes) {
      const Shape& in = t->inputs[0]->type.shape;
      const Shape& out = t->outputs[0]->type.shape;
      auto perm = t->attrs.ints("perm");
      if (!in.is_static() || !out.is_static() || perm.size() != in.rank() || !moves_only_unit_dims(in, perm))
        continue;
      Dims dims;
      for (size_t i = 0; i < out.rank(); ++i) dims.push_back(out[i].value);
      // Reshape reads a 0 in its shape as "copy the input's dim": leave empty tensors alone.
      if (std::find(dims.begin(), dims.end(), 0) != dims.end()) continue;
      Value* shape = g.add_constant(g.unique_name(t->outputs[0]->name + "_shape"),
                                    Tensor::from_vector<int64_t>({static_cast<int64_t>(dims.size())}, dims));
      Value* in_value = t->inputs[0];
      std::vector<Value*> outs = t->outputs;
      const std::string name = t->name;
      t->outputs.clear();
      g.remove_node(t);
      g.add_node("Reshape", {in_value, shape}, outs, name, "", 21);
      changed = true;
    }
    if (changed) KILN_RETURN_IF_ERROR(g.topological_sort());
    return changed;
  }
};

}  // namespace

std::unique_ptr<Pass> make_unit_transpose_to_reshape_pass() { return std::make_unique<UnitTransposeToReshape>(); }

}  // namespace kiln
