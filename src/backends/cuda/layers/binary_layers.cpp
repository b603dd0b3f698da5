// CUDA layers of the broadcasting ops: binary arithmetic, PRelu, the variadic Sum/Mean/Max/Min,
// comparisons and logic, and Where. Broadcast geometry is fixed at build time (static shapes);
// the kernels are in binary_math.cu and compare.cu.
#include <utility>

#include "backends/cuda/layers/ew_kernels.hpp"
#include "backends/cuda/layers/ew_layer_util.hpp"

namespace kiln::cuda {
namespace {

// Geometry of the node's inputs [first, last) against its output; false if any is not static or
// does not broadcast.
bool node_geometry(const Node& n, std::vector<size_t> inputs, BroadcastGeometry& g) {
  auto out = static_dims(n.has_output(0) ? n.outputs[0] : nullptr);
  if (!out) return false;
  std::vector<Dims> dims;
  for (size_t i : inputs) {
    auto d = static_dims(n.has_input(i) ? n.inputs[i] : nullptr);
    if (!d) return false;
    dims.push_back(std::move(*d));
  }
  return make_broadcast_geometry(*out, dims, g);
}

bool binary_supported(BinaryOp op, DType a, DType b) {
  return is_comparison(op) ? a == b && compare_supported(op, a) : binary_math_supported(op, a, b);
}

cudaError_t launch_binary(BinaryOp op, float alpha, DType a, DType b, const BroadcastGeometry& g, const void* x,
                          const void* y, void* out, cudaStream_t s) {
  return is_comparison(op) ? launch_compare(op, a, g, x, y, out, s)
                           : launch_binary_math(op, alpha, a, b, g, x, y, out, s);
}

class BinaryLayer : public CudaLayer {
 public:
  BinaryLayer(BinaryOp op, DType a, DType b, BroadcastGeometry g) : op_(op), a_(a), b_(b), g_(g) {}
  Status enqueue(const LaunchArgs& a) const override {
    KILN_CUDA_CHECK(launch_binary(op_, 0.f, a_, b_, g_, a.inputs[0].data, a.inputs[1].data, a.outputs[0].data,
                                  a.stream));
    return Status::Ok();
  }

 private:
  BinaryOp op_;
  DType a_, b_;
  BroadcastGeometry g_;
};

CudaLayerFactory binary_factory(BinaryOp op) {
  return simple_factory(
      [op](const Node& n) {
        BroadcastGeometry g;
        if (op == BinaryOp::kMod && n.attrs.i("fmod", 0) != 1) return false;
        return n.num_inputs() == 2 && n.has_input(0) && n.has_input(1) && node_geometry(n, {0, 1}, g) &&
               binary_supported(op, value_dtype(n.inputs[0]), value_dtype(n.inputs[1]));
      },
      [op](const Node& n, const LayerChoice&) -> Expected<std::unique_ptr<CudaLayer>> {
        BroadcastGeometry g;
        if (!node_geometry(n, {0, 1}, g)) return unsupported("{}: shapes do not broadcast", n.describe());
        return std::unique_ptr<CudaLayer>(
            std::make_unique<BinaryLayer>(op, value_dtype(n.inputs[0]), value_dtype(n.inputs[1]), g));
      });
}

// Sum/Mean/Max/Min of k inputs: out = f(in0, in1), then out = f(out, in_i) for each further
// input (each step reads and writes the same element, so in place is safe). Mean's last step
// also divides by k. One input is a copy.
class VariadicLayer : public CudaLayer {
 public:
  VariadicLayer(BinaryOp op, bool mean, DType t, std::vector<BroadcastGeometry> steps)
      : op_(op), mean_(mean), t_(t), steps_(std::move(steps)) {}
  Status enqueue(const LaunchArgs& a) const override {
    const DeviceTensor& out = a.outputs[0];
    if (a.inputs.size() == 1) {
      if (out.data != a.inputs[0].data && out.nbytes() > 0)
        KILN_CUDA_CHECK(cudaMemcpyAsync(out.data, a.inputs[0].data, out.nbytes(), cudaMemcpyDeviceToDevice, a.stream));
      return Status::Ok();
    }
    const float k = static_cast<float>(a.inputs.size());
    for (size_t i = 1; i < a.inputs.size(); ++i) {
      const bool last = i + 1 == a.inputs.size();
      const BinaryOp op = mean_ && last ? BinaryOp::kMeanFinish : op_;
      const void* acc = i == 1 ? a.inputs[0].data : out.data;
      KILN_CUDA_CHECK(launch_binary_math(op, k, t_, t_, steps_[i - 1], acc, a.inputs[i].data, out.data, a.stream));
    }
    return Status::Ok();
  }

 private:
  BinaryOp op_;
  bool mean_;
  DType t_;
  std::vector<BroadcastGeometry> steps_;
};

bool variadic_steps(const Node& n, std::vector<BroadcastGeometry>& steps) {
  if (n.num_inputs() == 0 || !n.has_output(0)) return false;
  for (size_t i = 0; i < n.num_inputs(); ++i)
    if (!n.has_input(i) || value_dtype(n.inputs[i]) != value_dtype(n.inputs[0])) return false;
  auto out = static_dims(n.outputs[0]);
  if (!out) return false;
  steps.clear();
  if (n.num_inputs() == 1) {
    auto in = static_dims(n.inputs[0]);
    return in && *in == *out;
  }
  for (size_t i = 1; i < n.num_inputs(); ++i) {
    BroadcastGeometry g;
    // The first step reads input 0; later ones read the accumulator (the output's shape).
    auto first = i == 1 ? static_dims(n.inputs[0]) : out;
    auto in = static_dims(n.inputs[i]);
    if (!first || !in || !make_broadcast_geometry(*out, {*first, *in}, g)) return false;
    steps.push_back(g);
  }
  return true;
}

CudaLayerFactory variadic_factory(BinaryOp op, bool mean) {
  return simple_factory(
      [op, mean](const Node& n) {
        std::vector<BroadcastGeometry> steps;
        if (!variadic_steps(n, steps)) return false;
        const DType t = value_dtype(n.inputs[0]);
        return binary_math_supported(mean ? BinaryOp::kMeanFinish : op, t, t) && binary_math_supported(op, t, t);
      },
      [op, mean](const Node& n, const LayerChoice&) -> Expected<std::unique_ptr<CudaLayer>> {
        std::vector<BroadcastGeometry> steps;
        if (!variadic_steps(n, steps)) return unsupported("{}: shapes do not broadcast", n.describe());
        return std::unique_ptr<CudaLayer>(
            std::make_unique<VariadicLayer>(op, mean, value_dtype(n.inputs[0]), std::move(steps)));
      });
}

class WhereLayer : public CudaLayer {
 public:
  WhereLayer(DType t, BroadcastGeometry g) : t_(t), g_(g) {}
  Status enqueue(const LaunchArgs& a) const override {
    KILN_CUDA_CHECK(launch_where(t_, g_, a.inputs[0].data, a.inputs[1].data, a.inputs[2].data, a.outputs[0].data,
                                 a.stream));
    return Status::Ok();
  }

 private:
  DType t_;
  BroadcastGeometry g_;
};

CudaLayerFactory where_factory() {
  return simple_factory(
      [](const Node& n) {
        BroadcastGeometry g;
        return n.num_inputs() == 3 && n.has_input(0) && n.has_input(1) && n.has_input(2) &&
               value_dtype(n.inputs[0]) == DType::kBool && value_dtype(n.inputs[1]) == value_dtype(n.inputs[2]) &&
               where_supported(value_dtype(n.inputs[1])) && node_geometry(n, {0, 1, 2}, g);
      },
      [](const Node& n, const LayerChoice&) -> Expected<std::unique_ptr<CudaLayer>> {
        BroadcastGeometry g;
        if (!node_geometry(n, {0, 1, 2}, g)) return unsupported("{}: shapes do not broadcast", n.describe());
        return std::unique_ptr<CudaLayer>(std::make_unique<WhereLayer>(value_dtype(n.inputs[1]), g));
      });
}

const std::pair<const char*, BinaryOp> kBinaryOps[] = {
    {"Add", BinaryOp::kAdd},
    {"Sub", BinaryOp::kSub},
    {"Mul", BinaryOp::kMul},
    {"Div", BinaryOp::kDiv},
    {"Mod", BinaryOp::kMod},
    {"Pow", BinaryOp::kPow},
    {"PRelu", BinaryOp::kPRelu},
    {"Equal", BinaryOp::kEqual},
    {"Less", BinaryOp::kLess},
    {"LessOrEqual", BinaryOp::kLessOrEqual},
    {"Greater", BinaryOp::kGreater},
    {"GreaterOrEqual", BinaryOp::kGreaterOrEqual},
    {"And", BinaryOp::kAnd},
    {"Or", BinaryOp::kOr},
    {"Xor", BinaryOp::kXor},
};

[[maybe_unused]] const bool kRegistered = [] {
  for (const auto& [name, op] : kBinaryOps) register_cuda_layer(name, binary_factory(op));
  register_cuda_layer("Sum", variadic_factory(BinaryOp::kAdd, false));
  register_cuda_layer("Mean", variadic_factory(BinaryOp::kAdd, true));
  register_cuda_layer("Max", variadic_factory(BinaryOp::kMax, false));
  register_cuda_layer("Min", variadic_factory(BinaryOp::kMin, false));
  register_cuda_layer("Where", where_factory());
  return true;
}();

}  // namespace
}  // namespace kiln::cuda
