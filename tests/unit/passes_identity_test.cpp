// identity-elimination and cast-chain: no-op nodes go, graph outputs keep their names, outputs
// are unchanged.
#include "passes_test_util.hpp"

namespace kiln {
namespace {

using namespace passtest;

// x -> Identity -> Dropout -> Cast(same) -> Reshape(same) -> Transpose(0,1,2) -> Slice(all) ->
// Pad(0) -> Concat(one) -> Expand(same) -> Relu -> Identity -> y (a graph output).
G noop_chain() {
  G b;
  Value* x = b.input("x", {2, 3, 4});
  Value* v = b.op("Identity", {x}, "id1");
  Value* mask = b.g->add_value("mask");
  Value* drop = b.g->add_value("drop");
  b.g->add_node("Dropout", {v}, {drop, mask}, "dropout", "", 21);
  v = b.op("Cast", {drop}, "cast", attrs({{"to", int64_t{1}}}));
  v = b.op("Reshape", {v, b.ints("shape", {2, 3, 4})}, "reshape");
  v = b.op("Transpose", {v}, "transpose", attrs({{"perm", std::vector<int64_t>{0, 1, 2}}}));
  v = b.op("Slice", {v, b.ints("starts", {0, 0}), b.ints("ends", {100, 4}), b.ints("axes", {0, -1})}, "slice");
  v = b.op("Pad", {v, b.ints("pads", {0, 0, 0, 0, 0, 0})}, "pad");
  v = b.op("Concat", {v}, "concat", attrs({{"axis", int64_t{1}}}));
  v = b.op("Expand", {v, b.ints("eshape", {3, 4})}, "expand");
  v = b.op("Relu", {v}, "relu");
  b.g->outputs = {b.op("Identity", {v}, "y")};
  return b;
}

TEST(PassesIdentity, RemovesNoOpsAndKeepsTheOutputName) {
  GraphPtr g = check_before_after(noop_chain, with_dce(make_identity_elimination_pass));
  EXPECT_EQ(ops(*g), std::vector<std::string>{"Relu"});
  ASSERT_EQ(g->outputs.size(), 1u);
  EXPECT_EQ(g->outputs[0]->name, "y");
  EXPECT_EQ(g->outputs[0]->producer, g->nodes()[0].get());
  EXPECT_EQ(g->nodes()[0]->inputs[0]->name, "x");
}

// Nodes that change the value stay: a real Cast, Reshape, Transpose, Slice, Pad; and an Identity
// from a graph input to a graph output (removing it would lose the output's name).
TEST(PassesIdentity, KeepsNodesThatChangeTheValue) {
  auto make = [] {
    G b;
    Value* x = b.input("x", {2, 3, 4});
    Value* a = b.op("Cast", {x}, "cast", attrs({{"to", int64_t{11}}}));  // to float64
    Value* r = b.op("Reshape", {x, b.ints("shape", {6, 4})}, "reshape");
    Value* t = b.op("Transpose", {x}, "transpose", attrs({{"perm", std::vector<int64_t>{1, 0, 2}}}));
    Value* s = b.op("Slice", {x, b.ints("starts", {1}), b.ints("ends", {3}), b.ints("axes", {2})}, "slice");
    Value* p = b.op("Pad", {x, b.ints("pads", {0, 0, 1, 0, 0, 0})}, "pad");
    Value* sel = b.op("Slice", {x, b.ints("st", {-1}), b.ints("en", {-100}), b.ints("ax", {2}), b.ints("sp", {-1})},
                      "reverse_slice");
    b.g->outputs = {a, r, t, s, p, sel, b.op("Identity", {x}, "same")};
    return b;
  };
  GraphPtr g = check_before_after(make, with_dce(make_identity_elimination_pass));
  EXPECT_EQ(g->nodes().size(), 7u);
  EXPECT_EQ(count(*g, "Identity"), 1);
}

// A Dropout whose mask is used, or in training mode, stays.
TEST(PassesIdentity, KeepsDropoutWithUsedMask) {
  auto make = [] {
    G b;
    Value* x = b.input("x", {4});
    Value* y = b.g->add_value("y");
    Value* mask = b.g->add_value("mask");
    b.g->add_node("Dropout", {x}, {y, mask}, "dropout", "", 21);
    b.g->outputs = {b.op("Relu", {y}, "r"), mask};
    return b;
  };
  GraphPtr g = check_before_after(make, with_dce(make_identity_elimination_pass));
  EXPECT_EQ(count(*g, "Dropout"), 1);
}

// float32 -> float64 -> float32 goes; float64 -> float32 -> float64 (lossy) stays.
TEST(PassesCastChain, RemovesExactWideningRoundTrips) {
  auto make = [] {
    G b;
    Value* x = b.input("x", {3, 5});
    Value* d = b.input("d", {3, 5}, DType::kFloat64);
    Value* up = b.op("Cast", {x}, "up", attrs({{"to", int64_t{11}}}));
    Value* back = b.op("Cast", {up}, "back", attrs({{"to", int64_t{1}}}));
    Value* down = b.op("Cast", {d}, "down", attrs({{"to", int64_t{1}}}));
    Value* again = b.op("Cast", {down}, "again", attrs({{"to", int64_t{11}}}));
    // int8 widened to int32 then to float32: the same as int8 -> float32 directly.
    Value* i8 = b.input("i8", {4}, DType::kInt8);
    Value* wide = b.op("Cast", {i8}, "wide", attrs({{"to", int64_t{6}}}));
    Value* f = b.op("Cast", {wide}, "to_float", attrs({{"to", int64_t{1}}}));
    b.g->outputs = {b.op("Relu", {back}, "relu"), again, f};
    return b;
  };
  GraphPtr g = check_before_after(make, [](PassManager& pm) {
    pm.add(make_cast_chain_pass());
    pm.add(make_identity_elimination_pass());
    pm.add(make_dead_code_pass());
  }, 0.0);
  EXPECT_EQ(count(*g, "Cast"), 3);  // down, again, and int8 -> float32
  for (const auto& n : g->nodes()) {
    if (n->op_type == "Relu") {
      EXPECT_EQ(n->inputs[0]->name, "x");
    } else if (n->name == "to_float") {
      EXPECT_EQ(n->inputs[0]->name, "i8");
    } else if (n->name == "again") {
      EXPECT_EQ(n->inputs[0]->name, "down");
    }
  }
}

}  // namespace
}  // namespace kiln
