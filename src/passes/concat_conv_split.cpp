// concat-conv-split (CUDA backend): a float16 NHWC kiln.FusedConv whose X is a channel Concat that
// nothing else reads becomes one FusedConv per Concat part, each adding the previous one's result
// as its residual Z; only the last applies the activation:
//
//   Y = act(conv(concat(a, b), W) + B)  ->  T = conv(a, W[..., :Ca]) + B;  Y = act(conv(b, W[..., Ca:]) + T)
//
// The Concat's copy goes away (UNet's full-resolution decoder conv reads the skip connection and
// the upsampled path: on an H200 the 512x512 Concat alone took 34 us), and the Hopper halo-tile
// kernel (halo_conv.hpp) runs both convolutions, the second fusing Z into its epilogue. It fires
// only on the shapes that kernel takes: 3x3, stride 1, pads 1, one group, 64 outputs and
// 64-channel parts. (Passes do not know the GPU: where the kernel is missing, cuDNN runs the pair,
// its conv + Z engine about as slow as the Concat it saves: RESULTS.md, session 11.)
// T is rounded to float16 like any layer's output: relative 2^-11 of the partial sum.
#include <cstring>

#include "ops/fused_conv.hpp"
#include "passes/pass.hpp"
#include "passes/pass_util.hpp"

namespace kiln {
namespace {

constexpr int64_t kPartChannels = 64, kOutputs = 64;

// Whether `n` is a FusedConv this pass can split: float16 NHWC 3x3 stride 1 pads 1, no Z, constant
// (64, 3, 3, C) weights.
bool splittable_conv(const Node& n) {
  if (n.domain != kKilnDomain || n.op_type != "FusedConv" || n.attrs.s("layout", "NCHW") != "NHWC") return false;
  if (!n.has_input(0) || !n.has_input(1) || n.has_input(3) || !n.has_output(0) || n.outputs.size() != 1) return false;
  if (n.outputs[0]->type.dtype != DType::kFloat16 || !n.inputs[1]->is_constant()) return false;
  if (n.has_input(2) && !n.inputs[2]->is_constant()) return false;
  const Dims w = n.inputs[1]->constant->dims();
  if (w.size() != 4 || w[0] != kOutputs || w[1] != 3 || w[2] != 3) return false;
  if (n.attrs.i("group", 1) != 1 || n.attrs.s("auto_pad", "NOTSET") != "NOTSET") return false;
  return dims_all_equal(n.attrs.ints("strides", {1, 1}), 1) &&
         dims_all_equal(n.attrs.ints("dilations", {1, 1}), 1) &&
         n.attrs.ints("pads", {0, 0, 0, 0}) == Dims{1, 1, 1, 1};
}

// The Concat producing X when it joins 64-channel float16 NHWC parts along the channels and only
// this conv reads it (once).
Node* channel_concat(const Graph& g, const Node& conv) {
  Node* cat = passes::producer_of(conv.inputs[0], "Concat");
  if (!cat || cat->inputs.size() < 2 || passes::sole_reader_once(g, conv.inputs[0]) != &conv) return nullptr;
  auto y = conv.inputs[0]->type.shape.to_dims();
  if (!y || y->size() != 4) return nullptr;
  int64_t axis = cat->attrs.i("axis", 0);
  if (axis < 0) axis += 4;
  if (axis != 3) return nullptr;
  for (const Value* part : cat->inputs) {
    if (!part || part->is_constant() || part->type.dtype != DType::kFloat16) return nullptr;
    auto d = part->type.shape.to_dims();
    if (!d || d->size() != 4 || (*d)[3] != kPartChannels) return nullptr;
  }
  return cat;
}

// Input channels [begin, begin + count) of NHWC weights (M, kh, kw, C).
Tensor channel_slice(const Tensor& w, int64_t begin, int64_t count) {
  const Dims& d = w.dims();
  const int64_t rows = d[0] * d[1] * d[2], c = d[3];
  const size_t elem = dtype_size(w.dtype());
  Tensor out(w.dtype(), {d[0], d[1], d[2], count});
  const auto* src = static_cast<const char*>(w.raw_data());
  auto* dst = static_cast<char*>(out.raw_data());
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(dst + static_cast<size_t>(r * count) * elem, src + static_cast<size_t>(r * c + begin) * elem,
                static_cast<size_t>(count) * elem);
  return out;
}

class ConcatConvSplit : public Pass {
 public:
  std::string_view name() const override { return "concat-conv-split"; }

  Expected<bool> run(Graph& g) override {
    std::vector<std::pair<Node*, Node*>> found;  // (conv, concat)
    for (const auto& n : g.nodes())
      if (splittable_conv(*n))
        if (Node* cat = channel_concat(g, *n)) found.emplace_back(n.get(), cat);
    for (auto [conv, cat] : found) split(g, conv, cat);
    if (!found.empty()) KILN_RETURN_IF_ERROR(g.topological_sort());
    return !found.empty();
  }

 private:
  static void split(Graph& g, Node* conv, Node* cat) {
    const std::vector<Value*> parts = cat->inputs;
    const Tensor w = *conv->inputs[1]->constant;
    Value* bias = conv->has_input(2) ? conv->inputs[2] : nullptr;
    Value* y = conv->outputs[0];
    const Attributes attrs = conv->attrs;
    const std::string name = conv->name, activation = attrs.s("activation", "");
    const std::string fused = attrs.s(kFusedAttr, name) + "," + cat->name + ":Concat";
    const int opset = conv->opset;
    g.remove_node(conv);
    g.remove_node(cat);
    Value* partial = nullptr;
    for (size_t i = 0; i < parts.size(); ++i) {
      const bool last = i + 1 == parts.size();
      const std::string part_name = name + "_part" + std::to_string(i);
      Value* wi = g.add_constant(part_name + "_w",
                                 channel_slice(w, static_cast<int64_t>(i) * kPartChannels, kPartChannels));
      Value* out = last ? y : g.add_value(part_name);
      std::vector<Value*> inputs{parts[i], wi, i == 0 ? bias : nullptr, partial};
      while (!inputs.back()) inputs.pop_back();
      Node* n = g.add_node("FusedConv", std::move(inputs), {out}, last ? name : part_name, kKilnDomain, opset);
      n->attrs = attrs;
      n->attrs.set("activation", last ? activation : std::string());
      n->attrs.set(kFusedAttr, fused);
      partial = out;
    }
  }
};

}  // namespace

std::unique_ptr<Pass> make_concat_conv_split_pass() { return std::make_unique<ConcatConvSplit>(); }

}  // namespace kiln
