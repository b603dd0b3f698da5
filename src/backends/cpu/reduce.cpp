// CPU kernels of ReduceSum/Mean/Max/Min/Prod/L1/L2/LogSum/LogSumExp/SumSquare: one reduction
// engine (iterate the input once, accumulating into the output slot of each element) and a
// functor per op. Reductions over an empty set give the spec's values: 0 for sums, 1 for Prod,
// -inf (or the lowest value) for Max, +inf (or the highest) for Min, -inf for LogSum(Exp), NaN
// for a floating-point Mean.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "backends/cpu/accumulate.hpp"
#include "ops/op_registry.hpp"
#include "ops/reduce.hpp"

namespace kiln::cpu {
namespace {

// The input's dims merged into runs of kept / reduced axes (size-1 dims dropped), with the output
// stride of each run (0 for a reduced run).
struct ReducePlan {
  std::vector<int64_t> sizes;
  std::vector<int64_t> out_strides;
  int64_t count = 1;  // input elements per output element
};

ReducePlan make_plan(const Dims& dims, const std::vector<bool>& mask) {
  ReducePlan p;
  std::vector<bool> reduced;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (mask[i]) p.count *= dims[i];
    if (dims[i] == 1) continue;
    if (!reduced.empty() && reduced.back() == mask[i]) {
      p.sizes.back() *= dims[i];
    } else {
      p.sizes.push_back(dims[i]);
      reduced.push_back(mask[i]);
    }
  }
  if (p.sizes.empty()) {
    p.sizes.push_back(1);
    reduced.push_back(false);
  }
  p.out_strides.assign(p.sizes.size(), 0);
  int64_t stride = 1;
  for (size_t i = p.sizes.size(); i-- > 0;) {
    if (reduced[i]) continue;
    p.out_strides[i] = stride;
    stride *= p.sizes[i];
  }
  return p;
}

// Calls f(input_index, output_index) for every input element, in input order.
template <typename F>
void for_each_element(const ReducePlan& p, F&& f) {
  for (int64_t s : p.sizes)
    if (s == 0) return;
  const size_t outer = p.sizes.size() - 1;
  const int64_t inner = p.sizes[outer], inner_stride = p.out_strides[outer];
  std::vector<int64_t> idx(outer, 0);
  int64_t in = 0, out = 0;
  while (true) {
    for (int64_t i = 0; i < inner; ++i) f(in + i, out + i * inner_stride);
    in += inner;
    size_t d = outer;
    while (d-- > 0) {
      out += p.out_strides[d];
      if (++idx[d] < p.sizes[d]) break;
      out -= p.out_strides[d] * p.sizes[d];
      idx[d] = 0;
    }
    if (d == static_cast<size_t>(-1)) return;
  }
}

// Functors: init() is the empty-set value of the accumulator, step() folds one element in,
// finish() turns the accumulator over `n` elements into the stored result.
struct SumOp {
  template <typename T, typename A> static A init() { return A(0); }
  template <typename A> static A step(A a, A x) { return acc_add(a, x); }
  template <typename T, typename A> static T finish(A a, int64_t) { return store_as<T>(a); }
};
struct SumSquareOp : SumOp {
  template <typename A> static A step(A a, A x) { return acc_add(a, acc_mul(x, x)); }
};
struct L1Op : SumOp {
  template <typename A> static A step(A a, A x) { return acc_add(a, acc_abs(x)); }
};
struct L2Op : SumSquareOp {
  template <typename T, typename A> static T finish(A a, int64_t) {
    if constexpr (std::is_floating_point_v<A>) return store_as<T>(std::sqrt(a));
    else return store_as<T>(std::sqrt(static_cast<double>(a)));
  }
};
struct LogSumOp : SumOp {
  template <typename T, typename A> static T finish(A a, int64_t) {
    if constexpr (std::is_floating_point_v<A>) return store_as<T>(std::log(a));
    else return store_as<T>(std::log(static_cast<double>(a)));
  }
};
struct MeanOp : SumOp {
  template <typename T, typename A> static T finish(A a, int64_t n) {
    if constexpr (std::is_floating_point_v<A>) return store_as<T>(a / static_cast<A>(n));
    else return store_as<T>(n == 0 ? A(0) : static_cast<A>(a / static_cast<A>(n)));  // truncates
  }
};
struct ProdOp : SumOp {
  template <typename T, typename A> static A init() { return A(1); }
  template <typename A> static A step(A a, A x) { return acc_mul(a, x); }
};
// Max/Min propagate NaN, like numpy's maximum.reduce.
struct MaxOp : SumOp {
  static constexpr bool kBool = true;
  template <typename T, typename A> static A init() {
    if constexpr (is_float_like_v<T>) return -std::numeric_limits<A>::infinity();
    else return static_cast<A>(std::numeric_limits<T>::lowest());
  }
  template <typename A> static A step(A a, A x) {
    if constexpr (std::is_floating_point_v<A>) return (x > a || std::isnan(x)) && !std::isnan(a) ? x : a;
    else return x > a ? x : a;
  }
};
struct MinOp : SumOp {
  static constexpr bool kBool = true;
  template <typename T, typename A> static A init() {
    if constexpr (is_float_like_v<T>) return std::numeric_limits<A>::infinity();
    else return static_cast<A>(std::numeric_limits<T>::max());
  }
  template <typename A> static A step(A a, A x) {
    if constexpr (std::is_floating_point_v<A>) return (x < a || std::isnan(x)) && !std::isnan(a) ? x : a;
    else return x < a ? x : a;
  }
};

struct LogSumExpOp {};  // computed by reduce_log_sum_exp (two passes)

template <typename Op> constexpr bool accepts_bool() {
  if constexpr (requires { Op::kBool; }) return Op::kBool;
  else return false;
}

template <typename T, typename Op>
void reduce_typed(const Tensor& x, Tensor& y, const ReducePlan& p) {
  using A = acc_t<T>;
  // Not std::vector: vector<bool> (ReduceMax/Min of bool) has no real bool elements.
  const size_t n = static_cast<size_t>(y.numel());
  std::unique_ptr<A[]> acc(new A[n]);
  std::fill(acc.get(), acc.get() + n, Op::template init<T, A>());
  const T* in = x.data<T>();
  for_each_element(p, [&](int64_t i, int64_t o) {
    acc[static_cast<size_t>(o)] = Op::step(acc[static_cast<size_t>(o)], load_acc<A>(in[i]));
  });
  T* out = y.data<T>();
  for (size_t o = 0; o < n; ++o) out[o] = Op::template finish<T>(acc[o], p.count);
}

// log(sum(exp(x))) computed as max + log(sum(exp(x - max))) so large inputs do not overflow.
// Integers are computed in double.
template <typename T>
void reduce_log_sum_exp(const Tensor& x, Tensor& y, const ReducePlan& p) {
  using A = std::conditional_t<std::is_floating_point_v<acc_t<T>>, acc_t<T>, double>;
  const size_t n = static_cast<size_t>(y.numel());
  std::vector<A> mx(n, -std::numeric_limits<A>::infinity()), sum(n, A(0));
  const T* in = x.data<T>();
  for_each_element(p, [&](int64_t i, int64_t o) {
    mx[static_cast<size_t>(o)] = MaxOp::step(mx[static_cast<size_t>(o)], load_acc<A>(in[i]));
  });
  for_each_element(p, [&](int64_t i, int64_t o) {
    const A m = mx[static_cast<size_t>(o)];
    if (std::isfinite(m)) sum[static_cast<size_t>(o)] += std::exp(load_acc<A>(in[i]) - m);
  });
  T* out = y.data<T>();
  // A non-finite max (all -inf, some +inf, NaN, or an empty set) is the result itself.
  for (size_t o = 0; o < n; ++o) out[o] = store_as<T>(std::isfinite(mx[o]) ? mx[o] + std::log(sum[o]) : mx[o]);
}

template <typename Op>
Status reduce_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  std::vector<int64_t> axes;
  if (ctx.has_input(1)) {
    auto v = ctx.input(1).to_int64_vector();
    if (!v) return ctx.error("axes: {}", v.status().message());
    axes = std::move(*v);
  }
  KILN_ASSIGN_OR_RETURN(std::vector<bool> mask,
                        reduce_axes_mask(ctx.node(), x.rank(), axes,
                                         ctx.attrs().i("noop_with_empty_axes", 0) != 0));
  const ReducePlan plan = make_plan(x.dims(), mask);
  Tensor& y = ctx.output(0);
  bool supported = true;
  const DType dt = x.dtype();
  bool ok = dispatch_dtype(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, bool> && !accepts_bool<Op>()) {
      supported = false;
    } else if constexpr (std::is_same_v<Op, LogSumExpOp>) {
      reduce_log_sum_exp<T>(x, y, plan);
    } else {
      reduce_typed<T, Op>(x, y, plan);
    }
  });
  return ok && supported ? Status::Ok() : ctx.unsupported_dtype(dt, 0);
}

}  // namespace
}  // namespace kiln::cpu

KILN_REGISTER_CPU_KERNEL("ReduceSum", kiln::cpu::reduce_kernel<kiln::cpu::SumOp>);
KILN_REGISTER_CPU_KERNEL("ReduceMean", kiln::cpu::reduce_kernel<kiln::cpu::MeanOp>);
KILN_REGISTER_CPU_KERNEL("ReduceMax", kiln::cpu::reduce_kernel<kiln::cpu::MaxOp>);
KILN_REGISTER_CPU_KERNEL("ReduceMin", kiln::cpu::reduce_kernel<kiln::cpu::MinOp>);
KILN_REGISTER_CPU_KERNEL("ReduceProd", kiln::cpu::reduce_kernel<kiln::cpu::ProdOp>);
KILN_REGISTER_CPU_KERNEL("ReduceL1", kiln::cpu::reduce_kernel<kiln::cpu::L1Op>);
KILN_REGISTER_CPU_KERNEL("ReduceL2", kiln::cpu::reduce_kernel<kiln::cpu::L2Op>);
KILN_REGISTER_CPU_KERNEL("ReduceLogSum", kiln::cpu::reduce_kernel<kiln::cpu::LogSumOp>);
KILN_REGISTER_CPU_KERNEL("ReduceLogSumExp", kiln::cpu::reduce_kernel<kiln::cpu::LogSumExpOp>);
KILN_REGISTER_CPU_KERNEL("ReduceSumSquare", kiln::cpu::reduce_kernel<kiln::cpu::SumSquareOp>);
