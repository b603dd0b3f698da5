// CPU kernel of Col2Im: the scatter-add of ConvTranspose (col2im_add), per batch. Sums run in a
// wider type (double for float32, float for 16-bit floats, wrapping 64-bit for integers).
#include <algorithm>
#include <type_traits>
#include <vector>

#include "backends/cpu/accumulate.hpp"
#include "backends/cpu/element_types.hpp"
#include "backends/cpu/im2col.hpp"
#include "ops/op_registry.hpp"

namespace kiln::cpu {
namespace {

template <typename T>
void col2im_typed(const Tensor& x, const Window& w, Tensor& y) {
  using A = std::conditional_t<is_float_like_v<T>, acc_t<T>, uint64_t>;
  const int64_t batch = x.dim(0), col_size = x.dim(1) * x.dim(2), channels = y.dim(1);
  int64_t image_size = channels;
  for (int d = 2; d < y.rank(); ++d) image_size *= y.dim(d);
  std::vector<A> col(static_cast<size_t>(col_size)), image(static_cast<size_t>(image_size));
  for (int64_t b = 0; b < batch; ++b) {
    const T* in = x.data<T>() + b * col_size;
    for (int64_t i = 0; i < col_size; ++i) col[static_cast<size_t>(i)] = static_cast<A>(load(in[i]));
    std::fill(image.begin(), image.end(), A(0));
    col2im_add(col.data(), channels, w, image.data());
    T* out = y.data<T>() + b * image_size;
    for (int64_t i = 0; i < image_size; ++i) out[i] = store_as<T>(image[static_cast<size_t>(i)]);
  }
}

Status col2im_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  auto image = ctx.input(1).to_int64_vector();
  auto block = ctx.input(2).to_int64_vector();
  if (!image || !block) return ctx.error("image_shape and block_shape must be integer tensors");
  KILN_ASSIGN_OR_RETURN(Window w, resolve_window(ctx.node(), *image, &*block, false));
  Tensor& y = ctx.output(0);
  const bool ok = dispatch_types<kNumericTypes>(x.dtype(), [&](auto tag) {
    col2im_typed<typename decltype(tag)::type>(x, w, y);
  });
  return ok ? Status::Ok() : ctx.unsupported_dtype(x.dtype(), 0);
}

}  // namespace
}  // namespace kiln::cpu

KILN_REGISTER_CPU_KERNEL("Col2Im", kiln::cpu::col2im_kernel);
