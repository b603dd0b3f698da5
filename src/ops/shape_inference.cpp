#include "ops/shape_inference.hpp"

#include "ops/op_registry.hpp"
#include "plugin/plugin_node.hpp"

namespace kiln {

namespace {
// Keeps the more informative of a declared and an inferred type.
TensorType merge(const TensorType& declared, const TensorType& inferred) {
  TensorType out = inferred;
  if (out.dtype == DType::kUndefined) out.dtype = declared.dtype;
  if (!out.shape.has_rank()) {
    out.shape = declared.shape;
  } else if (declared.shape.has_rank() && declared.shape.rank() == out.shape.rank()) {
    for (size_t i = 0; i < out.shape.rank(); ++i) {
      Dim& d = out.shape.dims()[i];
      const Dim& decl = declared.shape[i];
      if (!d.known() && decl.known()) d = decl;
      else if (!d.known() && d.symbol.empty()) d.symbol = decl.symbol;
    }
  }
  return out;
}
}  // namespace

Status infer_shapes(Graph& graph, const ShapeInferenceOptions& options) {
  KILN_RETURN_IF_ERROR(graph.topological_sort());
  const OpRegistry& reg = OpRegistry::instance();
  for (const auto& node : graph.nodes()) {
    // A node that resolves to a registered plugin gets its instance here, and its types from it.
    KILN_RETURN_IF_ERROR(bind_plugin(*node));
    const OpSchema* schema = node->plugin ? nullptr : reg.schema(node->domain, node->op_type);
    if (!schema && !node->plugin) {
      if (options.allow_unknown_ops) continue;
      if (!wanted_plugin_name(*node).empty() && (is_custom_domain(node->domain) || node->op_type == "Plugin"))
        return unsupported("{}: unknown op ({})", node->describe(), plugin_hint());
      return unsupported("{}: unknown op", node->describe());
    }
    std::vector<TensorType> types;
    std::vector<const Tensor*> values;
    for (Value* v : node->inputs) {
      types.push_back(v ? v->type : TensorType{});
      values.push_back(v && v->constant ? &*v->constant : nullptr);
    }
    // Subgraphs first: their outputs may feed this node's inference (If, Loop).
    for (const Graph* sg : node->subgraphs())
      KILN_RETURN_IF_ERROR(infer_shapes(const_cast<Graph&>(*sg), options));
    // An input whose producer could not be typed (an op without a schema upstream) leaves this
    // node untyped too, rather than failing as if the input were absent.
    bool untyped_input = false;
    for (Value* v : node->inputs) untyped_input |= v && v->type.dtype == DType::kUndefined;
    if (untyped_input && options.allow_unknown_ops) continue;
    if (node->plugin) {
      std::vector<TensorType> outs;
      KILN_RETURN_IF_ERROR(plugin_infer(*node, types, outs));
      for (size_t i = 0; i < node->outputs.size(); ++i)
        if (Value* out = node->outputs[i]) out->type = merge(out->type, outs[i]);
      continue;
    }
    InferContext ctx(*node, std::move(types), std::move(values));
    Status st = infer_node(*schema, ctx);
    if (!st.ok()) {
      // An op kiln cannot type (unsupported attribute value, ...) is reported when it is run or
      // built, with the full list; shape errors are model errors and stop here.
      if (st.code() == StatusCode::kUnsupported && options.allow_unknown_ops) continue;
      return st;
    }
    for (size_t i = 0; i < node->outputs.size(); ++i) {
      Value* out = node->outputs[i];
      if (!out) continue;
      out->type = merge(out->type, ctx.outputs()[i]);
      if (const Tensor* v = ctx.output_value(i); v && !out->constant) out->constant = *v;
    }
  }
  return Status::Ok();
}

}  // namespace kiln
