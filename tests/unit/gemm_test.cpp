#include <gtest/gtest.h>

#include "nn_reference.hpp"
#include "op_test_util.hpp"

namespace kiln::test {
namespace {

// Y = alpha * op(A) op(B) + beta * C, C broadcast to (M, N): direct loops in double.
std::vector<double> ref_gemm(const Tensor& a, const Tensor& b, const Tensor* c, bool ta, bool tb, double alpha,
                             double beta, int64_t m, int64_t n, int64_t k) {
  auto av = a.to_double_vector(), bv = b.to_double_vector();
  std::vector<double> cv = c ? c->to_double_vector() : std::vector<double>{};
  std::vector<double> y(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < k; ++p)
        acc += av[static_cast<size_t>(ta ? p * m + i : i * k + p)] * bv[static_cast<size_t>(tb ? j * k + p : p * n + j)];
      double cval = 0;
      if (c) {
        const Dims& cd = c->dims();
        int64_t rows = cd.size() >= 2 ? cd[cd.size() - 2] : 1, cols = cd.empty() ? 1 : cd.back();
        cval = cv[static_cast<size_t>((rows == 1 ? 0 : i) * cols + (cols == 1 ? 0 : j))];
      }
      y[static_cast<size_t>(i * n + j)] = alpha * acc + beta * cval;
    }
  return y;
}

void check_gemm(DType dtype, bool ta, bool tb, float alpha, float beta, const Dims* c_dims, double tol) {
  const int64_t m = 5, n = 7, k = 4;
  SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " transA " << ta << " transB " << tb << " C "
                                    << (c_dims ? dims_to_string(*c_dims) : "none"));
  Tensor a = random_tensor(dtype, ta ? Dims{k, m} : Dims{m, k}, 11, -3, 3);
  Tensor b = random_tensor(dtype, tb ? Dims{n, k} : Dims{k, n}, 12, -3, 3);
  Tensor c = c_dims ? random_tensor(dtype, *c_dims, 13, -3, 3) : Tensor();
  Attributes attrs;
  attrs.set("transA", int64_t{ta});
  attrs.set("transB", int64_t{tb});
  attrs.set("alpha", alpha);
  attrs.set("beta", beta);
  std::vector<Tensor> ins{a, b};
  if (c_dims) ins.push_back(c);
  auto out = run_op({.op_type = "Gemm", .inputs = ins, .attrs = attrs});
  ASSERT_TRUE(out.ok()) << out.status().message();
  auto ref = ref_gemm(a, b, c_dims ? &c : nullptr, ta, tb, alpha, beta, m, n, k);
  ASSERT_EQ(out->at(0).dtype(), dtype);
  EXPECT_LE(rel_l2(out->at(0), to_tensor(DType::kFloat64, {m, n}, ref)), tol);
}

TEST(Gemm, TransposesAlphaBetaAndBiasBroadcasts) {
  std::vector<Dims> c_shapes{{}, {1}, {7}, {5, 1}, {1, 7}, {5, 7}};
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      check_gemm(DType::kFloat32, ta, tb, 0.5f, 2.0f, &c_shapes[5], 1e-6);
      check_gemm(DType::kFloat32, ta, tb, 1.0f, 1.0f, nullptr, 1e-6);
    }
  for (const Dims& c : c_shapes) check_gemm(DType::kFloat32, false, true, 1.5f, -0.5f, &c, 1e-6);
  check_gemm(DType::kFloat32, false, false, 1.0f, 0.0f, &c_shapes[5], 1e-6);  // beta 0 ignores C
}

TEST(Gemm, OtherTypes) {
  Dims c{1, 7};
  check_gemm(DType::kFloat64, true, false, 0.25f, 3.0f, &c, 1e-14);
  check_gemm(DType::kFloat16, false, true, 1.0f, 1.0f, &c, 2e-3);
  check_gemm(DType::kBFloat16, false, false, 1.0f, 1.0f, &c, 1e-2);
  check_gemm(DType::kInt32, true, true, 2.0f, 3.0f, &c, 0);
  check_gemm(DType::kInt64, false, false, 1.0f, 1.0f, &c, 0);
}

TEST(Gemm, ErrorsNameTheNode) {
  auto bad_k = run_op({.op_type = "Gemm", .inputs = {random_tensor(DType::kFloat32, {3, 4}), random_tensor(DType::kFloat32, {5, 6})}});
  ASSERT_FALSE(bad_k.ok());
  EXPECT_NE(bad_k.status().message().find("Gemm_node"), std::string::npos);
  EXPECT_NE(bad_k.status().message().find("[3,4]"), std::string::npos) << bad_k.status().message();
  auto bad_c = run_op({.op_type = "Gemm",
                       .inputs = {random_tensor(DType::kFloat32, {3, 4}), random_tensor(DType::kFloat32, {4, 6}),
                                  random_tensor(DType::kFloat32, {2, 6})}});
  ASSERT_FALSE(bad_c.ok());
  EXPECT_NE(bad_c.status().message().find("C [2,6]"), std::string::npos) << bad_c.status().message();
  auto bad_rank = run_op({.op_type = "Gemm", .inputs = {random_tensor(DType::kFloat32, {2, 3, 4}), random_tensor(DType::kFloat32, {4, 6})}});
  ASSERT_FALSE(bad_rank.ok());
  auto bad_type = run_op({.op_type = "Gemm", .inputs = {random_tensor(DType::kInt8, {2, 4}), random_tensor(DType::kInt8, {4, 6})}});
  ASSERT_FALSE(bad_type.ok());
  EXPECT_EQ(bad_type.status().code(), StatusCode::kUnsupported);
}

// Batched matmul with numpy broadcasting and the 1-D rules, by direct loops.
Tensor ref_matmul(const Tensor& a, const Tensor& b, const Dims& out_dims) {
  Dims ad = a.dims(), bd = b.dims();
  const bool a_vec = ad.size() == 1, b_vec = bd.size() == 1;
  if (a_vec) ad.insert(ad.begin(), 1);
  if (b_vec) bd.push_back(1);
  const int64_t m = ad[ad.size() - 2], k = ad.back(), n = bd.back();
  size_t br = std::max(ad.size(), bd.size()) - 2;
  Dims abatch(ad.begin(), ad.end() - 2), bbatch(bd.begin(), bd.end() - 2);
  abatch.insert(abatch.begin(), br - abatch.size(), 1);
  bbatch.insert(bbatch.begin(), br - bbatch.size(), 1);
  Dims batch(br);
  for (size_t i = 0; i < br; ++i) batch[i] = std::max(abatch[i], bbatch[i]);
  auto av = a.to_double_vector(), bv = b.to_double_vector();
  std::vector<double> y;
  for_each_index(batch, [&](const Dims& bi) {
    Dims ai(br), bj(br);
    for (size_t i = 0; i < br; ++i) {
      ai[i] = abatch[i] == 1 ? 0 : bi[i];
      bj[i] = bbatch[i] == 1 ? 0 : bi[i];
    }
    int64_t ao = offset_of(abatch, ai) * m * k, bo = offset_of(bbatch, bj) * k * n;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0;
        for (int64_t p = 0; p < k; ++p) acc += av[static_cast<size_t>(ao + i * k + p)] * bv[static_cast<size_t>(bo + p * n + j)];
        y.push_back(acc);
      }
  });
  return to_tensor(DType::kFloat64, out_dims, y);
}

void check_matmul(const Dims& a_dims, const Dims& b_dims, const Dims& want, DType dtype = DType::kFloat32, double tol = 1e-6) {
  SCOPED_TRACE(::testing::Message() << dims_to_string(a_dims) << " x " << dims_to_string(b_dims) << " " << dtype_name(dtype));
  const double lo = is_signed_integer(dtype) || is_floating(dtype) ? -3 : 0;  // unsigned: no wrap-around
  Tensor a = random_tensor(dtype, a_dims, 21, lo, 3), b = random_tensor(dtype, b_dims, 22, lo, 3);
  auto out = run_op({.op_type = "MatMul", .inputs = {a, b}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_EQ(out->at(0).dims(), want);
  ASSERT_EQ(out->at(0).dtype(), dtype);
  EXPECT_LE(rel_l2(out->at(0), ref_matmul(a, b, want)), tol);
}

TEST(MatMul, ShapesAndBroadcasting) {
  check_matmul({3, 4}, {4, 5}, {3, 5});
  check_matmul({4}, {4, 5}, {5});
  check_matmul({3, 4}, {4}, {3});
  check_matmul({4}, {4}, {});
  check_matmul({2, 3, 3, 4}, {4, 6}, {2, 3, 3, 6});  // B shared: one folded GEMM
  check_matmul({3, 4}, {2, 4, 6}, {2, 3, 6});
  check_matmul({2, 1, 3, 4}, {5, 4, 2}, {2, 5, 3, 2});
  check_matmul({1, 3, 4}, {3, 4, 2}, {3, 3, 2});
  check_matmul({2, 3, 4}, {4}, {2, 3});
  check_matmul({4}, {2, 4, 3}, {2, 3});
  check_matmul({2, 0, 4}, {4, 3}, {2, 0, 3});
  check_matmul({3, 0}, {0, 2}, {3, 2});  // K = 0: zeros
}

TEST(MatMul, Types) {
  check_matmul({2, 3, 4}, {2, 4, 5}, {2, 3, 5}, DType::kFloat64, 1e-14);
  check_matmul({2, 3, 4}, {4, 5}, {2, 3, 5}, DType::kFloat16, 2e-3);
  check_matmul({3, 4}, {4, 5}, {3, 5}, DType::kBFloat16, 1e-2);
  check_matmul({2, 3, 4}, {1, 4, 5}, {2, 3, 5}, DType::kInt64, 0);
  check_matmul({3, 4}, {4, 5}, {3, 5}, DType::kUInt32, 0);
}

TEST(MatMul, ErrorsNameTheNodeAndShapes) {
  auto r = run_op({.op_type = "MatMul", .inputs = {random_tensor(DType::kFloat32, {2, 3}), random_tensor(DType::kFloat32, {4, 5})}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("MatMul_node"), std::string::npos);
  EXPECT_NE(r.status().message().find("[2,3]"), std::string::npos);
  auto rb = run_op({.op_type = "MatMul", .inputs = {random_tensor(DType::kFloat32, {2, 2, 3}), random_tensor(DType::kFloat32, {3, 3, 5})}});
  ASSERT_FALSE(rb.ok());
  EXPECT_NE(rb.status().message().find("batch"), std::string::npos) << rb.status().message();
  auto rt = run_op({.op_type = "MatMul", .inputs = {random_tensor(DType::kFloat32, {2, 3}), random_tensor(DType::kFloat64, {3, 5})}});
  ASSERT_FALSE(rt.ok());
}

TEST(MatMul, InfersSymbolicShapes) {
  Graph g;
  Value* x = g.add_value("x", {DType::kFloat32, Shape({Dim::symbolic("b"), Dim::symbolic("s"), Dim(64)})});
  Value* w = g.add_constant("w", random_tensor(DType::kFloat32, {64, 16}));
  Value* y = g.add_value("y");
  g.inputs = {x};
  g.add_node("MatMul", {x, w}, {y}, "mm", "", 13);
  g.outputs = {y};
  ASSERT_TRUE(infer_shapes(g).ok());
  EXPECT_EQ(y->type.to_string(), "float32[b,s,16]");
}

}  // namespace
}  // namespace kiln::test
