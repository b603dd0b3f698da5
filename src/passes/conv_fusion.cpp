// Conv [+ Add of a same-shaped residual] [+ Relu] -> one kiln.FusedConv (CUDA backend): cuDNN then
// runs act(conv(x) + bias + z) in one call instead of three or four kernels over the output.
// Every float Conv becomes a FusedConv (alone it still fuses its bias, and the layout pass works
// on FusedConv). `kiln_fused` lists the original nodes' names.
#include "ops/fused_conv.hpp"
#include "passes/pass.hpp"
#include "passes/pass_util.hpp"

namespace kiln {

namespace {

using passes::is_op;

using passes::is_graph_output;


// The only node reading v (none when v is a graph output or read by zero or several nodes).
Node* sole_consumer(const Graph& g, const Value* v) {
  if (is_graph_output(g, v)) return nullptr;
  auto c = g.consumers(v);
  return c.size() == 1 && c[0]->owner == &g ? c[0] : nullptr;  // not a node of a subgraph
}

bool same_static_type(const Value* a, const Value* b) {
  return a->type.dtype == b->type.dtype && a->type.shape.is_static() && b->type.shape.is_static() &&
         a->type.shape.to_dims() == b->type.shape.to_dims();
}

bool fusible_conv(const Node& n) {
  if (!is_op(&n, "Conv") || !n.has_input(0) || !n.has_input(1) || n.outputs.size() != 1 || !n.has_output(0))
    return false;
  const DType t = n.outputs[0]->type.dtype;
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16;
}

class ConvFusion : public Pass {
 public:
  std::string_view name() const override { return "conv-fusion"; }

  Expected<bool> run(Graph& g) override {
    std::vector<Node*> convs;
    for (const auto& n : g.nodes())
      if (fusible_conv(*n)) convs.push_back(n.get());
    for (Node* conv : convs) fuse(g, conv);
    if (!convs.empty()) KILN_RETURN_IF_ERROR(g.topological_sort());
    return !convs.empty();
  }

 private:
  static void fuse(Graph& g, Node* conv) {
    Value* y = conv->outputs[0];
    std::vector<Node*> fused{conv};
    Value* z = nullptr;
    Node* next = sole_consumer(g, y);
    if (is_op(next, "Add") && next->inputs.size() == 2 && next->has_input(0) && next->has_input(1) &&
        next->has_output(0)) {
      Value* other = next->inputs[0] == y ? next->inputs[1] : next->inputs[0];
      // Z must have Y's exact type (no broadcasting in cuDNN's fused call).
      if (other != y && same_static_type(other, y) && same_static_type(next->outputs[0], y)) {
        z = other;
        fused.push_back(next);
        y = next->outputs[0];
        next = sole_consumer(g, y);
      }
    }
    std::string activation;
    if (is_op(next, "Relu") && next->has_output(0) && same_static_type(next->outputs[0], y)) {
      activation = "Relu";
      fused.push_back(next);
      y = next->outputs[0];
    }
    std::vector<Value*> inputs{conv->inputs[0], conv->inputs[1], conv->has_input(2) ? conv->inputs[2] : nullptr};
    if (z) inputs.push_back(z);
    Attributes attrs = conv->attrs;
    attrs.set("activation", activation);
    attrs.set("layout", std::string("NCHW"));
    std::string names;
    for (const Node* n : fused) names += (names.empty() ? "" : ",") + n->name;
    attrs.set("kiln_fused", names);
    const std::string name = conv->name;
    const int opset = conv->opset;
    for (Node* n : fused) g.remove_node(n);
    Node* f = g.add_node("FusedConv", inputs, {y}, name, kKilnDomain, opset);
    f->attrs = std::move(attrs);
  }
};

}  // namespace

std::unique_ptr<Pass> make_conv_fusion_pass() { return std::make_unique<ConvFusion>(); }

}  // namespace kiln
