// NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss on the CPU.
#include <cmath>
#include <limits>
#include <optional>
#include <vector>

#include "backends/cpu/float_dispatch.hpp"

namespace kiln {
namespace {

// The input seen as (N, C, D) with D the product of d1..dk; the target as (N, D).
struct LossGeometry {
  int64_t n = 0, c = 0, d = 1;
};

LossGeometry loss_geometry(const Tensor& x) {
  LossGeometry g;
  g.n = x.dim(0);
  g.c = x.dim(1);
  for (int i = 2; i < x.rank(); ++i) g.d *= x.dim(i);
  return g;
}

// log_softmax along C of x (N, C, D), in the compute type C.
template <typename T, typename C>
std::vector<C> log_softmax_nc(const T* x, const LossGeometry& g) {
  std::vector<C> out(static_cast<size_t>(g.n * g.c * g.d));
  for (int64_t n = 0; n < g.n; ++n) {
    for (int64_t d = 0; d < g.d; ++d) {
      const int64_t base = n * g.c * g.d + d;
      C mx = -std::numeric_limits<C>::infinity();
      for (int64_t k = 0; k < g.c; ++k) mx = std::max(mx, static_cast<C>(x[base + k * g.d]));
      // Subtracting the max keeps exp() finite.
      C sum = 0;
      for (int64_t k = 0; k < g.c; ++k) sum += std::exp(static_cast<C>(x[base + k * g.d]) - mx);
      const C log_sum = std::log(sum);
      for (int64_t k = 0; k < g.c; ++k)
        out[static_cast<size_t>(base + k * g.d)] = static_cast<C>(x[base + k * g.d]) - mx - log_sum;
    }
  }
  return out;
}

// The weighted negative log-likelihood of log-probabilities `logp` (N, C, D) at the target classes,
// reduced as the `reduction` attribute says. Targets equal to ignore_index contribute nothing (and
// no weight to the mean); any other target outside [0, C) is an error.
template <typename T, typename C>
Status nll_reduce(KernelContext& ctx, const C* logp, const LossGeometry& g) {
  const Tensor& target = ctx.input(1);
  auto labels = target.to_int64_vector();
  if (!labels) return ctx.error("{}", labels.status().message());
  const T* weight = ctx.has_input(2) ? ctx.input(2).data<T>() : nullptr;
  std::optional<int64_t> ignore;
  if (ctx.attrs().has("ignore_index")) ignore = ctx.attrs().i("ignore_index");
  const std::string reduction = ctx.attrs().s("reduction", "mean");

  Tensor& loss = ctx.output(0);
  T* out = loss.data<T>();
  double total = 0, weight_sum = 0;
  for (int64_t n = 0; n < g.n; ++n) {
    for (int64_t d = 0; d < g.d; ++d) {
      const int64_t i = n * g.d + d;
      const int64_t t = (*labels)[static_cast<size_t>(i)];
      C l = 0, w = 0;
      if (!(ignore && t == *ignore)) {
        if (t < 0 || t >= g.c) return ctx.error("target {} is out of range [0, {})", t, g.c);
        w = weight ? static_cast<C>(weight[t]) : C(1);
        l = -w * logp[n * g.c * g.d + t * g.d + d];
      }
      if (reduction == "none") out[i] = static_cast<T>(l);
      total += static_cast<double>(l);
      weight_sum += static_cast<double>(w);
    }
  }
  if (reduction == "sum") out[0] = static_cast<T>(static_cast<C>(total));
  // All targets ignored gives 0/0 = NaN, as in the reference.
  if (reduction == "mean") out[0] = static_cast<T>(static_cast<C>(total / weight_sum));
  return Status::Ok();
}

Status check_loss_shapes(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (x.rank() < 2) return ctx.error("input must have rank 2 or more (N, C, ...), got {}", x.describe());
  if (ctx.has_input(2) && (ctx.input(2).rank() != 1 || ctx.input(2).dim(0) != x.dim(1)))
    return ctx.error("weight {} must be 1-D of size C = {}", ctx.input(2).describe(), x.dim(1));
  return Status::Ok();
}

Status nll_loss_kernel(KernelContext& ctx) {
  KILN_RETURN_IF_ERROR(check_loss_shapes(ctx));
  const Tensor& x = ctx.input(0);
  const LossGeometry g = loss_geometry(x);
  Status st = Status::Ok();
  KILN_RETURN_IF_ERROR(cpu::dispatch_floating(ctx, x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const T* xd = x.data<T>();
    std::vector<C> logp(static_cast<size_t>(x.numel()));
    for (size_t i = 0; i < logp.size(); ++i) logp[i] = static_cast<C>(xd[i]);
    st = nll_reduce<T, C>(ctx, logp.data(), g);
  }));
  return st;
}

// loss = NLL(log_softmax(scores, axis 1)); the optional second output is that log_softmax.
Status softmax_cross_entropy_kernel(KernelContext& ctx) {
  KILN_RETURN_IF_ERROR(check_loss_shapes(ctx));
  const Tensor& x = ctx.input(0);
  const LossGeometry g = loss_geometry(x);
  Status st = Status::Ok();
  KILN_RETURN_IF_ERROR(cpu::dispatch_floating(ctx, x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    std::vector<C> logp = log_softmax_nc<T, C>(x.data<T>(), g);
    st = nll_reduce<T, C>(ctx, logp.data(), g);
    if (st.ok() && ctx.node().has_output(1)) {
      T* lp = ctx.output(1).data<T>();
      for (size_t i = 0; i < logp.size(); ++i) lp[i] = static_cast<T>(logp[i]);
    }
  }));
  return st;
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL("NegativeLogLikelihoodLoss", kiln::nll_loss_kernel);
KILN_REGISTER_CPU_KERNEL("SoftmaxCrossEntropyLoss", kiln::softmax_cross_entropy_kernel);
