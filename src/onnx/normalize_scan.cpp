// Scan-8 -> Loop over the batch of Scan-9s (internal to the importer).
//
// Scan-8 had a batch axis 0 on every state and scan input (scan axis 1) and ran the body per batch
// element. Exact rewrite without sequence_lens:
//   Loop(M = batch size) { b -> Scan-9(Gather(s_i, b), ..., Gather(x_j, b), ...) }
// where every Scan-9 output is a Loop scan output, which Loop stacks along a new axis 0: the batch.
#include <algorithm>

#include "onnx/normalize_rules.hpp"

namespace kiln::onnx_import {

namespace {

std::string unique_in(const Graph& g, const std::string& base) {
  std::string name = base;
  for (int i = 1; g.find_value(name); ++i) name = base + "_" + std::to_string(i);
  return name;
}

Status scan8_to_loop(Rewriter& rw, Node& n) {
  const auto* body = n.attrs.get_ptr<GraphPtr>("body");
  if (!body || !*body) return node_error(n, "Scan needs a 'body' graph");
  if (n.has_input(0))
    return node_unsupported(n, "Scan before opset 9 with sequence_lens (variable lengths) is not supported");
  std::vector<Value*> ins(n.inputs.begin() + (n.inputs.empty() ? 0 : 1), n.inputs.end());
  if (ins.empty() || std::find(ins.begin(), ins.end(), nullptr) != ins.end())
    return node_error(n, "Scan needs its states and scan inputs");
  std::vector<int64_t> directions = n.attrs.ints("directions");
  const int64_t num_scan_inputs = n.attrs.i("num_scan_inputs", 0);

  // M = the batch size: dim 0 of the first input.
  Graph& g = rw.graph();
  Value* shape = rw.new_value(n, "shape");
  rw.add_before(n, "Shape", {ins[0]}, {shape});
  Value* batch = rw.new_value(n, "batch");
  Attributes gather0;
  gather0.set("axis", int64_t{0});
  rw.add_before(n, "Gather", {shape, rw.new_constant(n, "zero", Tensor::scalar<int64_t>(0))}, {batch}, gather0);

  // The Loop body: (iteration, cond) -> (cond, Scan-9 outputs for batch element `iteration`).
  auto loop_body = std::make_shared<Graph>();
  Graph& lb = *loop_body;
  lb.name = n.name + "/batch_loop";
  lb.parent = &g;
  Value* iter = lb.add_value(unique_in(lb, n.name + "/b"), {DType::kInt64, Shape::scalar()});
  Value* cond_in = lb.add_value(unique_in(lb, n.name + "/cond_in"), {DType::kBool, Shape::scalar()});
  lb.inputs = {iter, cond_in};
  Value* cond_out = lb.add_value(unique_in(lb, n.name + "/cond_out"));
  lb.add_node("Identity", {cond_in}, {cond_out}, n.name + "/cond", "", n.opset);
  std::vector<Value*> element;
  for (size_t i = 0; i < ins.size(); ++i) {
    Value* e = lb.add_value(unique_in(lb, n.name + "/element_" + std::to_string(i)));
    lb.add_node("Gather", {ins[i], iter}, {e}, n.name + "/gather_" + std::to_string(i), "", n.opset)->attrs = gather0;
    element.push_back(e);
  }
  std::vector<Value*> per_batch;
  for (size_t i = 0; i < n.outputs.size(); ++i)
    per_batch.push_back(lb.add_value(unique_in(lb, n.name + "/out_" + std::to_string(i))));
  Node* scan = lb.add_node("Scan", element, per_batch, n.name + "/scan", "", n.opset);
  GraphPtr scan_body = *body;
  scan_body->parent = &lb;
  scan->attrs.set("body", scan_body);
  scan->attrs.set("num_scan_inputs", num_scan_inputs);
  if (!directions.empty()) scan->attrs.set("scan_input_directions", directions);
  lb.outputs = {cond_out};
  lb.outputs.insert(lb.outputs.end(), per_batch.begin(), per_batch.end());

  // The node becomes the Loop; its outputs (final states, scan outputs) are the stacked ones.
  n.op_type = "Loop";
  n.inputs = {batch, nullptr};
  n.attrs = Attributes();
  n.attrs.set("body", loop_body);
  return Status::Ok();
}

}  // namespace

const std::vector<NormalizeRule>& scan_rules() {
  static const std::vector<NormalizeRule> rules = {{"Scan", 9, scan8_to_loop}};
  return rules;
}

}  // namespace kiln::onnx_import
