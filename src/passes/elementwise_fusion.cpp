// elementwise-fusion (CUDA backend, after every other fusion): connected groups of >= 2
// elementwise nodes (unary math and activations, broadcasting Add/Sub/Mul/Div/Pow/Max/Min,
// comparisons, Where, Not, IsNaN, Cast between float types) -> one kiln.FusedElementwise
// (ops/fused_elementwise.hpp), which the CUDA backend runs as one generated kernel: each
// intermediate tensor is then neither written nor read back.
//
// A group has one output (its root, the last node); every other node's result is read only by
// nodes of the group and is not a graph output, so the group cannot depend on itself through
// outside nodes. Every node's output broadcasts to the root's shape (which is the group's output and
// the broadcast of its external inputs): a node of a smaller shape (the [N, C, 1, 1] HardSigmoid
// of a squeeze-excitation block before its Mul) is recomputed per output element, trading cheap
// arithmetic for a kernel launch and a round trip through memory. Types float32/float16/bfloat16
// (bool between a comparison and a Where). One-element float constants become immediates of the
// program. Caps: 32 instructions and 8 external inputs per group.
#include <algorithm>
#include <limits>
#include <map>
#include <optional>
#include <set>

#include "ops/fused_elementwise.hpp"
#include "ops/infer_util.hpp"
#include "passes/pass.hpp"
#include "passes/pass_util.hpp"

namespace kiln {
namespace {

using fused_ew::Op;

constexpr size_t kMaxInstructions = 32;
constexpr size_t kMaxInputs = 8;

bool is_float_type(DType t) { return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16; }

// A one-element constant usable as an immediate (its value converts to float exactly for float
// types; an integer Pow exponent converts like the CPU kernel's).
std::optional<float> immediate(const Value* v, size_t out_rank) {
  if (!v || !v->constant || v->constant->numel() != 1 || !v->type.shape.has_rank() ||
      v->type.shape.rank() > out_rank)
    return std::nullopt;
  if (!is_float_type(v->type.dtype)) return std::nullopt;
  return static_cast<float>(v->constant->scalar_as_double());
}

struct Candidate {
  Op op;
  float a = 0.f, b = 0.f;
  size_t num_operands = 0;  // inputs that are operands (Clip's bounds are not)
};

std::optional<Op> op_by_name(const std::string& name) {
  for (int i = 0; i < static_cast<int>(Op::kCount); ++i)
    if (name == fused_ew::op_info(static_cast<Op>(i)).name && name != "GeluTanh") return static_cast<Op>(i);
  return std::nullopt;
}

// What the node computes as one program instruction, when it can be fused.
std::optional<Candidate> classify(const Node& n) {
  if (!n.domain.empty() || n.plugin || n.outputs.size() != 1 || !n.has_output(0)) return std::nullopt;
  const Value* out = n.outputs[0];
  if (!fused_ew::program_dtype(out->type.dtype) || !out->type.shape.to_dims()) return std::nullopt;
  auto op = op_by_name(n.op_type);
  if (!op) return std::nullopt;
  Candidate c{*op};
  const auto& info = fused_ew::op_info(*op);
  c.num_operands = static_cast<size_t>(info.arity);
  const DType t = out->type.dtype;
  const size_t rank = out->type.shape.rank();
  auto in_type = [&](size_t i) { return n.has_input(i) ? n.inputs[i]->type.dtype : DType::kUndefined; };
  if (*op == Op::kClip) {
    if (n.inputs.empty() || !n.has_input(0) || n.inputs.size() > 3) return std::nullopt;
    c.a = std::numeric_limits<float>::lowest();  // absent bounds: the CPU kernel's float limits
    c.b = std::numeric_limits<float>::max();
    for (size_t i = 1; i < n.inputs.size(); ++i) {
      if (!n.has_input(i)) continue;
      const Value* b = n.inputs[i];
      if (!b->constant || b->constant->numel() != 1 || b->type.dtype != t) return std::nullopt;
      (i == 1 ? c.a : c.b) = static_cast<float>(b->constant->scalar_as_double());
    }
  } else if (n.inputs.size() != c.num_operands) {
    return std::nullopt;
  }
  for (size_t i = 0; i < c.num_operands; ++i)
    if (!n.has_input(i) || !n.inputs[i]->type.shape.has_rank() || n.inputs[i]->type.shape.rank() > rank)
      return std::nullopt;
  switch (*op) {
    case Op::kEqual: case Op::kLess: case Op::kLessOrEqual: case Op::kGreater: case Op::kGreaterOrEqual:
      if (t != DType::kBool || !is_float_type(in_type(0)) || in_type(1) != in_type(0)) return std::nullopt;
      break;
    case Op::kIsNaN:
      if (t != DType::kBool || !is_float_type(in_type(0))) return std::nullopt;
      break;
    case Op::kNot:
      if (t != DType::kBool || in_type(0) != DType::kBool) return std::nullopt;
      break;
    case Op::kWhere:
      if (!is_float_type(t) || in_type(0) != DType::kBool || in_type(1) != t || in_type(2) != t) return std::nullopt;
      break;
    case Op::kCast:
      if (!is_float_type(t) || !is_float_type(in_type(0))) return std::nullopt;
      break;
    case Op::kPow:
      // The exponent: the base's type, or a scalar constant of any float type.
      if (!is_float_type(t) || in_type(0) != t || (in_type(1) != t && !immediate(n.inputs[1], rank)))
        return std::nullopt;
      break;
    default:
      if (!is_float_type(t)) return std::nullopt;
      for (size_t i = 0; i < c.num_operands; ++i)
        if (in_type(i) != t) return std::nullopt;
  }
  switch (*op) {
    case Op::kGelu: {
      const std::string approx = n.attrs.s("approximate", "none");
      if (approx == "tanh") c.op = Op::kGeluTanh;
      else if (approx != "none") return std::nullopt;
      break;
    }
    case Op::kHardSigmoid: c.a = n.attrs.f("alpha", 0.2f); c.b = n.attrs.f("beta", 0.5f); break;
    case Op::kLeakyRelu: c.a = n.attrs.f("alpha", 0.01f); break;
    case Op::kElu: c.a = n.attrs.f("alpha", 1.f); break;
    default: break;
  }
  return c;
}

// Whether `d` broadcasts to `out` (numpy rules, right-aligned).
bool broadcasts_to(const Dims& d, const Dims& out) {
  if (d.size() > out.size()) return false;
  for (size_t i = 0; i < d.size(); ++i) {
    const int64_t a = d[d.size() - 1 - i], b = out[out.size() - 1 - i];
    if (a != b && a != 1) return false;
  }
  return true;
}

struct Group {
  std::vector<Node*> nodes;  // in graph (topological) order once sorted
  std::set<const Node*> members;
};

class ElementwiseFusion : public Pass {
 public:
  std::string_view name() const override { return "elementwise-fusion"; }

  Expected<bool> run(Graph& g) override {
    KILN_RETURN_IF_ERROR(g.topological_sort());
    std::map<const Node*, Candidate> cand;
    std::map<const Node*, size_t> order;
    for (size_t i = 0; i < g.nodes().size(); ++i) {
      const Node* n = g.nodes()[i].get();
      order[n] = i;
      if (auto c = classify(*n)) cand.emplace(n, *c);
    }
    std::set<const Node*> taken;
    std::vector<Group> groups;
    // Roots from the last node back, so a root takes its producers before they start groups.
    for (size_t i = g.nodes().size(); i-- > 0;) {
      Node* root = g.nodes()[i].get();
      if (!cand.count(root) || taken.count(root)) continue;
      Group grp = grow(g, root, cand, taken);
      if (grp.nodes.size() < 2) continue;
      std::sort(grp.nodes.begin(), grp.nodes.end(),
                [&](const Node* a, const Node* b) { return order[a] < order[b]; });
      for (const Node* n : grp.nodes) taken.insert(n);
      groups.push_back(std::move(grp));
    }
    bool changed = false;
    for (Group& grp : groups) changed |= replace(g, grp, cand);
    if (changed) KILN_RETURN_IF_ERROR(g.topological_sort());
    return changed;
  }

 private:
  // External (non-immediate) inputs of a node set, in first-use order.
  static std::vector<Value*> external_inputs(const std::vector<Node*>& nodes, const std::set<const Node*>& members,
                                             const std::map<const Node*, Candidate>& cand) {
    std::vector<Value*> ext;
    for (const Node* n : nodes) {
      const size_t rank = n->outputs[0]->type.shape.rank();
      for (size_t i = 0; i < cand.at(n).num_operands; ++i) {
        Value* v = n->inputs[i];
        if ((v->producer && members.count(v->producer)) || immediate(v, rank)) continue;
        if (std::find(ext.begin(), ext.end(), v) == ext.end()) ext.push_back(v);
      }
    }
    return ext;
  }

  static Group grow(const Graph& g, Node* root, const std::map<const Node*, Candidate>& cand,
                    const std::set<const Node*>& taken) {
    Group grp;
    grp.nodes.push_back(root);
    grp.members.insert(root);
    const Dims dims = *root->outputs[0]->type.shape.to_dims();
    for (bool grew = true; grew && grp.nodes.size() < kMaxInstructions;) {
      grew = false;
      for (size_t k = 0; k < grp.nodes.size() && grp.nodes.size() < kMaxInstructions; ++k) {
        const Node* n = grp.nodes[k];
        for (size_t i = 0; i < cand.at(n).num_operands; ++i) {
          Value* v = n->inputs[i];
          Node* p = v->producer;
          if (!p || grp.members.count(p) || taken.count(p) || !cand.count(p) || passes::is_graph_output(g, v))
            continue;
          if (!broadcasts_to(*v->type.shape.to_dims(), dims)) continue;
          auto readers = g.consumers(v);
          if (!std::all_of(readers.begin(), readers.end(), [&](const Node* r) { return grp.members.count(r) > 0; }))
            continue;
          std::vector<Node*> with = grp.nodes;
          with.push_back(p);
          std::set<const Node*> members = grp.members;
          members.insert(p);
          if (external_inputs(with, members, cand).size() > kMaxInputs) continue;
          grp.nodes.push_back(p);
          grp.members.insert(p);
          grew = true;
        }
      }
    }
    return grp;
  }

  static bool replace(Graph& g, const Group& grp, const std::map<const Node*, Candidate>& cand) {
    Node* root = grp.nodes.back();
    Value* out = root->outputs[0];
    const Dims dims = *out->type.shape.to_dims();
    std::vector<Value*> ext = external_inputs(grp.nodes, grp.members, cand);
    if (ext.empty()) return false;  // constant: folding's business
    // The output must be the broadcast of the external inputs (an immediate may not add dims).
    std::vector<Shape> shapes;
    for (const Value* v : ext) shapes.push_back(v->type.shape);
    auto b = broadcast_shapes(shapes);
    auto bd = b.ok() ? b->to_dims() : std::nullopt;
    if (!bd || *bd != dims) return false;

    fused_ew::Program prog;
    prog.num_inputs = static_cast<int>(ext.size());
    std::map<const Value*, int> temp;
    std::vector<const Node*> fused;
    for (const Node* n : grp.nodes) {
      const Candidate& c = cand.at(n);
      fused_ew::Instr in;
      in.op = c.op;
      in.dtype = n->outputs[0]->type.dtype;
      in.a = c.a;
      in.b = c.b;
      const size_t rank = n->outputs[0]->type.shape.rank();
      for (size_t i = 0; i < c.num_operands; ++i) {
        const Value* v = n->inputs[i];
        fused_ew::Operand o;
        if (auto t = temp.find(v); t != temp.end()) {
          o.kind = fused_ew::Operand::kTemp;
          o.index = t->second;
        } else if (auto imm = immediate(v, rank)) {
          o.kind = fused_ew::Operand::kImm;
          o.imm = *imm;
        } else {
          o.kind = fused_ew::Operand::kInput;
          o.index = static_cast<int>(std::find(ext.begin(), ext.end(), v) - ext.begin());
        }
        in.args.push_back(o);
      }
      temp[n->outputs[0]] = static_cast<int>(prog.code.size());
      prog.code.push_back(std::move(in));
      fused.push_back(n);
    }
    prog.outputs.push_back(static_cast<int>(prog.code.size()) - 1);

    // kiln_fused lists the original nodes, those an earlier fusion merged included.
    std::string names;
    for (const Node* n : fused) {
      std::string part = n->attrs.has(kFusedAttr) ? n->attrs.s(kFusedAttr, "") : passes::fused_names({n});
      names += (names.empty() ? "" : ",") + part;
    }
    const std::string name = g.unique_name(root->name.empty() ? "fused_elementwise" : root->name + "_fused");
    for (const Node* n : grp.nodes) {
      for (Value* v : n->outputs)
        if (v) v->producer = nullptr;
      g.remove_node(const_cast<Node*>(n));
    }
    Node* f = g.add_node("FusedElementwise", ext, {out}, name, "kiln", 1);
    f->attrs.set("program", fused_ew::format_program(prog));
    f->attrs.set(kFusedAttr, names);
    return true;
  }
};

}  // namespace

std::unique_ptr<Pass> make_elementwise_fusion_pass() { return std::make_unique<ElementwiseFusion>(); }

}  // namespace kiln
