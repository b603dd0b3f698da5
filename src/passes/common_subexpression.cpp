// Nodes computing the same thing once: two nodes of one op type and domain, with equal attributes
// and the same inputs (the same values, or small constants of equal contents), give equal outputs,
// so the later one's readers read the earlier one's outputs. Exporters repeat per-layer work that
// depends only on the graph inputs: HF BERT's attention mask Where(mask, 0, -inf) once per layer
// (12 identical [B,1,S,S] tensors, 5 us each for bert-base batch 64 on an H200).
// Skipped: kiln-domain (fused) nodes, random ops, Q/DQ nodes (the quantization fusions match one reader per DequantizeLinear),
// nodes with tensor or subgraph attributes, nodes without inputs (constant
// folding's), and duplicates whose outputs are graph outputs (their bindings keep their names).
#include <cstring>
#include <map>
#include <set>

#include "passes/pass.hpp"
#include "passes/pass_util.hpp"
#include "util/error.hpp"

namespace kiln {
namespace {

// Constants compared by contents up to this size; larger ones only as the same value.
constexpr size_t kMaxConstantBytes = 256;

bool is_skipped(const Node& n) {
  static const std::set<std::string> ops = {"RandomNormal",      "RandomUniform", "RandomNormalLike",
                                            "RandomUniformLike", "Multinomial",   "Bernoulli",
                                            "Dropout",           "QuantizeLinear", "DequantizeLinear",
                                            "DynamicQuantizeLinear"};
  return n.domain.empty() && ops.count(n.op_type) != 0;
}

// The attribute as exact text, or nullopt for kinds this pass does not compare (tensors, graphs).
std::optional<std::string> attr_key(const AttrValue& v) {
  return std::visit(
      [](const auto& x) -> std::optional<std::string> {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, int64_t>) return fmt::format("i{}", x);
        else if constexpr (std::is_same_v<T, float>) return fmt::format("f{}", x);  // shortest exact form
        else if constexpr (std::is_same_v<T, std::string>) return fmt::format("s{}:{}", x.size(), x);
        else if constexpr (std::is_same_v<T, std::vector<int64_t>>) return fmt::format("I[{}]", fmt::join(x, ","));
        else if constexpr (std::is_same_v<T, std::vector<float>>) return fmt::format("F[{}]", fmt::join(x, ","));
        else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          std::string s = "S[";
          for (const auto& e : x) s += fmt::format("{}:{},", e.size(), e);
          return s + "]";
        } else {
          return std::nullopt;
        }
      },
      v);
}

// An input: the value itself, or a small constant's dtype, dims and bytes.
std::string input_key(const Value* v) {
  if (!v) return "none";
  if (v->is_constant() && v->constant->nbytes() <= kMaxConstantBytes) {
    const Tensor& t = *v->constant;
    std::string s = fmt::format("c{}[{}]", dtype_name(t.dtype()), fmt::join(t.dims(), ","));
    s.append(static_cast<const char*>(t.raw_data()), t.nbytes());
    return s;
  }
  return fmt::format("v{}", static_cast<const void*>(v));
}

std::optional<std::string> node_key(const Node& n) {
  // ONNX ops only: kiln's fused ops are matched by later passes per reader (FP8 quantization).
  if (!n.domain.empty() || n.inputs.empty() || is_skipped(n)) return std::nullopt;
  bool any_runtime_input = false;
  for (const Value* v : n.inputs) any_runtime_input |= v && !v->is_constant();
  if (!any_runtime_input) return std::nullopt;  // constant folding's
  std::string key = fmt::format("{}|{}|{}|{}|", n.domain, n.op_type, n.inputs.size(), n.outputs.size());
  for (const auto& [name, value] : n.attrs.all()) {
    if (name == kFusedAttr) continue;  // provenance, not semantics
    auto a = attr_key(value);
    if (!a) return std::nullopt;
    key += name + "=" + *a + ";";
  }
  for (const Value* v : n.inputs) key += input_key(v) + "|";
  for (const Value* v : n.outputs) key += v ? "o|" : "-|";
  return key;
}

class CommonSubexpression : public Pass {
 public:
  std::string_view name() const override { return "common-subexpression"; }

  Expected<bool> run(Graph& g) override {
    std::map<std::string, Node*> seen;
    std::vector<Node*> gone;
    std::vector<Node*> nodes;
    for (const auto& n : g.nodes()) nodes.push_back(n.get());
    for (Node* n : nodes) {  // topological order: a duplicate's inputs are already canonical
      auto key = node_key(*n);
      if (!key) continue;
      auto [it, fresh] = seen.emplace(*key, n);
      if (fresh) continue;
      Node* first = it->second;
      bool output_bound = false;
      for (const Value* v : n->outputs) output_bound |= v && passes::is_graph_output(g, v);
      if (output_bound) continue;
      for (size_t i = 0; i < n->outputs.size(); ++i)
        if (n->outputs[i]) passes::replace_uses(g, n->outputs[i], first->outputs[i]);
      gone.push_back(n);
    }
    for (Node* n : gone) g.remove_node(n);
    return !gone.empty();
  }
};

}  // namespace

std::unique_ptr<Pass> make_common_subexpression_pass() { return std::make_unique<CommonSubexpression>(); }

}  // namespace kiln
