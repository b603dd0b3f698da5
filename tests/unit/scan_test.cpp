// Scan (opset 9+ form) on the CPU backend: state + scan outputs against naive loops, every
// combination of axes and directions over several element sizes, and the error cases.
#include <gtest/gtest.h>

#include "control_flow_test_util.hpp"

namespace kiln {
namespace {

using namespace cftest;

// Scan over x[L, 2]: s_out = s_in + x_t, scan output y_t = s_out (a cumulative sum).
GraphPtr make_sum_graph(Dims x_dims) {
  auto g = std::make_shared<Graph>();
  g->name = "main";
  Value* s0 = g->add_value("s0", tt(DType::kFloat32, {2}));
  Value* x = g->add_value("x", tt(DType::kFloat32, x_dims));
  g->inputs = {s0, x};
  auto body = subgraph(*g, "body");
  Value* s_in = body->add_value("s_in", tt(DType::kFloat32, {2}));
  Value* x_t = body->add_value("x_t", tt(DType::kFloat32, {2}));
  body->inputs = {s_in, x_t};
  Value* s_out = body->add_value("s_out");
  Value* y_t = body->add_value("y_t");
  op(*body, "Add", {s_in, x_t}, s_out);
  op(*body, "Identity", {s_out}, y_t);
  body->outputs = {s_out, y_t};
  std::vector<Value*> outs{g->add_value("s"), g->add_value("y")};
  Node* n = g->add_node("Scan", {s0, x}, outs, "the_scan", "", 21);
  n->attrs.set("body", body);
  n->attrs.set("num_scan_inputs", int64_t{1});
  g->outputs = outs;
  return g;
}

TEST(ControlFlowScan, CumulativeSumMatchesNaiveLoop) {
  GraphPtr g = make_sum_graph({4, 2});
  ASSERT_TRUE(infer_shapes(*g).ok());
  EXPECT_EQ(g->outputs[0]->type.to_string(), "float32[2]");
  EXPECT_EQ(g->outputs[1]->type.to_string(), "float32[4,2]");
  Tensor s0 = test::random_tensor(DType::kFloat32, {2}, 1);
  Tensor x = test::random_tensor(DType::kFloat32, {4, 2}, 2);
  auto out = run(g, {{"s0", s0}, {"x", x}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  Tensor s = s0.clone(), y(DType::kFloat32, {4, 2});
  for (int t = 0; t < 4; ++t)
    for (int k = 0; k < 2; ++k) y.data<float>()[t * 2 + k] = s.data<float>()[k] += x.data<float>()[t * 2 + k];
  EXPECT_TRUE(test::tensors_close(out->at(0), s));
  EXPECT_TRUE(test::tensors_close(out->at(1), y));
}

TEST(ControlFlowScan, EmptySequenceKeepsStatesAndGivesEmptyScanOutputs) {
  GraphPtr g = make_sum_graph({0, 2});
  Tensor s0 = test::random_tensor(DType::kFloat32, {2}, 1);
  auto out = run(g, {{"s0", s0}, {"x", Tensor(DType::kFloat32, {0, 2})}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_TRUE(test::tensors_close(out->at(0), s0));
  EXPECT_EQ(out->at(1).describe(), "float32[0x2]");
}

// No states; X[2, 3, 4] is scanned along axis 1 forward (axis given as -2) and backward; the body
// passes the elements through to three scan outputs with different axes and directions.
TEST(ControlFlowScan, AxesAndDirectionsForEveryElementSize) {
  for (DType dt : {DType::kFloat32, DType::kFloat16, DType::kFloat64, DType::kInt64, DType::kUInt8,
                   DType::kBool}) {
    SCOPED_TRACE(std::string(dtype_name(dt)));
    auto g = std::make_shared<Graph>();
    g->name = "main";
    Value* x = g->add_value("x", tt(dt, {2, 3, 4}));
    g->inputs = {x};
    auto body = subgraph(*g, "body");
    Value* fwd = body->add_value("fwd", tt(dt, {2, 4}));
    Value* rev = body->add_value("rev", tt(dt, {2, 4}));
    body->inputs = {fwd, rev};
    std::vector<Value*> elems{body->add_value("o0"), body->add_value("o1"), body->add_value("o2")};
    op(*body, "Identity", {fwd}, elems[0]);
    op(*body, "Identity", {rev}, elems[1]);
    op(*body, "Identity", {rev}, elems[2]);
    body->outputs = elems;
    std::vector<Value*> outs{g->add_value("y0"), g->add_value("y1"), g->add_value("y2")};
    Node* n = g->add_node("Scan", {x, x}, outs, "scan", "", 21);
    n->attrs.set("body", body);
    n->attrs.set("num_scan_inputs", int64_t{2});
    n->attrs.set("scan_input_axes", std::vector<int64_t>{-2, 1});
    n->attrs.set("scan_input_directions", std::vector<int64_t>{0, 1});
    n->attrs.set("scan_output_axes", std::vector<int64_t>{2, -3, 1});
    n->attrs.set("scan_output_directions", std::vector<int64_t>{0, 1, 0});
    g->outputs = outs;
    ASSERT_TRUE(infer_shapes(*g).ok());
    EXPECT_EQ(outs[0]->type.shape.to_string(), "[2,4,3]");
    EXPECT_EQ(outs[1]->type.shape.to_string(), "[3,2,4]");
    EXPECT_EQ(outs[2]->type.shape.to_string(), "[2,3,4]");

    Tensor xv = test::random_tensor(dt, {2, 3, 4}, 5, 0, 100);
    auto out = run(g, {{"x", xv}});
    ASSERT_TRUE(out.ok()) << out.status().message();
    // Naive: y0[a,b,t] = x[a,t,b]; y1 (reversed input, prepended) [p,a,b] = x[a,p,b];
    // y2 (reversed input, appended) [a,t,b] = x[a,2-t,b].
    const auto X = xv.to_double_vector();
    const auto y0 = out->at(0).to_double_vector(), y1 = out->at(1).to_double_vector(),
               y2 = out->at(2).to_double_vector();
    for (int a = 0; a < 2; ++a)
      for (int t = 0; t < 3; ++t)
        for (int b = 0; b < 4; ++b) {
          double v = X[(a * 3 + t) * 4 + b];
          EXPECT_EQ(y0[(a * 4 + b) * 3 + t], v);
          EXPECT_EQ(y1[(t * 2 + a) * 4 + b], v);
          EXPECT_EQ(y2[(a * 3 + (2 - t)) * 4 + b], v);
        }
    EXPECT_EQ(out->at(0).dtype(), dt);
  }
}

TEST(ControlFlowScan, AttributeErrorsNameTheNode) {
  const std::string who = "node 'the_scan' (Scan, opset 21): ";
  auto check = [&](const std::function<void(Node&)>& edit, const std::string& msg) {
    GraphPtr g = make_sum_graph({4, 2});
    edit(*g->nodes()[0]);
    EXPECT_TRUE(has_error(infer_shapes(*g), who + msg));
  };
  check([](Node& n) { n.attrs.erase("num_scan_inputs"); }, "the int attribute 'num_scan_inputs' is required");
  check([](Node& n) { n.attrs.set("num_scan_inputs", int64_t{3}); }, "num_scan_inputs is 3, but the node has 2 inputs");
  check([](Node& n) { n.attrs.set("scan_input_axes", std::vector<int64_t>{0, 1}); },
        "attribute 'scan_input_axes' has 2 entries, expected 1");
  check([](Node& n) { n.attrs.set("scan_input_directions", std::vector<int64_t>{2}); },
        "attribute 'scan_input_directions' entries must be 0 or 1, got 2");
  check([](Node& n) { n.attrs.set("scan_input_axes", std::vector<int64_t>{2}); },
        "axis 2 is out of range for rank 2");
  check([](Node& n) { n.attrs.set("scan_output_axes", std::vector<int64_t>{-3}); },
        "axis -3 is out of range for rank 2");
  check([](Node& n) { n.outputs.pop_back(); }, "body has 2 outputs, expected 1 (1 states and 0 scan outputs)");
  check([](Node& n) { const_cast<Graph*>(n.attrs.graph("body"))->inputs.pop_back(); },
        "body takes 1 inputs, expected 2");
}

TEST(ControlFlowScan, MismatchedSequenceLengthsAreErrors) {
  GraphPtr g = make_sum_graph({4, 2});
  Node& n = *g->nodes()[0];
  Graph* body = const_cast<Graph*>(n.attrs.graph("body"));
  Value* x2 = g->add_value("x2", tt(DType::kFloat32, {5, 2}));
  g->inputs.push_back(x2);
  n.inputs.push_back(x2);
  n.attrs.set("num_scan_inputs", int64_t{2});
  body->inputs.push_back(body->add_value("x2_t", tt(DType::kFloat32, {2})));
  EXPECT_TRUE(has_error(infer_shapes(*g), "'the_scan' (Scan, opset 21): scan input 1 has 5 elements along axis 0, but scan input 0 has 4"));
  // Unknown at import, caught when run.
  x2->type = {DType::kFloat32, Shape({Dim::symbolic("n"), Dim(2)})};
  auto out = run(g, {{"s0", Tensor(DType::kFloat32, {2})}, {"x", Tensor(DType::kFloat32, {4, 2})},
                     {"x2", Tensor(DType::kFloat32, {3, 2})}});
  EXPECT_TRUE(has_error(out.status(), "'the_scan' (Scan, opset 21): scan input 1 has 3 elements"));
}

TEST(ControlFlowScan, ScanOutputChangingShapeIsAnError) {
  // The state grows (x_t appended to it) and is also the scan output.
  GraphPtr g = make_sum_graph({3, 2});
  Graph* body = const_cast<Graph*>(g->nodes()[0]->attrs.graph("body"));
  while (!body->nodes().empty()) body->remove_node(body->nodes().back().get());
  Value* grown = body->add_value("grown");
  op(*body, "Concat0", {body->inputs[0], body->inputs[1]}, grown);
  body->outputs = {grown, grown};
  Tensor v = test::random_tensor(DType::kFloat32, {3, 2}, 4);
  auto out = run(g, {{"s0", Tensor::from_vector<float>({2}, {1, 2})}, {"x", v}});
  EXPECT_TRUE(has_error(out.status(), "'the_scan' (Scan, opset 21): scan output 0 is float32[6] in iteration 1 but float32[4]"));
}

}  // namespace
}  // namespace kiln
