// Einsum against a brute-force evaluator over every assignment of the labels.
#include <map>

#include "op_test_util.hpp"

namespace kiln::test {
namespace {

// Evaluates an explicit, letters-only equation ("ij,jk->ik") in double by visiting every
// assignment of every label.
Tensor brute_einsum(const std::string& eq, const std::vector<Tensor>& ins, DType out_type) {
  const size_t arrow = eq.find("->");
  std::vector<std::string> terms(1);
  for (char c : eq.substr(0, arrow)) {
    if (c == ',') terms.emplace_back();
    else terms.back() += c;
  }
  const std::string out_term = eq.substr(arrow + 2);
  std::map<char, int64_t> size;
  for (size_t k = 0; k < terms.size(); ++k)
    for (size_t d = 0; d < terms[k].size(); ++d) size[terms[k][d]] = ins[k].dims()[d];
  std::vector<char> labels;
  for (auto& [c, s] : size) labels.push_back(c);
  Dims out_dims;
  for (char c : out_term) out_dims.push_back(size[c]);
  std::vector<double> out(static_cast<size_t>(dims_numel(out_dims)), 0.0);
  std::vector<std::vector<double>> vals;
  for (const auto& t : ins) vals.push_back(t.to_double_vector());
  std::map<char, int64_t> at;
  for (char c : labels) at[c] = 0;
  auto flat = [&](const std::string& term, const Dims& dims) {
    int64_t f = 0;
    for (size_t d = 0; d < term.size(); ++d) f = f * dims[d] + at[term[d]];
    return f;
  };
  int64_t total = 1;
  for (char c : labels) total *= size[c];
  for (int64_t n = 0; n < total; ++n) {
    int64_t rem = n;
    for (size_t l = labels.size(); l-- > 0;) {
      at[labels[l]] = rem % size[labels[l]];
      rem /= size[labels[l]];
    }
    double p = 1;
    for (size_t k = 0; k < ins.size(); ++k) p *= vals[k][static_cast<size_t>(flat(terms[k], ins[k].dims()))];
    out[static_cast<size_t>(flat(out_term, out_dims))] += p;
  }
  Tensor t(DType::kFloat64, out_dims);
  for (size_t i = 0; i < out.size(); ++i) t.data<double>()[i] = out[i];
  return t.cast(out_type);
}

Attributes eq_attr(const std::string& eq) {
  Attributes a;
  a.set("equation", eq);
  return a;
}

struct Case {
  std::string eq;        // what the op gets
  std::string explicit_eq;  // the same contraction written out for brute_einsum
  std::vector<Dims> shapes;
};

TEST(Einsum, MatchesBruteForce) {
  const std::vector<Case> cases = {
      {"ij,jk->ik", "ij,jk->ik", {{3, 4}, {4, 5}}},                      // matmul
      {"bij,bjk->bik", "bij,bjk->bik", {{2, 3, 4}, {2, 4, 5}}},          // batch matmul
      {"ij,jk", "ij,jk->ik", {{3, 4}, {4, 5}}},                          // implicit output
      {"ji", "ji->ij", {{3, 4}}},                                        // implicit transpose
      {"ij->ji", "ij->ji", {{3, 4}}},
      {"ii->i", "ii->i", {{4, 4}}},                                      // diagonal
      {"ii", "ii->", {{4, 4}}},                                          // trace
      {"bii->bi", "bii->bi", {{2, 3, 3}}},                               // batch diagonal
      {"ij->", "ij->", {{3, 4}}},                                        // sum
      {"i,i", "i,i->", {{5}, {5}}},                                      // inner product
      {"i,j->ij", "i,j->ij", {{3}, {4}}},                                // outer product
      {"ij,jk,kl->il", "ij,jk,kl->il", {{2, 3}, {3, 4}, {4, 2}}},       // three operands
      {"bhqd,bhkd->bhqk", "bhqd,bhkd->bhqk", {{1, 2, 3, 4}, {1, 2, 5, 4}}},
      {"iij,jk->ki", "iij,jk->ki", {{3, 3, 2}, {2, 4}}},                 // diagonal inside a product
      {"Ab,bC", "Ab,bC->AC", {{2, 3}, {3, 4}}},                          // upper case sorts first
      {" i j , j k -> i k ", "ij,jk->ik", {{2, 3}, {3, 2}}},             // spaces
      {"...ij,...jk->...ik", "xij,xjk->xik", {{2, 3, 4}, {2, 4, 5}}},     // ellipsis
      {"...ii->...i", "xyii->xyi", {{2, 3, 4, 4}}},
      {"i...->...", "ixy->xy", {{3, 2, 4}}},                             // ellipsis not leading
      {"...ij", "xyij->xyij", {{2, 1, 3, 4}}},                           // implicit with ellipsis
      {"...ij->ij", "xij->ij", {{2, 3, 4}}},                             // ellipsis summed away
  };
  for (const auto& c : cases) {
    std::vector<Tensor> ins;
    for (size_t k = 0; k < c.shapes.size(); ++k) ins.push_back(random_tensor(DType::kFloat32, c.shapes[k], 30 + k));
    auto out = run_op({.op_type = "Einsum", .inputs = ins, .attrs = eq_attr(c.eq)});
    ASSERT_TRUE(out.ok()) << c.eq << ": " << out.status().message();
    EXPECT_TRUE(tensors_close(out->at(0), brute_einsum(c.explicit_eq, ins, DType::kFloat32), 1e-5, 1e-5)) << c.eq;
  }
}

TEST(Einsum, EllipsisBroadcasts) {
  // [2,1,3,4] x [5,4,6] -> [2,5,3,6]: the ellipsis dims (2,1) and (5) broadcast to (2,5).
  Tensor a = random_tensor(DType::kFloat32, {2, 1, 3, 4}, 1);
  Tensor b = random_tensor(DType::kFloat32, {5, 4, 6}, 2);
  auto out = run_op({.op_type = "Einsum", .inputs = {a, b}, .attrs = eq_attr("...ij,...jk->...ik")});
  ASSERT_TRUE(out.ok()) << out.status().message();
  const Tensor& y = out->at(0);
  ASSERT_EQ(y.dims(), (Dims{2, 5, 3, 6}));
  for (int64_t p = 0; p < 2; ++p)
    for (int64_t q = 0; q < 5; ++q)
      for (int64_t i = 0; i < 3; ++i)
        for (int64_t k = 0; k < 6; ++k) {
          double s = 0;
          for (int64_t j = 0; j < 4; ++j) s += a.data<float>()[(p * 3 + i) * 4 + j] * b.data<float>()[(q * 4 + j) * 6 + k];
          EXPECT_NEAR(y.data<float>()[((p * 5 + q) * 3 + i) * 6 + k], s, 1e-5);
        }
}

TEST(Einsum, DtypesAndEmpty) {
  Tensor a = random_tensor(DType::kInt32, {3, 4}, 1, -5, 5);
  Tensor b = random_tensor(DType::kInt32, {4, 2}, 2, -5, 5);
  auto out = run_op({.op_type = "Einsum", .inputs = {a, b}, .attrs = eq_attr("ij,jk->ik")});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(out->at(0).dtype(), DType::kInt32);
  EXPECT_EQ(out->at(0).to_double_vector(), brute_einsum("ij,jk->ik", {a, b}, DType::kInt32).to_double_vector());

  // float16 sums of many terms accumulate in float.
  Tensor h(DType::kFloat16, {3000});
  for (int64_t i = 0; i < h.numel(); ++i) h.data<Half>()[i] = Half(1.0f);
  auto hs = run_op({.op_type = "Einsum", .inputs = {h, h}, .attrs = eq_attr("i,i->")});
  ASSERT_TRUE(hs.ok()) << hs.status().message();
  EXPECT_EQ(static_cast<float>(hs->at(0).data<Half>()[0]), 3000.0f);

  Tensor d = random_tensor(DType::kFloat64, {2, 3}, 3);
  auto dd = run_op({.op_type = "Einsum", .inputs = {d}, .attrs = eq_attr("ij->j")});
  ASSERT_TRUE(dd.ok());
  EXPECT_TRUE(tensors_close(dd->at(0), brute_einsum("ij->j", {d}, DType::kFloat64), 1e-12, 1e-12));

  // A contraction over an empty dim is all zeros.
  auto e = run_op({.op_type = "Einsum", .inputs = {Tensor(DType::kFloat32, {2, 0}), Tensor(DType::kFloat32, {0, 3})},
                   .attrs = eq_attr("ij,jk->ik")});
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_EQ(e->at(0).dims(), (Dims{2, 3}));
  for (double v : e->at(0).to_double_vector()) EXPECT_EQ(v, 0.0);
}

TEST(Einsum, ShapeInference) {
  auto g = std::make_shared<Graph>();
  Value* a = g->add_value("a", {DType::kFloat32, Shape({Dim::symbolic("b"), Dim(3), Dim::symbolic("k")})});
  Value* b = g->add_value("b", {DType::kFloat32, Shape({Dim::symbolic("b"), Dim(4), Dim(5)})});
  g->inputs = {a, b};
  Value* y = g->add_value("y");
  g->add_node("Einsum", {a, b}, {y}, "e")->attrs = eq_attr("bik,bkj->bij");
  g->outputs = {y};
  ASSERT_TRUE(infer_shapes(*g).ok());
  EXPECT_EQ(y->type.to_string(), "float32[b,3,5]");
}

TEST(Einsum, ErrorsNameTheNode) {
  Tensor a = random_tensor(DType::kFloat32, {3, 4}, 1);
  Tensor b = random_tensor(DType::kFloat32, {5, 2}, 2);
  const std::vector<std::pair<std::string, std::vector<Tensor>>> bad = {
      {"ij,jk->ik", {a, b}},   // j: 4 vs 5
      {"ij->ik", {a}},          // k not in any input
      {"ij->ii", {a}},          // repeated output label
      {"ijk->i", {a}},          // term longer than the rank
      {"ij,jk->ik", {a}},       // two terms, one input
      {"i1->i", {a}},           // not a letter
      {"ii->i", {a}},           // diagonal of a non-square
      {"...i...->i", {a}},      // two ellipses
  };
  for (const auto& [eq, ins] : bad) {
    auto out = run_op({.op_type = "Einsum", .inputs = ins, .attrs = eq_attr(eq)});
    ASSERT_FALSE(out.ok()) << eq;
    EXPECT_NE(out.status().message().find("Einsum_node"), std::string::npos) << eq << ": " << out.status().message();
  }
  auto mixed = run_op({.op_type = "Einsum", .inputs = {a, random_tensor(DType::kFloat64, {4, 2}, 3)},
                       .attrs = eq_attr("ij,jk->ik")});
  ASSERT_FALSE(mixed.ok());
  EXPECT_NE(mixed.status().message().find("dtype"), std::string::npos);
}

}  // namespace
}  // namespace kiln::test
