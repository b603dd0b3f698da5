// Adagrad, Adam and Momentum (domain ai.onnx.preview.training) on the CPU: one elementwise update
// per optimized tensor, the optimizers differing only in the per-element step.
#include <array>
#include <cmath>
#include <string>

#include "backends/cpu/float_dispatch.hpp"

namespace kiln {
namespace {

constexpr const char* kTrainingDomain = "ai.onnx.preview.training";

// Runs `step(in, out)` on every element of every optimized tensor: `in` holds X, G and the state
// values (kIn of them), `out` receives the new X and state (kIn - 1). R and T come as scalars.
template <size_t kIn, typename MakeStep>
Status optimizer_kernel(KernelContext& ctx, MakeStep make_step) {
  const size_t n = (ctx.num_inputs() - 2) / kIn;
  if (ctx.input(0).numel() != 1 || ctx.input(1).numel() != 1)
    return ctx.error("R and T must be scalars, got {} and {}", ctx.input(0).describe(), ctx.input(1).describe());
  const double r = ctx.input(0).scalar_as_double();
  const int64_t t = static_cast<int64_t>(ctx.input(1).scalar_as_double());
  for (size_t k = 0; k < n; ++k) {
    const Tensor& x = ctx.input(2 + k);
    for (size_t j = 1; j < kIn; ++j)
      if (ctx.input(2 + j * n + k).dims() != x.dims())
        return ctx.error("input {} is {} but X{} is {}", 2 + j * n + k, ctx.input(2 + j * n + k).describe(), k + 1,
                         x.describe());
    KILN_RETURN_IF_ERROR(cpu::dispatch_floating(ctx, x.dtype(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      using C = compute_t<T>;
      auto step = make_step(static_cast<C>(r), t, TypeTag<C>{});
      std::array<const T*, kIn> in{};
      for (size_t j = 0; j < kIn; ++j) in[j] = ctx.input(2 + j * n + k).template data<T>();
      std::array<T*, kIn - 1> out{};
      for (size_t j = 0; j + 1 < kIn; ++j)
        out[j] = ctx.node().has_output(j * n + k) ? ctx.output(j * n + k).template data<T>() : nullptr;
      std::array<C, kIn> vin{};
      std::array<C, kIn - 1> vout{};
      for (int64_t e = 0; e < x.numel(); ++e) {
        for (size_t j = 0; j < kIn; ++j) vin[j] = static_cast<C>(in[j][e]);
        step(vin, vout);
        for (size_t j = 0; j + 1 < kIn; ++j)
          if (out[j]) out[j][e] = static_cast<T>(vout[j]);
      }
    }, 2 + k));
  }
  return Status::Ok();
}

// Adagrad: lr decays as R / (1 + T * decay_factor); H accumulates squared (regularized) gradients.
Status adagrad_kernel(KernelContext& ctx) {
  const double decay = ctx.attrs().f("decay_factor", 0.f);
  const double eps = ctx.attrs().f("epsilon", 1e-6f);
  const double norm = ctx.attrs().f("norm_coefficient", 0.f);
  return optimizer_kernel<3>(ctx, [&](auto r, int64_t t, auto tag) {
    using C = typename decltype(tag)::type;
    const C lr = static_cast<C>(r / (1 + static_cast<double>(t) * decay));
    return [=](const std::array<C, 3>& in, std::array<C, 2>& out) {
      const C g = static_cast<C>(norm) * in[0] + in[1];
      const C h = in[2] + g * g;
      out[0] = in[0] - lr * g / (std::sqrt(h) + static_cast<C>(eps));
      out[1] = h;
    };
  });
}

// Momentum, standard (X -= R * V) or nesterov (X -= R * (G + alpha * V)); the first step (T = 0)
// takes the whole gradient (beta treated as 1).
Status momentum_kernel(KernelContext& ctx) {
  for (const char* a : {"alpha", "beta", "mode", "norm_coefficient"})
    if (!ctx.attrs().has(a)) return ctx.error("attribute '{}' is required", a);
  const double alpha = ctx.attrs().f("alpha");
  const double beta = ctx.attrs().f("beta");
  const double norm = ctx.attrs().f("norm_coefficient");
  const std::string mode = ctx.attrs().s("mode");
  if (mode != "standard" && mode != "nesterov")
    return ctx.error("mode '{}' must be 'standard' or 'nesterov'", mode);
  const bool nesterov = mode == "nesterov";
  return optimizer_kernel<3>(ctx, [&](auto r, int64_t t, auto tag) {
    using C = typename decltype(tag)::type;
    const C b = static_cast<C>(t > 0 ? beta : 1.0);
    return [=](const std::array<C, 3>& in, std::array<C, 2>& out) {
      const C g = static_cast<C>(norm) * in[0] + in[1];
      const C v = static_cast<C>(alpha) * in[2] + b * g;
      out[0] = in[0] - r * (nesterov ? g + static_cast<C>(alpha) * v : v);
      out[1] = v;
    };
  });
}

// Adam with bias correction from step 1 on; norm_coefficient_post shrinks X after the update.
Status adam_kernel(KernelContext& ctx) {
  const double alpha = ctx.attrs().f("alpha", 0.9f);
  const double beta = ctx.attrs().f("beta", 0.999f);
  const double eps = ctx.attrs().f("epsilon", 1e-6f);
  const double norm = ctx.attrs().f("norm_coefficient", 0.f);
  const double post = ctx.attrs().f("norm_coefficient_post", 0.f);
  return optimizer_kernel<4>(ctx, [&](auto r, int64_t t, auto tag) {
    using C = typename decltype(tag)::type;
    const double td = static_cast<double>(t);
    const C lr = static_cast<C>(t > 0 ? static_cast<double>(r) * std::sqrt(1 - std::pow(beta, td)) /
                                            (1 - std::pow(alpha, td))
                                      : static_cast<double>(r));
    return [=](const std::array<C, 4>& in, std::array<C, 3>& out) {
      const C g = static_cast<C>(norm) * in[0] + in[1];
      const C v = static_cast<C>(alpha) * in[2] + static_cast<C>(1 - alpha) * g;
      const C h = static_cast<C>(beta) * in[3] + static_cast<C>(1 - beta) * g * g;
      const C x = in[0] - lr * (v / (std::sqrt(h) + static_cast<C>(eps)));
      out[0] = static_cast<C>(1 - post) * x;
      out[1] = v;
      out[2] = h;
    };
  });
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL_DOMAIN(kiln::kTrainingDomain, "Adagrad", kiln::adagrad_kernel);
KILN_REGISTER_CPU_KERNEL_DOMAIN(kiln::kTrainingDomain, "Momentum", kiln::momentum_kernel);
KILN_REGISTER_CPU_KERNEL_DOMAIN(kiln::kTrainingDomain, "Adam", kiln::adam_kernel);
