// Host-side parts shared by the INT8 layers kiln.QConv (qconv.cpp) and kiln.QMatMul (qmatmul.cpp):
// the node's checks, its epilogue parameters (uploaded once per layer), and how both drive the
// implicit-GEMM kernel's tactics ("igemm_s8:<tile>", qconv_igemm.hpp).
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "backends/cuda/cuda_layer.hpp"
#include "backends/cuda/device_buffer.hpp"
#include "backends/cuda/layers/nn_util.hpp"
#include "backends/cuda/layers/qconv_igemm.hpp"
#include "backends/cuda/layers/qdq_kernels.hpp"

namespace kiln::cuda {

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }
inline size_t align256(size_t v) { return (v + 255) / 256 * 256; }

inline bool constant_input(const Node& n, size_t i) { return n.has_input(i) && n.inputs[i]->is_constant(); }

// The checks common to both ops: int8 X and constant W, constant scales and bias, output int8
// (with y_scale) or a GPU float, Z of the output float dtype or int8 (with constant z_scale).
inline bool q_layer_supports(const Node& n, int64_t channels) {
  if (!n.has_input(0) || !n.has_output(0) || n.outputs.size() != 1 || n.inputs.size() > 8 || !all_static(n))
    return false;
  if (n.inputs[0]->type.dtype != DType::kInt8 || !constant_input(n, 1) || !constant_input(n, 2) ||
      !constant_input(n, 3) || n.inputs[2]->type.dtype != DType::kInt8)
    return false;
  const int64_t ws = n.inputs[3]->constant->numel();
  if (ws != 1 && ws != channels) return false;
  const std::string act = n.attrs.s("activation", "");
  if (!act.empty() && act != "Relu") return false;
  const DType y = n.outputs[0]->type.dtype;
  const DType f = n.inputs[1]->type.dtype;
  if (!is_gpu_float(f)) return false;
  if (n.has_input(7) ? (!constant_input(n, 7) || y != DType::kInt8) : y != f) return false;
  if (n.has_input(4) && (!constant_input(n, 4) || n.inputs[4]->constant->numel() != channels)) return false;
  if (n.has_input(5)) {
    const DType z = n.inputs[5]->type.dtype;
    if (z == DType::kInt8 ? !constant_input(n, 6) : z != f) return false;
    if (static_dims(n.inputs[5]) != static_dims(n.outputs[0])) return false;
  }
  return true;
}

// alpha[c] = x_scale * w_scale[c] and the float bias on the device; the other scales on the host.
struct QEpilogue {
  DeviceBuffer alpha, bias;
  float z_scale = 1.f, y_scale = 1.f;
  bool relu = false;

  Status init(const Node& n, int64_t channels) {
    const double xs = n.inputs[1]->constant->scalar_as_double();
    const std::vector<double> ws = n.inputs[3]->constant->to_double_vector();
    std::vector<float> a(static_cast<size_t>(channels));
    for (size_t c = 0; c < a.size(); ++c) a[c] = static_cast<float>(xs * ws[ws.size() == 1 ? 0 : c]);
    KILN_RETURN_IF_ERROR(upload(a, alpha));
    if (n.has_input(4)) {
      const std::vector<double> b = n.inputs[4]->constant->to_double_vector();
      KILN_RETURN_IF_ERROR(upload(std::vector<float>(b.begin(), b.end()), bias));
    }
    if (n.has_input(6)) z_scale = static_cast<float>(n.inputs[6]->constant->scalar_as_double());
    if (n.has_input(7)) y_scale = static_cast<float>(n.inputs[7]->constant->scalar_as_double());
    relu = n.attrs.s("activation", "") == "Relu";
    return Status::Ok();
  }

  // The kernel's parameters for this launch (acc, z and y from the caller).
  kernels::QEpilogueParams params(const LaunchArgs& a) const {
    kernels::QEpilogueParams p;
    p.alpha = alpha.as<float>();
    p.bias = bias.as<float>();
    if (a.inputs.size() > 5 && a.inputs[5].data) {
      p.z = a.inputs[5].data;
      p.z_dtype = a.inputs[5].dtype;
      p.z_scale = a.inputs[5].dtype == DType::kInt8 ? z_scale : 1.f;
    }
    p.relu = relu;
    p.y = a.outputs[0].data;
    p.y_dtype = a.outputs[0].dtype;
    p.y_scale = y_scale;
    return p;
  }

  static Status upload(const std::vector<float>& v, DeviceBuffer& out) {
    KILN_ASSIGN_OR_RETURN(out, DeviceBuffer::allocate(std::max<size_t>(v.size(), 1) * sizeof(float)));
    if (!v.empty()) KILN_CUDA_CHECK(cudaMemcpy(out.get(), v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice));
    return Status::Ok();
  }
};

// The implicit-GEMM tactics' prefix, and the tile configuration a tactic names (or -1).
inline constexpr const char* kIgemmTactic = "igemm_s8:";
inline int igemm_config(const std::string& t) {
  const std::string prefix = kIgemmTactic;
  if (t.rfind(prefix, 0) != 0) return -1;
  for (int i = 0; i < kernels::kIgemmConfigs; ++i)
    if (t.substr(prefix.size()) == kernels::igemm_s8_config_name(i)) return i;
  return -1;
}

// Whether the fused int8 epilogue's factors are finite: alpha[c] = x_scale * w_scale[c], bias[c]
// and z_scale, each divided by y_scale, as floats. It clamps before it rounds, so a NaN from a
// non-finite factor would become the clamp's lower bound instead of q_epilogue's (and the CPU's) 0.
inline bool int8_epilogue_finite(const Node& n) {
  const double xs = n.inputs[1]->constant->scalar_as_double();
  const float inv_y = 1.0f / static_cast<float>(n.inputs[7]->constant->scalar_as_double());
  auto ok = [&](double v) { return std::isfinite(static_cast<float>(v) * inv_y); };
  if (!std::isfinite(inv_y)) return false;
  for (double w : n.inputs[3]->constant->to_double_vector())
    if (!ok(xs * w)) return false;
  if (n.has_input(4))
    for (double b : n.inputs[4]->constant->to_double_vector())
      if (!ok(b)) return false;
  const bool z_int8 = n.has_input(5) && n.inputs[5]->type.dtype == DType::kInt8;
  return !z_int8 || ok(n.inputs[6]->constant->scalar_as_double());
}

// Whether igemm_s8 applies the node's epilogue itself: Y int8 (with finite factors) or float16,
// the residual (if any) int8 or float16, and M a multiple of 16 (16-byte stores); otherwise it
// writes int32 sums for q_epilogue.
inline bool igemm_fusable(const Node& n, int64_t m) {
  auto kind_ok = [](DType t) { return t == DType::kInt8 || t == DType::kFloat16; };
  const bool z_ok = !n.has_input(5) || kind_ok(n.inputs[5]->type.dtype);
  const DType y = n.outputs[0]->type.dtype;
  return kind_ok(y) && z_ok && kernels::igemm_s8_fusable(m) && (y != DType::kInt8 || int8_epilogue_finite(n));
}

// The tile configuration of a node's "igemm_s8:" tactic, made ready on this device (once, when
// the layer is made); an error naming the node and the tactic where the tile is unknown, its wgmma
// code cannot run here, or `runs(config)` (the layer's geometry test) fails. `what`: "convolution"...
template <class Runs>
Expected<int> prepare_igemm_tactic(const Node& n, const std::string& t, const char* what, Runs runs) {
  const int config = igemm_config(t);
  if (config >= 0 && kernels::igemm_s8_wgmma_config(config) && !kernels::igemm_s8_wgmma_available())
    return unsupported("{}: tactic '{}' needs an sm_90 GPU and a kiln built for sm_90a (rebuild the plan here)",
                       n.describe(), t);
  if (config < 0 || !runs(config)) return unsupported("{}: tactic '{}' does not run this {}", n.describe(), t, what);
  KILN_CUDA_CHECK(kernels::igemm_s8_prepare(config));
  return config;
}

// Runs the implicit GEMM whose geometry `ip` holds: with the epilogue fused (igemm_fusable held;
// `e` is this launch's epilogue), or writing int32 sums to acc (acc_stride per pixel) for q_epilogue.
inline Status launch_igemm(kernels::IgemmS8Params ip, int config, bool fused, const kernels::QEpilogueParams& e,
                           int32_t* acc, int64_t acc_stride, cudaStream_t stream) {
  if (fused) {
    ip.alpha = e.alpha;
    ip.bias = e.bias;
    ip.z_scale = e.z_scale;
    ip.relu = e.relu;
    ip.y_scale = e.y_scale;
    if (e.y_dtype == DType::kInt8) ip.y = static_cast<int8_t*>(e.y);
    else ip.y_h = static_cast<__half*>(e.y);
    if (e.z && e.z_dtype == DType::kInt8) ip.z = static_cast<const int8_t*>(e.z);
    else if (e.z) ip.z_h = static_cast<const __half*>(e.z);
  } else {
    ip.acc = acc;
    ip.acc_stride = acc_stride;
  }
  KILN_CUDA_CHECK(kernels::igemm_s8_conv(ip, config, stream));
  return Status::Ok();
}

}  // namespace kiln::cuda
