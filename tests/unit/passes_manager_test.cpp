// The pass manager and pipeline: fixed point, disabling, IR dumps, per-pass log, pass names,
// output selection and random-op folding.
#include "passes_test_util.hpp"

namespace kiln {
namespace {

using namespace passtest;

// x -> Identity -> Relu -> a (output); Identity(const) -> c (output); RandomUniform -> r (output).
G small() {
  G b;
  Value* x = b.input("x", {2, 3});
  Value* a = b.op("Relu", {b.op("Identity", {x}, "id")}, "a");
  Value* c = b.op("Neg", {b.op("Identity", {b.random_const("k", {3})}, "kid")}, "c");
  Value* r = b.op("RandomUniform", {}, "r", attrs({{"shape", std::vector<int64_t>{2}}, {"dtype", int64_t{1}}}));
  b.g->outputs = {a, c, r};
  return b;
}

TEST(PassManager, RunsTheCleanupPipelineToAFixedPoint) {
  G b = small();
  ASSERT_TRUE(infer_shapes(*b.g).ok());
  std::vector<std::string> log;
  PassManagerOptions o;
  o.log = [&](std::string_view s) { log.emplace_back(s); };
  PassManager pm(o);
  add_cleanup_passes(pm, /*fold_random=*/false);
  ASSERT_TRUE(pm.run(*b.g).ok());
  EXPECT_EQ(count(*b.g, "Relu"), 1);
  EXPECT_EQ(count(*b.g, "RandomUniform"), 1);
  EXPECT_EQ(b.g->nodes().size(), 2u);
  EXPECT_TRUE(b.g->outputs[1]->is_constant());
  // One summary line per pass, with its modified count.
  ASSERT_EQ(log.size(), 9u);
  bool found = false;
  for (const auto& l : log) found |= l.find("identity-elimination") != std::string::npos && l.find("modified 1") != std::string::npos;
  EXPECT_TRUE(found) << log[2];
}

TEST(PassManager, FoldsRandomOpsOnlyWhenAsked) {
  G b = small();
  ASSERT_TRUE(infer_shapes(*b.g).ok());
  PassManager pm;
  add_cleanup_passes(pm, /*fold_random=*/true);
  ASSERT_TRUE(pm.run(*b.g).ok());
  EXPECT_EQ(ops(*b.g), std::vector<std::string>{"Relu"});
  EXPECT_TRUE(b.g->outputs[2]->is_constant());
}

TEST(PassManager, DisablesPassesAndDumpsTheIR) {
  G b = small();
  ASSERT_TRUE(infer_shapes(*b.g).ok());
  std::string dumps;
  PassManagerOptions o;
  o.disabled = {"identity-elimination", "constant-folding"};
  o.dump_after = {"dead-code"};
  o.dump = [&](std::string_view s) { dumps += std::string(s) + "\n"; };
  PassManager pm(o);
  add_cleanup_passes(pm, false);
  ASSERT_TRUE(pm.run(*b.g).ok());
  EXPECT_EQ(count(*b.g, "Identity"), 2);
  EXPECT_NE(dumps.find("--- IR after dead-code (round 1, unchanged) ---"), std::string::npos) << dumps;
  EXPECT_NE(dumps.find("a = Relu(id)  # a  float32[2,3]"), std::string::npos) << dumps;
  EXPECT_EQ(dumps.find("IR after identity-elimination"), std::string::npos);
}

TEST(PassManager, PassNamesAreChecked) {
  EXPECT_TRUE(check_pass_names({"dead-code", "gelu-fusion"}, "--disable-pass").ok());
  Status st = check_pass_names({"dead-cod"}, "--disable-pass");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("unknown pass 'dead-cod'"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("layernorm-fusion"), std::string::npos) << st.message();
  EXPECT_FALSE(check_pass_names({"all"}, "--disable-pass").ok());
  EXPECT_TRUE(check_pass_names({"all"}, "--dump-ir-after", true).ok());
  auto known = known_passes();
  EXPECT_GE(known.size(), 10u);
  for (const PassInfo& p : known) EXPECT_FALSE(p.description.empty()) << p.name;
}

TEST(PassManager, SelectOutputsKeepsTheChosenOnes) {
  G b = small();
  ASSERT_TRUE(select_outputs(*b.g, {"c", "a"}).ok());
  ASSERT_EQ(b.g->outputs.size(), 2u);
  EXPECT_EQ(b.g->outputs[0]->name, "c");
  ASSERT_TRUE(infer_shapes(*b.g).ok());
  ASSERT_TRUE(make_dead_code_pass()->run(*b.g).ok());
  EXPECT_EQ(count(*b.g, "RandomUniform"), 0);
  Status st = select_outputs(*b.g, {"nope"});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("'nope'"), std::string::npos);
  EXPECT_NE(st.message().find("'a'"), std::string::npos) << st.message();
}

// dead-code drops trailing outputs nothing reads (not Split's: their count is the piece count).
TEST(PassesDeadCode, TrimsUnusedOptionalOutputs) {
  auto make = [] {
    G b;
    Value* x = b.input("x", {2, 3, 4, 4});
    Value* y = b.g->add_value("y");
    Value* mean = b.g->add_value("mean");
    Value* inv = b.g->add_value("inv");
    b.g->add_node("LayerNormalization", {x, b.random_const("s", {4})}, {y, mean, inv}, "ln", "", 21)
        ->attrs.set("axis", int64_t{-1});
    Value* p = b.g->add_value("p");
    Value* idx = b.g->add_value("idx");
    b.g->add_node("MaxPool", {y}, {p, idx}, "pool", "", 21)->attrs.set("kernel_shape", std::vector<int64_t>{2, 2});
    Value* s0 = b.g->add_value("s0");
    Value* s1 = b.g->add_value("s1");
    b.g->add_node("Split", {p}, {s0, s1}, "split", "", 21)->attrs.set("axis", int64_t{1});
    b.g->outputs = {s0};
    return b;
  };
  GraphPtr g = check_before_after(make, [](PassManager& pm) { pm.add(make_dead_code_pass()); }, 0.0);
  for (const auto& n : g->nodes()) EXPECT_EQ(n->outputs.size(), n->op_type == "Split" ? 2u : 1u) << n->op_type;
  EXPECT_EQ(g->find_value("idx"), nullptr);
}

}  // namespace
}  // namespace kiln
