// Sequence and optional values on the CPU backend: the sequence ops, optionals, Identity/Loop
// carrying sequences, and graph inputs/outputs that are sequences (CpuExecutor::run_values).
#include <cstring>

#include "op_test_util.hpp"

namespace kiln::test {
namespace {

TensorType seq_type(DType dt, Shape s = Shape()) { return TensorType{dt, std::move(s), ValueKind::kSequence}; }

// A small graph builder: named values, nodes, and a run through run_values.
struct SeqGraph {
  GraphPtr g = std::make_shared<Graph>();
  Value* input(const std::string& name, TensorType t) {
    Value* v = g->add_value(name, std::move(t));
    g->inputs.push_back(v);
    return v;
  }
  Value* constant(const std::string& name, Tensor t) { return g->add_constant(name, std::move(t)); }
  Value* node(const std::string& op, std::vector<Value*> ins, const std::string& out, Attributes attrs = {}) {
    Value* o = g->add_value(out);
    Node* n = g->add_node(op, std::move(ins), {o}, op + "_" + out, "", 21);
    n->attrs = std::move(attrs);
    return o;
  }
  Expected<std::vector<RuntimeValue>> run(std::vector<Value*> outputs, const std::map<std::string, RuntimeValue>& feeds) {
    g->outputs = std::move(outputs);
    KILN_RETURN_IF_ERROR(infer_shapes(*g));
    KILN_ASSIGN_OR_RETURN(auto exec, CpuExecutor::create(g));
    return exec->run_values(feeds);
  }
};

Attributes attrs_of(std::initializer_list<std::pair<const char*, AttrValue>> kv) {
  Attributes a;
  for (const auto& [k, v] : kv) a.set(k, v);
  return a;
}

// Naive slice [begin, begin+len) along `axis` of a float tensor.
Tensor naive_slice(const Tensor& t, int axis, int64_t begin, int64_t len) {
  Dims d = t.dims();
  d[static_cast<size_t>(axis)] = len;
  Tensor out(DType::kFloat32, d);
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= t.dims()[static_cast<size_t>(i)];
  for (int i = axis + 1; i < t.rank(); ++i) inner *= t.dims()[static_cast<size_t>(i)];
  const int64_t n = t.dims()[static_cast<size_t>(axis)];
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = 0; k < len; ++k)
      for (int64_t i = 0; i < inner; ++i)
        out.data<float>()[(o * len + k) * inner + i] = t.data<float>()[(o * n + begin + k) * inner + i];
  return out;
}

TEST(SequenceOps, SplitToSequenceWithSizesThenConcatRoundTrips) {
  Tensor x = random_tensor(DType::kFloat32, {2, 3, 7}, 3);
  SeqGraph sg;
  Value* in = sg.input("x", {DType::kFloat32, Shape::from_dims({2, 3, 7})});
  Value* split = sg.constant("split", Tensor::from_vector<int64_t>({3}, {2, 0, 5}));
  Value* seq = sg.node("SplitToSequence", {in, split}, "seq", attrs_of({{"axis", int64_t{-1}}}));
  Value* len = sg.node("SequenceLength", {seq}, "len");
  Value* cat = sg.node("ConcatFromSequence", {seq}, "cat", attrs_of({{"axis", int64_t{2}}}));
  auto outs = sg.run({seq, len, cat}, {{"x", x}});
  ASSERT_TRUE(outs.ok()) << outs.status().message();
  const TensorSequence* s = as_sequence((*outs)[0]);
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(s->tensors.size(), 3u);
  EXPECT_TRUE(tensors_close(s->tensors[0], naive_slice(x, 2, 0, 2)));
  EXPECT_EQ(s->tensors[1].dims(), (Dims{2, 3, 0}));
  EXPECT_TRUE(tensors_close(s->tensors[2], naive_slice(x, 2, 2, 5)));
  EXPECT_EQ(*as_tensor((*outs)[1])->data<int64_t>(), 3);
  EXPECT_TRUE(tensors_close(*as_tensor((*outs)[2]), x));
}

TEST(SequenceOps, SplitToSequenceScalarSplitAndKeepdims) {
  Tensor x = random_tensor(DType::kFloat32, {5, 2}, 4);
  SeqGraph sg;
  Value* in = sg.input("x", {DType::kFloat32, Shape::from_dims({5, 2})});
  Value* k = sg.constant("k", Tensor::scalar<int64_t>(2));
  Value* chunks = sg.node("SplitToSequence", {in, k}, "chunks");  // [2, 2, 1] rows
  Value* rows = sg.node("SplitToSequence", {in}, "rows", attrs_of({{"keepdims", int64_t{0}}}));
  auto outs = sg.run({chunks, rows}, {{"x", x}});
  ASSERT_TRUE(outs.ok()) << outs.status().message();
  const TensorSequence* c = as_sequence((*outs)[0]);
  ASSERT_EQ(c->tensors.size(), 3u);
  EXPECT_TRUE(tensors_close(c->tensors[2], naive_slice(x, 0, 4, 1)));
  const TensorSequence* r = as_sequence((*outs)[1]);
  ASSERT_EQ(r->tensors.size(), 5u);
  for (int64_t i = 0; i < 5; ++i)
    EXPECT_TRUE(tensors_close(r->tensors[static_cast<size_t>(i)], naive_slice(x, 0, i, 1).reshaped({2})));
}

TEST(SequenceOps, ConstructInsertEraseAtFollowAVector) {
  std::vector<Tensor> xs;
  for (uint32_t i = 0; i < 3; ++i) xs.push_back(random_tensor(DType::kFloat32, {1 + i, 2}, 10 + i));
  SeqGraph sg;
  std::vector<Value*> ins;
  for (int i = 0; i < 3; ++i) ins.push_back(sg.input("x" + std::to_string(i), {DType::kFloat32, Shape()}));
  Value* s0 = sg.node("SequenceConstruct", ins, "s0");                                          // x0 x1 x2
  Value* s1 = sg.node("SequenceInsert", {s0, ins[2], sg.constant("p1", Tensor::scalar<int32_t>(-3))}, "s1");  // x2 x0 x1 x2
  Value* s2 = sg.node("SequenceErase", {s1, sg.constant("p2", Tensor::scalar<int64_t>(1))}, "s2");  // x2 x1 x2
  Value* s3 = sg.node("SequenceErase", {s2}, "s3");                                              // x2 x1
  Value* at = sg.node("SequenceAt", {s3, sg.constant("p3", Tensor::scalar<int64_t>(-1))}, "at");  // x1
  auto outs = sg.run({s3, at}, {{"x0", xs[0]}, {"x1", xs[1]}, {"x2", xs[2]}});
  ASSERT_TRUE(outs.ok()) << outs.status().message();
  const TensorSequence* s = as_sequence((*outs)[0]);
  ASSERT_EQ(s->tensors.size(), 2u);
  EXPECT_TRUE(tensors_close(s->tensors[0], xs[2]));
  EXPECT_TRUE(tensors_close(s->tensors[1], xs[1]));
  EXPECT_TRUE(tensors_close(*as_tensor((*outs)[1]), xs[1]));
}

TEST(SequenceOps, ConcatFromSequenceNewAxisStacks) {
  std::vector<Tensor> xs;
  for (uint32_t i = 0; i < 3; ++i) xs.push_back(random_tensor(DType::kInt32, {2, 4}, 20 + i, -50, 50));
  SeqGraph sg;
  Value* seq = sg.input("seq", seq_type(DType::kInt32, Shape::from_dims({2, 4})));
  Value* out = sg.node("ConcatFromSequence", {seq}, "out", attrs_of({{"axis", int64_t{-1}}, {"new_axis", int64_t{1}}}));
  auto outs = sg.run({out}, {{"seq", TensorSequence{DType::kInt32, xs}}});
  ASSERT_TRUE(outs.ok()) << outs.status().message();
  const Tensor& y = *as_tensor((*outs)[0]);
  ASSERT_EQ(y.dims(), (Dims{2, 4, 3}));
  for (int64_t i = 0; i < 8; ++i)
    for (size_t k = 0; k < 3; ++k) EXPECT_EQ(y.data<int32_t>()[i * 3 + static_cast<int64_t>(k)], xs[k].data<int32_t>()[i]);
}

TEST(SequenceOps, EmptySequenceInsertAndSequenceIO) {
  Tensor t = random_tensor(DType::kInt64, {3}, 5, -9, 9);
  SeqGraph sg;
  Value* in = sg.input("seq", seq_type(DType::kInt64));
  Value* x = sg.input("t", {DType::kInt64, Shape::from_dims({3})});
  Value* ins = sg.node("SequenceInsert", {in, x}, "ins");
  Value* id = sg.node("Identity", {ins}, "id");
  Value* empty = sg.node("SequenceEmpty", {}, "empty", attrs_of({{"dtype", int64_t{7}}}));
  auto outs = sg.run({id, empty}, {{"seq", TensorSequence{DType::kInt64, {}}}, {"t", t}});
  ASSERT_TRUE(outs.ok()) << outs.status().message();
  const TensorSequence* s = as_sequence((*outs)[0]);
  ASSERT_EQ(s->tensors.size(), 1u);
  EXPECT_TRUE(tensors_close(s->tensors[0], t));
  EXPECT_EQ(as_sequence((*outs)[1])->dtype, DType::kInt64);
  EXPECT_TRUE(as_sequence((*outs)[1])->tensors.empty());
  EXPECT_EQ(sg.g->outputs[0]->type.kind, ValueKind::kSequence);  // inference kept the kind
}

TEST(SequenceOps, SequenceMapRunsTheBodyPerElement) {
  SeqGraph sg;
  Value* seq = sg.input("seq", seq_type(DType::kFloat32));
  Value* bias = sg.input("bias", {DType::kFloat32, Shape::from_dims({2})});
  auto body = std::make_shared<Graph>();
  body->parent = sg.g.get();
  Value* e = body->add_value("e", {DType::kFloat32, Shape()});
  Value* b = body->add_value("b", {DType::kFloat32, Shape::from_dims({2})});
  Value* y = body->add_value("y", {DType::kFloat32, Shape()});
  body->add_node("Add", {e, b}, {y}, "add", "", 21);
  body->inputs = {e, b};
  body->outputs = {y};
  Value* out = sg.node("SequenceMap", {seq, bias}, "out", attrs_of({{"body", GraphPtr(body)}}));
  std::vector<Tensor> xs{random_tensor(DType::kFloat32, {2}, 1), random_tensor(DType::kFloat32, {3, 2}, 2)};
  Tensor bv = random_tensor(DType::kFloat32, {2}, 3);
  auto outs = sg.run({out}, {{"seq", TensorSequence{DType::kFloat32, xs}}, {"bias", bv}});
  ASSERT_TRUE(outs.ok()) << outs.status().message();
  const TensorSequence* s = as_sequence((*outs)[0]);
  ASSERT_EQ(s->tensors.size(), 2u);
  for (size_t k = 0; k < 2; ++k) {
    Tensor want = xs[k].clone();
    for (int64_t i = 0; i < want.numel(); ++i) want.data<float>()[i] += bv.data<float>()[i % 2];
    EXPECT_TRUE(tensors_close(s->tensors[k], want));
  }
}

TEST(SequenceOps, LoopCarriesASequence) {
  // for i in range(3): seq.insert(i * ones) -- the body inserts a tensor built from the iteration.
  SeqGraph sg;
  Value* m = sg.constant("M", Tensor::scalar<int64_t>(3));
  Value* init = sg.node("SequenceEmpty", {}, "init", attrs_of({{"dtype", int64_t{7}}}));
  auto body = std::make_shared<Graph>();
  body->parent = sg.g.get();
  Value* iter = body->add_value("iter", {DType::kInt64, Shape::scalar()});
  Value* cond = body->add_value("cond", {DType::kBool, Shape::scalar()});
  Value* s_in = body->add_value("s_in", seq_type(DType::kInt64));
  Value* cond_out = body->add_value("cond_out");
  Value* s_out = body->add_value("s_out");
  body->add_node("Identity", {cond}, {cond_out}, "id", "", 21);
  body->add_node("SequenceInsert", {s_in, iter}, {s_out}, "ins", "", 21);
  body->inputs = {iter, cond, s_in};
  body->outputs = {cond_out, s_out};
  Value* out = sg.g->add_value("out");
  Node* loop = sg.g->add_node("Loop", {m, nullptr, init}, {out}, "loop", "", 21);
  loop->attrs.set("body", GraphPtr(body));
  auto outs = sg.run({out}, {});
  ASSERT_TRUE(outs.ok()) << outs.status().message();
  const TensorSequence* s = as_sequence((*outs)[0]);
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(s->tensors.size(), 3u);
  for (int64_t i = 0; i < 3; ++i) EXPECT_EQ(*s->tensors[static_cast<size_t>(i)].data<int64_t>(), i);
}

TEST(SequenceOps, OptionalsHoldAnElementOrNothing) {
  for (bool present : {true, false}) {
    SeqGraph sg;
    Value* opt = sg.input("opt", TensorType{DType::kFloat32, Shape::from_dims({4}), ValueKind::kOptionalTensor});
    Value* has = sg.node("OptionalHasElement", {opt}, "has");
    Value* wrapped = sg.node("Optional", {sg.node("OptionalGetElement", {opt}, "get")}, "wrapped");
    Tensor x = random_tensor(DType::kFloat32, {4}, 8);
    std::map<std::string, RuntimeValue> feeds;
    if (present) feeds["opt"] = x;
    else feeds["opt"] = EmptyOptional{};
    auto outs = sg.run({has, wrapped}, feeds);
    if (!present) {
      // OptionalGetElement of an empty optional is an error naming the node.
      ASSERT_FALSE(outs.ok());
      EXPECT_NE(outs.status().message().find("OptionalGetElement_get"), std::string::npos) << outs.status().message();
      continue;
    }
    ASSERT_TRUE(outs.ok()) << outs.status().message();
    EXPECT_TRUE(*as_tensor((*outs)[0])->data<bool>());
    EXPECT_TRUE(tensors_close(*as_tensor((*outs)[1]), x));
    EXPECT_EQ(sg.g->outputs[1]->type.kind, ValueKind::kOptionalTensor);
  }
  SeqGraph sg;
  Value* opt = sg.input("opt", TensorType{DType::kFloat32, Shape(), ValueKind::kOptionalTensor});
  Value* has = sg.node("OptionalHasElement", {opt}, "has");
  auto outs = sg.run({has}, {});  // an optional input left out is empty
  ASSERT_TRUE(outs.ok()) << outs.status().message();
  EXPECT_FALSE(*as_tensor((*outs)[0])->data<bool>());
}

TEST(SequenceOps, ErrorsNameTheNode) {
  std::vector<Tensor> xs{random_tensor(DType::kFloat32, {2}, 1), random_tensor(DType::kFloat32, {3}, 2)};
  auto run_one = [&](const std::string& op, Attributes attrs) {
    SeqGraph sg;
    Value* seq = sg.input("seq", seq_type(DType::kFloat32));
    Value* out = sg.node(op, {seq}, "out", std::move(attrs));
    return sg.run({out}, {{"seq", TensorSequence{DType::kFloat32, xs}}});
  };
  {
    SeqGraph sg;
    Value* seq = sg.input("seq", seq_type(DType::kFloat32));
    Value* at = sg.node("SequenceAt", {seq, sg.constant("p", Tensor::scalar<int64_t>(2))}, "at");
    auto outs = sg.run({at}, {{"seq", TensorSequence{DType::kFloat32, xs}}});
    ASSERT_FALSE(outs.ok());
    EXPECT_NE(outs.status().message().find("SequenceAt_at"), std::string::npos) << outs.status().message();
    EXPECT_NE(outs.status().message().find("out of range"), std::string::npos) << outs.status().message();
  }
  {
    // Elements [2] and [3] differ along the only axis: concatenating is fine, stacking is not.
    auto cat = run_one("ConcatFromSequence", attrs_of({{"axis", int64_t{0}}}));
    ASSERT_TRUE(cat.ok()) << cat.status().message();
    EXPECT_EQ(as_tensor((*cat)[0])->dims(), (Dims{5}));
    auto stack = run_one("ConcatFromSequence", attrs_of({{"axis", int64_t{0}}, {"new_axis", int64_t{1}}}));
    ASSERT_FALSE(stack.ok());
    EXPECT_NE(stack.status().message().find("ConcatFromSequence_out"), std::string::npos);
    auto no_axis = run_one("ConcatFromSequence", {});
    ASSERT_FALSE(no_axis.ok());
    EXPECT_NE(no_axis.status().message().find("'axis' is required"), std::string::npos);
  }
  {
    // A tensor op given a sequence refuses it, and a tensor given for a sequence input is refused.
    auto relu = run_one("Relu", {});
    ASSERT_FALSE(relu.ok());
    EXPECT_EQ(relu.status().code(), StatusCode::kUnsupported);
    SeqGraph sg;
    Value* seq = sg.input("seq", seq_type(DType::kFloat32));
    Value* len = sg.node("SequenceLength", {seq}, "len");
    auto outs = sg.run({len}, {{"seq", xs[0]}});
    ASSERT_FALSE(outs.ok());
    EXPECT_NE(outs.status().message().find("input 'seq'"), std::string::npos) << outs.status().message();
  }
}

}  // namespace
}  // namespace kiln::test
