// Col2Im against a direct scatter-add over blocks (2-D and 3-D, strides/dilations/pads), its
// adjointness to im2col, dtypes, inference and errors.
#include "op_test_util.hpp"

namespace kiln::test {
namespace {

struct Geometry {
  Dims image, block, strides, dilations, pads;
};

Attributes col2im_attrs(const Geometry& g) {
  Attributes a;
  if (!g.strides.empty()) a.set("strides", g.strides);
  if (!g.dilations.empty()) a.set("dilations", g.dilations);
  if (!g.pads.empty()) a.set("pads", g.pads);
  return a;
}

// Number of block positions per dim.
Dims block_counts(const Geometry& g) {
  Dims out;
  const size_t nd = g.image.size();
  for (size_t i = 0; i < nd; ++i) {
    const int64_t s = g.strides.empty() ? 1 : g.strides[i], d = g.dilations.empty() ? 1 : g.dilations[i];
    const int64_t pb = g.pads.empty() ? 0 : g.pads[i], pe = g.pads.empty() ? 0 : g.pads[nd + i];
    out.push_back((g.image[i] + pb + pe - d * (g.block[i] - 1) - 1) / s + 1);
  }
  return out;
}

// Unravels a row-major index.
Dims unravel(int64_t idx, const Dims& dims) {
  Dims out(dims.size());
  for (size_t i = dims.size(); i-- > 0;) {
    out[i] = idx % dims[i];
    idx /= dims[i];
  }
  return out;
}

// image[n, c, p] = sum over (block offset k, block position l) whose pixel is p of x[n, c*K + k, l].
std::vector<double> naive_col2im(const Tensor& x, const Geometry& g, int64_t channels) {
  const size_t nd = g.image.size();
  const Dims counts = block_counts(g);
  int64_t k_size = 1, l_size = 1, img_size = 1;
  for (size_t i = 0; i < nd; ++i) {
    k_size *= g.block[i];
    l_size *= counts[i];
    img_size *= g.image[i];
  }
  auto v = x.to_double_vector();
  const int64_t batch = x.dim(0);
  std::vector<double> out(static_cast<size_t>(batch * channels * img_size), 0.0);
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t k = 0; k < k_size; ++k)
        for (int64_t l = 0; l < l_size; ++l) {
          const Dims kk = unravel(k, g.block), ll = unravel(l, counts);
          int64_t pos = 0;
          bool inside = true;
          for (size_t i = 0; i < nd; ++i) {
            const int64_t s = g.strides.empty() ? 1 : g.strides[i], d = g.dilations.empty() ? 1 : g.dilations[i];
            const int64_t p = ll[i] * s - (g.pads.empty() ? 0 : g.pads[i]) + kk[i] * d;
            inside = inside && p >= 0 && p < g.image[i];
            pos = pos * g.image[i] + p;
          }
          if (inside)
            out[static_cast<size_t>((n * channels + c) * img_size + pos)] +=
                v[static_cast<size_t>(((n * channels + c) * k_size + k) * l_size + l)];
        }
  return out;
}

TEST(Col2Im, MatchesTheDirectScatterAdd) {
  const Geometry cases[] = {
      {{5, 5}, {2, 2}, {}, {}, {}},
      {{6, 7}, {3, 2}, {2, 1}, {1, 2}, {1, 0, 2, 1}},
      {{10, 20}, {9, 18}, {}, {}, {}},  // the spec's example: 2 x 3 blocks
      {{4, 5, 6}, {2, 3, 2}, {1, 2, 2}, {2, 1, 1}, {0, 1, 1, 1, 0, 1}},
  };
  for (const Geometry& g : cases) {
    const Dims counts = block_counts(g);
    int64_t k_size = 1, l_size = 1;
    for (size_t i = 0; i < g.image.size(); ++i) {
      k_size *= g.block[i];
      l_size *= counts[i];
    }
    const int64_t batch = 2, channels = 3;
    Tensor x = random_tensor(DType::kFloat32, {batch, channels * k_size, l_size}, static_cast<uint32_t>(l_size));
    auto out = run_op({.op_type = "Col2Im",
                       .inputs = {x, Tensor::from_vector<int64_t>({static_cast<int64_t>(g.image.size())}, g.image),
                                  Tensor::from_vector<int64_t>({static_cast<int64_t>(g.block.size())}, g.block)},
                       .attrs = col2im_attrs(g)});
    ASSERT_TRUE(out.ok()) << out.status().message();
    Dims want_dims = {batch, channels};
    want_dims.insert(want_dims.end(), g.image.begin(), g.image.end());
    ASSERT_EQ(out->at(0).dims(), want_dims);
    auto want = naive_col2im(x, g, channels);
    auto got = out->at(0).to_double_vector();
    for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5) << "image " << dims_to_string(g.image) << " at " << i;
  }
}

TEST(Col2Im, IsTheAdjointOfIm2Col) {
  // <col2im(c), x> == <c, im2col(x)> where im2col gathers the same blocks, written out here.
  const Geometry g{{7, 6}, {3, 3}, {2, 1}, {1, 2}, {1, 1, 1, 0}};
  const Dims counts = block_counts(g);
  const int64_t channels = 2, k_size = 9, l_size = counts[0] * counts[1];
  Tensor c = random_tensor(DType::kFloat64, {1, channels * k_size, l_size}, 3);
  Tensor x = random_tensor(DType::kFloat64, {1, channels, 7, 6}, 4);
  auto out = run_op({.op_type = "Col2Im", .inputs = {c, Tensor::from_vector<int64_t>({2}, g.image), Tensor::from_vector<int64_t>({2}, g.block)},
                     .attrs = col2im_attrs(g)});
  ASSERT_TRUE(out.ok()) << out.status().message();
  double lhs = 0, rhs = 0;
  for (int64_t i = 0; i < x.numel(); ++i) lhs += out->at(0).data<double>()[i] * x.data<double>()[i];
  for (int64_t ch = 0; ch < channels; ++ch)
    for (int64_t k = 0; k < k_size; ++k)
      for (int64_t l = 0; l < l_size; ++l) {
        const int64_t h = (l / counts[1]) * 2 - 1 + (k / 3) * 1, w = (l % counts[1]) * 1 - 1 + (k % 3) * 2;
        if (h < 0 || h >= 7 || w < 0 || w >= 6) continue;
        rhs += c.data<double>()[(ch * k_size + k) * l_size + l] * x.data<double>()[(ch * 7 + h) * 6 + w];
      }
  EXPECT_NEAR(lhs, rhs, 1e-9);
}

TEST(Col2Im, IntegerAndHalfTypes) {
  const Geometry g{{4, 4}, {2, 2}, {1, 1}, {1, 1}, {}};
  Tensor x = random_tensor(DType::kInt32, {1, 4, 9}, 5, -50, 50);
  Tensor image = Tensor::from_vector<int64_t>({2}, g.image), block = Tensor::from_vector<int64_t>({2}, g.block);
  auto out = run_op({.op_type = "Col2Im", .inputs = {x, image, block}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  auto want = naive_col2im(x, g, 1);
  std::vector<int32_t> wi(want.begin(), want.end());
  EXPECT_TRUE(tensors_close(out->at(0), Tensor::from_vector<int32_t>({1, 1, 4, 4}, wi)));
  Tensor xf = random_tensor(DType::kFloat32, {1, 4, 9}, 6);
  auto h = run_op({.op_type = "Col2Im", .inputs = {xf.cast(DType::kFloat16), image, block}});
  ASSERT_TRUE(h.ok()) << h.status().message();
  auto wf = naive_col2im(xf, g, 1);
  EXPECT_TRUE(tensors_close(h->at(0).cast(DType::kFloat32), Tensor::from_vector<float>({1, 1, 4, 4}, std::vector<float>(wf.begin(), wf.end())), 5e-3, 5e-3));
}

TEST(Col2Im, InfersShapesWithSymbolicBatch) {
  Graph g;
  Value* x = g.add_value("x", {DType::kFloat32, Shape({Dim::symbolic("n"), Dim(12), Dim(12)})});
  Value* y = g.add_value("y");
  g.add_node("Col2Im", {x, g.add_constant("image", Tensor::from_vector<int64_t>({2}, {4, 5})),
                        g.add_constant("block", Tensor::from_vector<int64_t>({2}, {2, 2}))},
             {y}, "c2i", "", 18);
  Value* shape = g.add_value("shape", {DType::kInt64, Shape({Dim(3)})});  // unknown values
  Value* z = g.add_value("z");
  g.add_node("Col2Im", {x, shape, g.add_constant("block3", Tensor::from_vector<int64_t>({3}, {1, 2, 2}))}, {z}, "c2i3", "", 18);
  g.inputs = {x, shape};
  g.outputs = {y, z};
  ASSERT_TRUE(infer_shapes(g).ok());
  EXPECT_EQ(y->type.to_string(), "float32[n,3,4,5]");
  EXPECT_EQ(z->type.to_string(), "float32[n,3,?,?,?]");
}

TEST(Col2Im, ErrorsNameTheNode) {
  Tensor image = Tensor::from_vector<int64_t>({2}, {4, 4}), block = Tensor::from_vector<int64_t>({2}, {2, 2});
  struct Case {
    std::vector<Tensor> inputs;
    Attributes attrs;
    const char* text;
  } cases[] = {
      {{random_tensor(DType::kFloat32, {1, 4, 8}, 1), image, block}, {}, "number of blocks, 9"},
      {{random_tensor(DType::kFloat32, {1, 6, 9}, 1), image, block}, {}, "not a multiple of prod(block_shape) = 4"},
      {{random_tensor(DType::kFloat32, {1, 4, 9}, 1), Tensor::from_vector<int64_t>({3}, {4, 4, 4}), block}, {}, "differ in length"},
      {{random_tensor(DType::kFloat32, {1, 4, 9}, 1), image, Tensor::from_vector<int64_t>({2}, {0, 2})}, {}, "must be positive"},
      {{random_tensor(DType::kFloat32, {1, 4, 9}, 1), image, block}, {}, ""},
  };
  cases[4].attrs.set("strides", Dims{1, 1, 1});
  cases[4].text = "strides has 3 values";
  for (const Case& c : cases) {
    auto out = run_op({.op_type = "Col2Im", .inputs = c.inputs, .attrs = c.attrs});
    ASSERT_FALSE(out.ok()) << c.text;
    EXPECT_NE(out.status().message().find("Col2Im_node"), std::string::npos) << out.status().message();
    EXPECT_NE(out.status().message().find(c.text), std::string::npos) << out.status().message();
  }
}

}  // namespace
}  // namespace kiln::test
