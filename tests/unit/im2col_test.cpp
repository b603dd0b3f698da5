// The im2col / col2im helpers directly (Conv and ConvTranspose test them through the ops).
#include <gtest/gtest.h>

#include "backends/cpu/im2col.hpp"
#include "nn_reference.hpp"
#include "op_test_util.hpp"

namespace kiln::test {
namespace {

Window make_window(Dims in, Dims kernel, Dims strides, Dims dilations, Dims pb, Dims pe) {
  Window w{.kernel = kernel, .strides = strides, .dilations = dilations, .pads_begin = pb, .pads_end = pe, .in = in};
  for (size_t i = 0; i < in.size(); ++i)
    w.out.push_back((in[i] + pb[i] + pe[i] - (kernel[i] - 1) * dilations[i] - 1) / strides[i] + 1);
  return w;
}

// Padding reads as the given value (a quantized input's zero point), in any element type.
TEST(Im2Col, GathersWindowsWithPadValue) {
  const Dims in{3, 4};
  Window w = make_window(in, {2, 3}, {2, 1}, {1, 2}, {1, 2}, {0, 1});
  std::vector<uint8_t> image(2 * 12);
  for (size_t i = 0; i < image.size(); ++i) image[i] = static_cast<uint8_t>(i + 1);
  const int64_t out_size = w.out[0] * w.out[1], ksize = 6;
  std::vector<uint8_t> col(static_cast<size_t>(2 * ksize * out_size));
  cpu::im2col(image.data(), 2, w, col.data(), uint8_t{7});
  for (int64_t c = 0; c < 2; ++c)
    for_each_index(w.kernel, [&](const Dims& k) {
      for_each_index(w.out, [&](const Dims& o) {
        int64_t r = o[0] * w.strides[0] + k[0] * w.dilations[0] - w.pads_begin[0];
        int64_t s = o[1] * w.strides[1] + k[1] * w.dilations[1] - w.pads_begin[1];
        uint8_t want = (r >= 0 && r < in[0] && s >= 0 && s < in[1]) ? image[static_cast<size_t>(c * 12 + r * 4 + s)] : 7;
        size_t at = static_cast<size_t>((c * ksize + offset_of(w.kernel, k)) * out_size + offset_of(w.out, o));
        EXPECT_EQ(col[at], want) << "c " << c << " k " << dims_to_string(k) << " o " << dims_to_string(o);
      });
    });
}

// col2im_add is the adjoint of im2col: <im2col(x), c> == <x, col2im(c)>.
TEST(Im2Col, Col2ImIsTheAdjoint) {
  Window w = make_window({5, 4, 6}, {2, 3, 2}, {2, 1, 3}, {1, 2, 2}, {1, 0, 2}, {0, 2, 1});
  const int64_t channels = 3, in_size = 5 * 4 * 6, out_size = numel_of(w.out), ksize = 12;
  Tensor x = random_tensor(DType::kFloat64, {channels * in_size}, 3);
  Tensor c = random_tensor(DType::kFloat64, {channels * ksize * out_size}, 4);
  std::vector<double> cols(static_cast<size_t>(c.numel()));
  cpu::im2col(x.data<double>(), channels, w, cols.data());
  std::vector<double> back(static_cast<size_t>(x.numel()), 0.0);
  cpu::col2im_add(c.data<double>(), channels, w, back.data());
  double lhs = 0, rhs = 0;
  for (size_t i = 0; i < cols.size(); ++i) lhs += cols[i] * c.data<double>()[i];
  for (size_t i = 0; i < back.size(); ++i) rhs += x.data<double>()[i] * back[i];
  EXPECT_NEAR(lhs, rhs, 1e-9 * std::abs(lhs));
  EXPECT_NE(lhs, 0.0);
}

}  // namespace
}  // namespace kiln::test
