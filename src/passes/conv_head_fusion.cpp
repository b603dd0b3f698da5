// conv-head-fusion (CUDA backend): a float16 NHWC 3x3 kiln.FusedConv with 64 outputs whose only
// reader is a 1x1 FusedConv classifier with at most 8 outputs (no residual, no activation, bias
// optional) becomes one FusedConv with that classifier as its head (ops/fused_conv.cpp):
//
//   Y = act(conv(X, W) + B + Z);  H = conv1x1(Y, HW) + HB   ->   H = FusedConv(X, W, B, Z, HW, HB)
//
// A segmentation network's last conv writes its full-resolution 64-channel Y only for the
// classifier to read it back (UNet 512x512: 32 MiB each way, the classifier alone 16 us on an
// H200). The Hopper halo-tile kernel (halo_conv.hpp) applies the classifier to each output tile
// in its epilogue instead; the other tactics run the conv, then the classifier, as before. Like
// concat-conv-split it fires only on the shapes that kernel takes: 3x3, stride 1, pads 1, one
// group, 64 inputs and outputs.
#include "ops/fused_conv.hpp"
#include "passes/pass.hpp"
#include "passes/pass_util.hpp"

namespace kiln {
namespace {

constexpr int64_t kChannels = 64, kMaxHeadOutputs = 8;

bool nhwc_fused_conv(const Node* n) {
  return n && n->domain == kKilnDomain && n->op_type == "FusedConv" && n->attrs.s("layout", "NCHW") == "NHWC" &&
         n->has_input(0) && n->has_input(1) && n->inputs.size() <= 4 && n->outputs.size() == 1 && n->has_output(0) &&
         n->inputs[1]->is_constant() && (!n->has_input(2) || n->inputs[2]->is_constant()) &&
         n->attrs.i("group", 1) == 1 && n->attrs.s("auto_pad", "NOTSET") == "NOTSET" &&
         dims_all_equal(n->attrs.ints("dilations", {1, 1}), 1) && dims_all_equal(n->attrs.ints("strides", {1, 1}), 1);
}

// The conv the fused kernel takes: float16, (64, 3, 3, 64) weights, pads 1.
bool body_conv(const Node* n) {
  if (!nhwc_fused_conv(n) || n->outputs[0]->type.dtype != DType::kFloat16) return false;
  return n->inputs[1]->constant->dims() == Dims{kChannels, 3, 3, kChannels} &&
         n->attrs.ints("pads", {0, 0, 0, 0}) == Dims{1, 1, 1, 1};
}

// A 1x1 classifier over `channels`: no pads, no Z, no activation, at most 8 outputs.
bool head_conv(const Node* n, int64_t channels) {
  if (!nhwc_fused_conv(n) || n->has_input(3) || !n->attrs.s("activation", "").empty()) return false;
  const Dims w = n->inputs[1]->constant->dims();
  return w.size() == 4 && w[0] >= 1 && w[0] <= kMaxHeadOutputs && w[1] == 1 && w[2] == 1 && w[3] == channels &&
         dims_all_equal(n->attrs.ints("pads", {0, 0, 0, 0}), 0);
}

class ConvHeadFusion : public Pass {
 public:
  std::string_view name() const override { return "conv-head-fusion"; }

  Expected<bool> run(Graph& g) override {
    std::vector<std::pair<Node*, Node*>> found;  // (body, head)
    for (const auto& n : g.nodes()) {
      if (!body_conv(n.get())) continue;
      Node* head = passes::sole_reader_once(g, n->outputs[0]);
      if (head && head->inputs[0] == n->outputs[0] && head_conv(head, kChannels)) found.emplace_back(n.get(), head);
    }
    for (auto [body, head] : found) fuse(g, body, head);
    if (!found.empty()) KILN_RETURN_IF_ERROR(g.topological_sort());
    return !found.empty();
  }

 private:
  static void fuse(Graph& g, Node* body, Node* head) {
    std::vector<Value*> inputs = body->inputs;
    inputs.resize(4, nullptr);
    inputs.push_back(head->inputs[1]);
    inputs.push_back(head->has_input(2) ? head->inputs[2] : nullptr);
    while (!inputs.back()) inputs.pop_back();
    Value* out = head->outputs[0];
    const Attributes attrs = body->attrs;
    const std::string name = body->name;
    const std::string fused = body->attrs.s(kFusedAttr, passes::fused_names({body})) + "," +
                              head->attrs.s(kFusedAttr, passes::fused_names({head}));
    const int opset = body->opset;
    g.remove_node(head);
    g.remove_node(body);
    Node* n = g.add_node("FusedConv", std::move(inputs), {out}, name, kKilnDomain, opset);
    n->attrs = attrs;
    n->attrs.set(kFusedAttr, fused);
  }
};

}  // namespace

std::unique_ptr<Pass> make_conv_head_fusion_pass() { return std::make_unique<ConvHeadFusion>(); }

}  // namespace kiln
