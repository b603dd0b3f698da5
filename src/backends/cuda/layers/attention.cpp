// CUDA layer of kiln.Attention (kernels in attention.cu): the node's geometry (ops/attention.hpp)
// becomes the kernel's strided views; the mask is broadcast through its strides.
#include "backends/cuda/layers/attention_kernels.hpp"
#include "backends/cuda/layers/ew_layer_util.hpp"
#include "ops/attention.hpp"

namespace kiln::cuda {
namespace {

std::optional<AttentionArgs> plan_for(const Node& n) {
  if (!n.has_input(0) || !n.has_input(1) || !n.has_input(2) || !n.has_output(0)) return std::nullopt;
  const DType t = value_dtype(n.inputs[0]);
  if (value_dtype(n.outputs[0]) != t) return std::nullopt;
  auto geo = attention_geometry(n);
  if (!geo.ok() || !attention_supported(t, static_cast<int>(geo->d), static_cast<int>(geo->dv))) return std::nullopt;
  for (size_t i = 1; i < n.inputs.size(); ++i)
    if (n.has_input(i) && value_dtype(n.inputs[i]) != (i == 3 && geo->mask_fill ? DType::kBool : t))
      return std::nullopt;
  const AttentionGeometry& g = *geo;
  auto qd = static_dims(n.inputs[0]), kd = static_dims(n.inputs[1]), vd = static_dims(n.inputs[2]),
       od = static_dims(n.outputs[0]);
  if (!qd || !kd || !vd || !od || *od != g.out_shape) return std::nullopt;
  if (!attention_view_fits(g.q, {g.batch, g.heads, g.sq, g.d}, dims_numel(*qd)) ||
      !attention_view_fits(g.k, {g.batch, g.heads, g.sk, g.d}, dims_numel(*kd)) ||
      !attention_view_fits(g.v, {g.batch, g.heads, g.sk, g.dv}, dims_numel(*vd)))
    return std::nullopt;
  AttentionArgs a;
  a.batch = g.batch, a.heads = g.heads, a.sq = g.sq, a.sk = g.sk;
  a.d = static_cast<int>(g.d), a.dv = static_cast<int>(g.dv);
  a.q_off = g.q.offset, a.k_off = g.k.offset, a.v_off = g.v.offset;
  for (int i = 0; i < 4; ++i) {
    a.qs[i] = g.q.stride[static_cast<size_t>(i)];
    a.ks[i] = g.k.stride[static_cast<size_t>(i)];
    a.vs[i] = g.v.stride[static_cast<size_t>(i)];
    a.ys[i] = g.out.stride[static_cast<size_t>(i)];
  }
  if (n.has_input(3)) {
    auto md = static_dims(n.inputs[3]);
    if (!md) return std::nullopt;
    auto ms = attention_mask_strides(g, *md);
    if (!ms) return std::nullopt;
    for (int i = 0; i < 4; ++i) a.ms[i] = (*ms)[static_cast<size_t>(i)];
  }
  a.scale = g.scale;
  a.nan_to_zero = g.nan_to_zero;
  a.mask_is_fill = g.mask_fill.has_value();
  a.mask_fill = g.mask_fill.value_or(0.f);
  return a;
}

class AttentionLayer : public CudaLayer {
 public:
  AttentionLayer(DType t, AttentionArgs a) : t_(t), a_(a) {}
  Status enqueue(const LaunchArgs& args) const override {
    AttentionArgs a = a_;
    a.q = args.inputs[0].data, a.k = args.inputs[1].data, a.v = args.inputs[2].data;
    a.mask = args.inputs.size() > 3 ? args.inputs[3].data : nullptr;
    a.y = args.outputs[0].data;
    KILN_CUDA_CHECK(launch_attention(t_, a, args.stream));
    return Status::Ok();
  }

 private:
  DType t_;
  AttentionArgs a_;
};

// The flash kernel's variants (64 or 128 query rows per CTA; 2 or, for d <= 64, 4 K/V tiles in
// flight) and the WMMA kernel, timed by the builder, where the flash kernel applies (its pointer alignment is checked at enqueue: the arena's buffers are aligned, and a
// launch falls back to the other kernels otherwise).
std::vector<std::string> attention_tactics(const Node& n, const BuildOptions&) {
  auto a = plan_for(n);
  if (!a) return {};
  alignas(16) static unsigned char aligned[16];
  a->q = a->k = a->v = aligned;
  a->y = aligned;
  if (!attention_flash_eligible(value_dtype(n.inputs[0]), *a)) return {};
  if (a->d > 64) return {"flash64", "flash128", "wmma"};
  return {"flash64", "flash128", "flash64s4", "flash128s4", "wmma"};
}

Expected<std::unique_ptr<CudaLayer>> create_attention(const Node& n, const LayerChoice& choice) {
  auto a = plan_for(n);
  if (!a) return unsupported("{}: not supported on CUDA", n.describe());
  const std::string& t = choice.tactic;
  if (t == "flash64" || t == "flash128" || t == "flash64s4" || t == "flash128s4") {
    a->flash_rows = t.starts_with("flash64") ? 64 : 128;
    a->flash_stages = t.ends_with("s4") ? 4 : 2;
    if (a->flash_stages == 4 && a->d > 64)
      return unsupported("{}: attention tactic '{}' needs head dim <= 64", n.describe(), t);
  } else if (t == "wmma") {
    a->no_flash = true;
  } else if (!t.empty()) {
    return unsupported("{}: unknown attention tactic '{}'", n.describe(), t);
  }
  return std::unique_ptr<CudaLayer>(std::make_unique<AttentionLayer>(value_dtype(n.inputs[0]), *a));
}

}  // namespace
}  // namespace kiln::cuda

KILN_REGISTER_CUDA_LAYER("kiln.Attention",
                         kiln::cuda::CudaLayerFactory{
                             .supports = [](const kiln::Node& n) { return kiln::cuda::plan_for(n).has_value(); },
                             .tactics = kiln::cuda::attention_tactics,
                             .create = kiln::cuda::create_attention,
                         });
