// Opset normalization: Scan-8 (batched) becomes a Loop over the batch of Scan-9s.
#include "backends/cpu/cpu_executor.hpp"
#include "onnx_normalize_util.hpp"
#include "op_test_util.hpp"

namespace kiln {
namespace {

using namespace kiln::test;
using onnx::TensorProto;

// Scan-8 with one state and one scan input; the body: acc' = acc + x, y = acc' * x.
SingleNode scan8(std::vector<int64_t> directions) {
  auto s = single_node(8, "Scan", {{"", {}}, {"state", {2, 3}}, {"xs", {2, 5, 3}}}, {"final", "ys"});
  auto* body = add_attr(s.node, "body", onnx::AttributeProto::GRAPH)->mutable_g();
  add_input(body, "acc", TensorProto::FLOAT, {3});
  add_input(body, "x", TensorProto::FLOAT, {3});
  add_node(body, "Add", {"acc", "x"}, {"acc_out"});
  add_node(body, "Mul", {"acc_out", "x"}, {"y"});
  add_output(body, "acc_out");
  add_output(body, "y");
  attr_i(s.node, "num_scan_inputs", 1);
  if (!directions.empty()) attr_ints(s.node, "directions", directions);
  return s;
}

TEST(OnnxNormalize, Scan8BecomesLoopOverScan9) {
  auto s = scan8({1});
  const onnx::GraphProto* body = &s.node->attribute(0).g();
  auto m = import_proto(s.model);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const Node& loop = node_n(*m);
  EXPECT_EQ(loop.op_type, "Loop");
  ASSERT_EQ(loop.inputs.size(), 2u);
  EXPECT_EQ(loop.inputs[0]->producer->op_type, "Gather");  // the batch size: Shape(state)[0]
  EXPECT_FALSE(loop.has_input(1));
  EXPECT_EQ(loop.outputs.size(), 2u);
  const Graph* lb = loop.attrs.graph("body");
  ASSERT_NE(lb, nullptr);
  EXPECT_EQ(lb->parent, m->graph.get());
  ASSERT_EQ(lb->inputs.size(), 2u);
  ASSERT_EQ(lb->outputs.size(), 3u);  // cond, final state, scan output of one batch element
  const Node* scan = find_node(*lb, "n/scan");
  ASSERT_NE(scan, nullptr);
  EXPECT_EQ(scan->attrs.i("num_scan_inputs"), 1);
  EXPECT_EQ(scan->attrs.ints("scan_input_directions"), (std::vector<int64_t>{1}));
  EXPECT_EQ(scan->attrs.graph("body")->parent, lb);
  ASSERT_EQ(scan->inputs.size(), 2u);
  for (const Value* in : scan->inputs) {
    EXPECT_EQ(in->producer->op_type, "Gather");  // element b of state / xs
    EXPECT_EQ(in->producer->inputs[1], lb->inputs[0]);
  }
  // Variable sequence lengths have no Scan-9 form.
  auto lens = single_node(8, "Scan", {{"lens", {2}, TensorProto::INT64}, {"state", {2, 3}}, {"xs", {2, 5, 3}}},
                          {"final", "ys"});
  *add_attr(lens.node, "body", onnx::AttributeProto::GRAPH)->mutable_g() = *body;
  attr_i(lens.node, "num_scan_inputs", 1);
  EXPECT_TRUE(error_contains(import_proto(lens.model).status(), StatusCode::kUnsupported, {"'n'", "sequence_lens"}));
}

TEST(OnnxNormalize, Scan8RewriteComputesTheBatchedScan) {
  // Run on the CPU backend (Loop, Scan, Gather, Shape kernels) against the Scan-8 pseudo-code.
  for (int64_t reverse : {0, 1}) {
    auto m = import_proto(scan8({reverse}).model);
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    auto exec = CpuExecutor::create(m->graph);
    ASSERT_TRUE(exec.ok()) << exec.status().to_string();
    const Tensor state = random_tensor(DType::kFloat32, {2, 3}, 21);
    const Tensor xs = random_tensor(DType::kFloat32, {2, 5, 3}, 22);
    auto out = (*exec)->run({{"state", state}, {"xs", xs}});
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    Tensor final_expect(DType::kFloat32, {2, 3}), ys_expect(DType::kFloat32, {2, 5, 3});
    for (int64_t b = 0; b < 2; ++b) {
      float acc[3];
      for (int64_t c = 0; c < 3; ++c) acc[c] = state.data<float>()[b * 3 + c];
      for (int64_t k = 0; k < 5; ++k) {  // outputs are appended in iteration order
        const int64_t t = reverse ? 4 - k : k;
        for (int64_t c = 0; c < 3; ++c) {
          const float x = xs.data<float>()[(b * 5 + t) * 3 + c];
          acc[c] += x;
          ys_expect.data<float>()[(b * 5 + k) * 3 + c] = acc[c] * x;
        }
      }
      for (int64_t c = 0; c < 3; ++c) final_expect.data<float>()[b * 3 + c] = acc[c];
    }
    EXPECT_TRUE(tensors_close((*out)[0], final_expect)) << "reverse " << reverse;
    EXPECT_TRUE(tensors_close((*out)[1], ys_expect)) << "reverse " << reverse;
  }
}

}  // namespace
}  // namespace kiln
