// MatMul(Q, K^T) [-> Mul/Div by a scalar] [-> Add(mask) | Where(bool mask, c, .)] -> Softmax(last axis) [-> IsNaN/Where guard]
// -> MatMul(., V) [-> Transpose]  =>  kiln.Attention (ops/attention.hpp), CUDA backend.
//
// Q, K^T and V are traced up through view ops (Transpose, Reshape, Squeeze, Unsqueeze, Flatten,
// Gather of one constant index, unit-step Slice of constants) and scalar Mul/Div scales to the
// furthest tensor they are a strided view of, so the fused node reads the projection outputs
// directly (the head-split Transposes become dead); a Transpose after the second MatMul (the head
// merge) is absorbed into the output strides. Scales on Q, K^T and the scores multiply into one.
// Shapes must be static; Q/K/V views must have unit stride along the head dim (the CUDA kernel
// loads rows); the head dims must be ones the CUDA layer runs (attention_head_dims_supported).
// float32 attention is fused only on request: its CUDA kernel has no tensor cores and measured
// 1.06 ms for ViT-B/16 batch 64 per layer on an H200, slower than cuBLAS TF32 MatMuls + Softmax.
#include <algorithm>

#include "ops/attention.hpp"
#include "ops/masked_softmax.hpp"
#include "passes/pass.hpp"
#include "passes/pass_util.hpp"

namespace kiln {
namespace {

using passes::is_op;

using passes::scalar_constant;
using passes::single_consumer;


// A strided view of a base tensor whose dims may each span several strided "atoms" (size, stride),
// outer first: [S, B*H, d] views of [S, B, H*d] are representable though B*H is no single stride,
// so a head split that merges and re-splits dims still composes.
using Atom = std::pair<int64_t, int64_t>;
struct View {
  int64_t offset = 0;
  std::vector<std::vector<Atom>> dims;
};

int64_t group_size(const std::vector<Atom>& g) {
  int64_t n = 1;
  for (const Atom& a : g) n *= a.first;
  return n;
}

// Drops size-1 atoms and merges neighbours that are contiguous with each other.
std::vector<Atom> coalesce(const std::vector<Atom>& g) {
  std::vector<Atom> out;
  for (const Atom& a : g) {
    if (a.first == 1) continue;
    if (!out.empty() && out.back().second == a.first * a.second) {
      out.back() = {out.back().first * a.first, a.second};
    } else {
      out.push_back(a);
    }
  }
  return out;
}

Dims view_dims(const View& v) {
  Dims d;
  for (const auto& g : v.dims) d.push_back(group_size(g));
  return d;
}

View contiguous(const Dims& dims) {
  View v;
  int64_t s = 1;
  v.dims.resize(dims.size());
  for (size_t i = dims.size(); i-- > 0;) {
    v.dims[i] = {{dims[i], s}};
    s *= dims[i];
  }
  return v;
}

// Re-views `v` with `to` dims: the atoms in order, regrouped (an atom splits where a dim needs it).
bool reshape_view(View& v, const Dims& to) {
  std::vector<Atom> atoms;
  for (const auto& g : v.dims)
    for (const Atom& a : g)
      if (a.first != 1) atoms.push_back(a);
  if (dims_numel(view_dims(v)) != dims_numel(to) || dims_numel(to) == 0) return false;
  std::vector<std::vector<Atom>> out(to.size());
  size_t ai = 0;
  for (size_t d = 0; d < to.size(); ++d) {
    int64_t need = to[d];
    while (need > 1) {
      if (ai >= atoms.size()) return false;
      Atom& a = atoms[ai];
      if (a.first <= need) {
        if (need % a.first != 0) return false;
        out[d].push_back(a);
        need /= a.first;
        ++ai;
      } else {
        if (a.first % need != 0) return false;
        out[d].push_back({need, a.second * (a.first / need)});
        a = {a.first / need, a.second};
        need = 1;
      }
    }
  }
  if (ai != atoms.size()) return false;
  v.dims = std::move(out);
  return true;
}

std::optional<std::vector<int64_t>> const_ints(const Node* n, size_t i) {
  if (!n->has_input(i)) return std::vector<int64_t>{};
  const Value* c = n->inputs[i];
  if (!c->is_constant() || !is_integer(c->constant->dtype())) return std::nullopt;
  Tensor t = c->constant->cast(DType::kInt64);
  return std::vector<int64_t>(t.data<int64_t>(), t.data<int64_t>() + t.numel());
}

bool is_view_op(const Node* n) {
  static const char* kOps[] = {"Transpose", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Gather", "Slice", "Identity"};
  return n && n->domain.empty() && std::any_of(std::begin(kOps), std::end(kOps), [&](const char* o) { return n->op_type == o; });
}

// `v` (a view of n's data input) through n, a view op; false when not representable.
bool apply(const Node* n, View& v) {
  auto out = n->outputs[0]->type.shape.to_dims();
  if (!out) return false;
  const int64_t rank = static_cast<int64_t>(v.dims.size());
  if (n->op_type == "Identity") return view_dims(v) == *out;
  if (n->op_type == "Transpose") {
    std::vector<int64_t> perm = n->attrs.ints("perm");
    if (perm.empty())
      for (int64_t i = rank - 1; i >= 0; --i) perm.push_back(i);
    if (static_cast<int64_t>(perm.size()) != rank) return false;
    View t = v;
    for (size_t i = 0; i < perm.size(); ++i) {
      if (perm[i] < 0 || perm[i] >= rank) return false;
      t.dims[i] = v.dims[static_cast<size_t>(perm[i])];
    }
    v = t;
    return view_dims(v) == *out;
  }
  if (n->op_type == "Gather") {
    auto idx = const_ints(n, 1);
    int64_t axis = n->attrs.i("axis", 0);
    if (axis < 0) axis += rank;
    if (!idx || idx->size() != 1 || axis < 0 || axis >= rank) return false;
    const auto a = static_cast<size_t>(axis);
    const int64_t size = group_size(v.dims[a]);
    int64_t i = (*idx)[0] < 0 ? (*idx)[0] + size : (*idx)[0];
    if (i < 0 || i >= size) return false;
    for (size_t k = v.dims[a].size(); k-- > 0;) {  // the index over the dim's atoms, inner first
      v.offset += (i % v.dims[a][k].first) * v.dims[a][k].second;
      i /= v.dims[a][k].first;
    }
    if (n->inputs[1]->constant->rank() == 0) v.dims.erase(v.dims.begin() + axis);
    else v.dims[a].clear();
    return view_dims(v) == *out;
  }
  if (n->op_type == "Slice") {
    auto starts = const_ints(n, 1), ends = const_ints(n, 2), axes = const_ints(n, 3), steps = const_ints(n, 4);
    if (!starts || !ends || !axes || !steps || out->size() != v.dims.size()) return false;
    for (size_t k = 0; k < starts->size(); ++k) {
      int64_t axis = axes->empty() ? static_cast<int64_t>(k) : (*axes)[k];
      if (axis < 0) axis += rank;
      if (axis < 0 || axis >= rank || (!steps->empty() && (*steps)[k] != 1)) return false;
      const auto a = static_cast<size_t>(axis);
      auto atoms = coalesce(v.dims[a]);
      if (atoms.size() > 1) return false;
      const int64_t size = group_size(atoms), stride = atoms.empty() ? 0 : atoms[0].second;
      int64_t s = (*starts)[k];
      if (s < 0) s += size;
      s = std::clamp<int64_t>(s, 0, size);
      v.offset += s * stride;
      v.dims[a] = {{(*out)[a], stride}};
    }
    return view_dims(v) == *out;
  }
  return reshape_view(v, *out);  // Reshape, Squeeze, Unsqueeze, Flatten
}

// A MatMul operand traced to the tensor it views.
struct Traced {
  Value* base = nullptr;
  View view;
  double scale = 1.0;
};

// The furthest source of `v` through view ops and (when `scales`) scalar Mul/Div whose view has
// unit stride along v's last dim (or the one before it when `k_transposed`, for K^T).
std::optional<Traced> trace(Value* v, bool scales, bool k_transposed) {
  struct Step {
    Node* node;
    Value* in;      // the data input
    double factor;  // scale steps: the factor; views: 0
  };
  std::vector<Step> chain;  // from v upwards
  for (Value* cur = v; cur->producer && chain.size() < 32;) {
    Node* p = cur->producer;
    if (!p->has_input(0) || !p->has_output(0) || p->outputs[0] != cur) break;
    if (scales && (is_op(p, "Mul") || is_op(p, "Div")) && p->num_inputs() == 2) {
      const size_t ci = is_op(p, "Mul") && scalar_constant(p->inputs[0]) ? 0 : 1;
      auto c = scalar_constant(p->inputs[ci]);
      Value* x = p->inputs[1 - ci];
      if (!c || (is_op(p, "Div") && *c == 0.0) || x->type.shape != cur->type.shape || x->type.dtype != cur->type.dtype)
        break;
      chain.push_back({p, x, is_op(p, "Div") ? 1.0 / *c : *c});
      cur = x;
      continue;
    }
    if (!is_view_op(p) || !p->inputs[0]->type.shape.to_dims() || p->inputs[0]->type.dtype != cur->type.dtype) break;
    chain.push_back({p, p->inputs[0], 0.0});
    cur = p->inputs[0];
  }
  // Try the furthest source first; a chain that does not compose falls back to a nearer one.
  for (size_t k = chain.size() + 1; k-- > 0;) {
    Traced t;
    t.base = k == 0 ? v : chain[k - 1].in;
    if (t.base->is_constant()) continue;  // weights: the constant itself is fine but keep it simple
    auto dims = t.base->type.shape.to_dims();
    if (!dims) continue;
    t.view = contiguous(*dims);
    bool ok = true;
    for (size_t i = k; i-- > 0 && ok;) {
      if (chain[i].factor != 0.0) t.scale *= chain[i].factor;
      else ok = apply(chain[i].node, t.view);
    }
    const size_t r = t.view.dims.size();
    if (!ok || r < 2) continue;
    // Every dim one stride, but a rank-3 view's leading [B*H] dim, split later (split_bh).
    bool plain = true;
    for (size_t i = r == 3 ? 1 : 0; i < r; ++i) plain &= coalesce(t.view.dims[i]).size() <= 1;
    if (!plain || coalesce(t.view.dims[0]).size() > 2) continue;
    const auto unit = coalesce(t.view.dims[k_transposed ? r - 2 : r - 1]);
    if (!unit.empty() && unit[0].second != 1) continue;
    return t;
  }
  return std::nullopt;
}

// Walks up from `v` through single-use scalar Mul/Div nodes (appended to `fused`, scale multiplied).
Value* strip_scales(const Graph& g, Value* v, const Node* reader, double& scale, std::vector<Node*>& fused) {
  while (Node* p = v->producer) {
    if (!((is_op(p, "Mul") || is_op(p, "Div")) && p->num_inputs() == 2) || single_consumer(g, v) != reader) break;
    const size_t ci = is_op(p, "Mul") && scalar_constant(p->inputs[0]) ? 0 : 1;
    auto c = scalar_constant(p->inputs[ci]);
    Value* x = p->inputs[1 - ci];
    if (!c || (is_op(p, "Div") && *c == 0.0) || x->type.shape != v->type.shape || x->type.dtype != v->type.dtype) break;
    scale *= is_op(p, "Div") ? 1.0 / *c : *c;
    fused.push_back(p);
    reader = p;
    v = x;
  }
  return v;
}

// The stride of a dim that is one atom (0 for size 1).
int64_t plain_stride(const std::vector<Atom>& g) {
  auto c = coalesce(g);
  return c.empty() ? 0 : c[0].second;
}

// The strides of a [B*H] dim seen as [B, H], when each part is one stride.
std::optional<std::pair<int64_t, int64_t>> split_bh(const std::vector<Atom>& g, int64_t b, int64_t h) {
  View v{0, {g}};
  if (!reshape_view(v, {b, h}) || coalesce(v.dims[0]).size() > 1 || coalesce(v.dims[1]).size() > 1)
    return std::nullopt;
  return std::make_pair(plain_stride(v.dims[0]), plain_stride(v.dims[1]));
}

// The [B, H] split of rank-3 views' leading [B*H] dim: the one a multi-stride view needs (a head
// split of [S, B, H*d] that went through [S, B*H, d]), else B = 1.
std::optional<std::pair<int64_t, int64_t>> choose_bh(const std::vector<const View*>& views, int64_t n) {
  for (const View* v : views)
    if (auto c = coalesce(v->dims[0]); c.size() == 2) return std::make_pair(c[0].first, c[1].first);
  return std::make_pair(int64_t{1}, n);
}

// The logical [B, H, S, D] view of a rank-3 ([B*H, S, D]) or rank-4 view.
std::optional<AttentionView> to4(const View& v, int64_t b, int64_t h) {
  AttentionView a;
  a.offset = v.offset;
  const size_t r = v.dims.size();
  for (size_t i = r == 3 ? 1 : 0; i < r; ++i) a.stride[4 - r + i] = plain_stride(v.dims[i]);
  if (r == 3) {
    auto bh = split_bh(v.dims[0], b, h);
    if (!bh) return std::nullopt;
    a.stride[0] = bh->first, a.stride[1] = bh->second;
  }
  return a;
}

class AttentionFusion : public Pass {
 public:
  explicit AttentionFusion(bool float32) : float32_(float32) {}
  std::string_view name() const override { return "attention-fusion"; }

  Expected<bool> run(Graph& g) override {
    bool changed = false;
    std::vector<Node*> softmaxes;
    for (const auto& n : g.nodes())
      if (is_op(n.get(), "Softmax")) softmaxes.push_back(n.get());
    for (Node* sm : softmaxes) changed |= fuse(g, sm, float32_);
    if (changed) KILN_RETURN_IF_ERROR(g.topological_sort());
    return changed;
  }

 private:
  bool float32_;

  static bool fuse(Graph& g, Node* sm, bool float32) {
    if (!sm->has_input(0) || !sm->has_output(0)) return false;
    const DType t = sm->inputs[0]->type.dtype;
    if (!((float32 && t == DType::kFloat32) || t == DType::kFloat16 || t == DType::kBFloat16)) return false;
    auto sdims = sm->inputs[0]->type.shape.to_dims();
    if (!sdims || sdims->size() < 3 || sdims->size() > 4) return false;
    const int64_t rank = static_cast<int64_t>(sdims->size());
    const int64_t axis = sm->attrs.i("axis", -1);
    if (axis != -1 && axis != rank - 1) return false;

    // Below the Softmax: [IsNaN -> Where(isnan, 0, p)] -> MatMul(p, V) [-> Transpose].
    std::vector<Node*> fused{sm};
    Value* p = sm->outputs[0];
    bool nan_to_zero = false;
    if (passes::is_graph_output(g, p)) return false;
    auto readers = g.consumers(p);
    if (readers.size() == 2) {
      Node* isnan = is_op(readers[0], "IsNaN") ? readers[0] : readers[1];
      Node* where = isnan == readers[0] ? readers[1] : readers[0];
      if (!is_op(isnan, "IsNaN") || !is_op(where, "Where") || where->num_inputs() != 3 || !isnan->has_output(0) ||
          where->inputs[0] != isnan->outputs[0] || single_consumer(g, isnan->outputs[0]) != where ||
          where->inputs[2] != p || !passes::is_scalar(where->inputs[1], 0.0, 0.0) || !where->has_output(0) ||
          where->outputs[0]->type.shape != p->type.shape)
        return false;
      fused.push_back(isnan);
      fused.push_back(where);
      nan_to_zero = true;
      p = where->outputs[0];
    }
    Node* mm2 = single_consumer(g, p);
    if (!is_op(mm2, "MatMul") || mm2->inputs[0] != p || mm2->inputs[1] == p || !mm2->has_output(0)) return false;
    fused.push_back(mm2);
    Value* out = mm2->outputs[0];
    auto odims = out->type.shape.to_dims();
    if (!odims || odims->size() != sdims->size()) return false;
    View out_view = contiguous(*odims);
    if (Node* tr = single_consumer(g, out); is_op(tr, "Transpose") && tr->has_output(0)) {
      auto ydims = tr->outputs[0]->type.shape.to_dims();
      std::vector<int64_t> perm = tr->attrs.ints("perm");
      if (ydims && perm.size() == odims->size()) {
        View y = contiguous(*ydims);
        for (size_t i = 0; i < perm.size(); ++i) out_view.dims[static_cast<size_t>(perm[i])] = y.dims[i];
        fused.push_back(tr);
        out = tr->outputs[0];
      }
    }
    const Dims out_shape = out->type.shape.to_dims().value_or(Dims{});

    // Above the Softmax: [Add(mask)] <- [scalar Mul/Div]* <- MatMul(Q, K^T).
    double scale = 1.0;
    Value* s = sm->inputs[0];
    Value* mask = nullptr;
    std::optional<float> mask_fill;
    if (Node* wh = s->producer; is_op(wh, "Where") && wh->num_inputs() == 3 && single_consumer(g, s) == sm) {
      // masked_fill: Where(mask, c, scores) -> scores replaced by c where the bool mask is true.
      std::vector<Node*> scales;
      double sc = 1.0;
      Value* x = strip_scales(g, wh->inputs[2], wh, sc, scales);
      Value* m = wh->inputs[0];
      auto md = m->type.shape.to_dims();
      auto c = scalar_constant(wh->inputs[1]);
      if (!c || m->type.dtype != DType::kBool || wh->inputs[1]->type.dtype != t || !is_op(x->producer, "MatMul") ||
          single_consumer(g, x) != (scales.empty() ? wh : scales.back()) || x->type.shape != s->type.shape || !md ||
          md->size() > sdims->size() || !masked_softmax_mask_strides(*sdims, *md))
        return false;
      mask = m;
      mask_fill = static_cast<float>(*c);
      scale = sc;
      fused.push_back(wh);
      fused.insert(fused.end(), scales.begin(), scales.end());
      s = x;
    } else if (Node* add = s->producer; is_op(add, "Add") && add->num_inputs() == 2 && single_consumer(g, s) == sm) {
      for (size_t i = 0; i < 2 && !mask; ++i) {
        std::vector<Node*> scales;
        double sc = 1.0;
        Value* x = strip_scales(g, add->inputs[i], add, sc, scales);
        Value* m = add->inputs[1 - i];
        auto md = m->type.shape.to_dims();
        if (is_op(x->producer, "MatMul") && single_consumer(g, x) == (scales.empty() ? add : scales.back()) &&
            x->type.shape == s->type.shape && m->type.dtype == t && md && md->size() <= sdims->size() &&
            masked_softmax_mask_strides(*sdims, *md)) {
          mask = m;
          scale = sc;
          fused.push_back(add);
          fused.insert(fused.end(), scales.begin(), scales.end());
          s = x;
        }
      }
      if (!mask) return false;
    } else {
      std::vector<Node*> scales;
      s = strip_scales(g, s, sm, scale, scales);
      if (!scales.empty() && single_consumer(g, s) != scales.back()) return false;
      if (scales.empty() && single_consumer(g, s) != sm) return false;
      fused.insert(fused.end(), scales.begin(), scales.end());
    }
    Node* mm1 = s->producer;
    if (!is_op(mm1, "MatMul") || mm1->num_inputs() != 2 || s->type.shape.to_dims() != sdims) return false;
    fused.push_back(mm1);

    // The operands' views: Q [..,Sq,d], K^T [..,d,Sk], V [..,Sk,dv], all of the scores' rank and batch dims.
    auto qd = mm1->inputs[0]->type.shape.to_dims(), kd = mm1->inputs[1]->type.shape.to_dims(),
         vd = mm2->inputs[1]->type.shape.to_dims();
    if (!qd || !kd || !vd || qd->size() != sdims->size() || kd->size() != sdims->size() || vd->size() != sdims->size())
      return false;
    for (size_t i = 0; i + 2 < sdims->size(); ++i)
      if ((*qd)[i] != (*sdims)[i] || (*kd)[i] != (*sdims)[i] || (*vd)[i] != (*sdims)[i]) return false;
    const size_t r = sdims->size();
    const int64_t sq = (*qd)[r - 2], d = (*qd)[r - 1], sk = (*kd)[r - 1], dv = (*vd)[r - 1];
    if (!attention_head_dims_supported(d, dv)) return false;
    auto q = trace(mm1->inputs[0], true, false), kt = trace(mm1->inputs[1], true, true),
         v = trace(mm2->inputs[1], false, false);
    if (!q || !kt || !v) return false;
    std::swap(kt->view.dims[r - 1], kt->view.dims[r - 2]);

    AttentionGeometry geo;
    auto bh = r == 4 ? std::make_optional(std::make_pair((*sdims)[0], (*sdims)[1]))
                     : choose_bh({&q->view, &kt->view, &v->view}, (*sdims)[0]);
    if (!bh) return false;
    geo.batch = bh->first;
    geo.heads = bh->second;
    geo.sq = sq, geo.sk = sk, geo.d = d, geo.dv = dv;
    auto q4 = to4(q->view, geo.batch, geo.heads), k4 = to4(kt->view, geo.batch, geo.heads),
         v4 = to4(v->view, geo.batch, geo.heads), o4 = to4(out_view, geo.batch, geo.heads);
    if (!q4 || !k4 || !v4 || !o4) return false;
    geo.q = *q4, geo.k = *k4, geo.v = *v4, geo.out = *o4;
    geo.out_shape = out_shape;
    geo.scale = static_cast<float>(scale * q->scale * kt->scale);
    geo.nan_to_zero = nan_to_zero;
    geo.mask_fill = mask_fill;

    std::vector<const Node*> order;  // graph order
    for (const auto& n : g.nodes())
      if (std::find(fused.begin(), fused.end(), n.get()) != fused.end()) order.push_back(n.get());
    const std::string names = passes::fused_names(order);
    const std::string node_name = mm2->name.empty() ? sm->name : mm2->name;
    const int opset = sm->opset;
    for (Node* f : fused) g.remove_node(f);
    std::vector<Value*> inputs{q->base, kt->base, v->base};
    if (mask) inputs.push_back(mask);
    Node* fn = g.add_node("Attention", inputs, {out}, node_name, "kiln", opset);
    set_attention_attrs(fn->attrs, geo);
    fn->attrs.set(kFusedAttr, names);
    return true;
  }
};

}  // namespace

std::unique_ptr<Pass> make_attention_fusion_pass(bool float32) { return std::make_unique<AttentionFusion>(float32); }

}  // namespace kiln
