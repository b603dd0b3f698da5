// The CUDA backend: which nodes it runs, kernel (tactic) choice by timing, and engines.
#include <algorithm>
#include <random>

#include "backends/cuda/cuda_engine.hpp"
#include "backends/cuda/device_info.hpp"
#include "builder/backend.hpp"
#include "backends/cuda/tactic_timer.hpp"
#include "backends/cuda/layers/fused_ew_codegen.hpp"

namespace kiln::cuda {

namespace {

class CudaBackend : public Backend {
 public:
  std::string name() const override { return "cuda"; }
  Status available() const override { return device_available(); }
  PlanTarget target() const override {
    auto t = current_target();
    return t.ok() ? *t : PlanTarget{.backend = "cuda"};
  }
  Status check_target(const PlanTarget& plan) const override {
    KILN_ASSIGN_OR_RETURN(PlanTarget here, current_target());
    if (plan.compute_capability != here.compute_capability)
      return unsupported("the plan was built for compute capability {}.{} ({}), but this GPU is {}.{} ({}): "
                         "rebuild the plan on this GPU",
                         plan.compute_capability / 10, plan.compute_capability % 10, plan.device_name,
                         here.compute_capability / 10, here.compute_capability % 10, here.device_name);
    if (plan.cudnn_version / 10000 != here.cudnn_version / 10000 ||
        plan.cublas_version / 10000 != here.cublas_version / 10000)
      return unsupported("the plan was built with cuDNN {} / cuBLAS {}, this machine has cuDNN {} / cuBLAS {}: "
                         "rebuild the plan here",
                         plan.cudnn_version, plan.cublas_version, here.cudnn_version, here.cublas_version);
    return Status::Ok();
  }
  bool supports(const Node& n) const override {
    // String tensors live on the host only: no CUDA layer reads or writes them.
    for (const auto* values : {&n.inputs, &n.outputs})
      for (const Value* v : *values)
        if (v && v->type.dtype == DType::kString) return false;
    const CudaLayerFactory* f = find_cuda_layer(n);
    return f && f->supports && f->supports(n);
  }
  bool needs_static_shapes() const override { return true; }

  Status choose_layers(const Graph& g, const BuildOptions& options, std::vector<LayerChoice>& layers) const override {
    TacticTimer timer(options.timing_cache);
    KILN_RETURN_IF_ERROR(timer.load());
    layers.clear();
    size_t timed = 0;
    for (const auto& n : g.nodes()) {
      // Generated kernels are compiled now, into the node (so into the plan).
      if (Status st = prepare_fused_elementwise(const_cast<Node&>(*n), options); !st.ok())
        return st.add_context(n->describe());
      LayerChoice choice;
      choice.precision = layer_precision(*n, options.tf32);
      const CudaLayerFactory* f = find_cuda_layer(*n);
      std::vector<std::string> tactics = f->tactics ? f->tactics(*n, options) : std::vector<std::string>{};
      if (tactics.size() > 1) {
        KILN_ASSIGN_OR_RETURN(choice.tactic, timer.fastest(*n, *f, choice.precision, tactics));
        ++timed;
        if (options.log && timed % 10 == 0) options.log(fmt::format("      timed {} layers", timed));
      } else if (tactics.size() == 1) {
        choice.tactic = tactics[0];
      }
      layers.push_back(choice);
    }
    return timer.save();
  }

  Expected<std::vector<Dims>> max_output_dims(const Node& n) const override {
    const CudaLayerFactory* f = find_cuda_layer(n);
    if (!f) return unsupported("no CUDA layer for this op (its output shape depends on input values)");
    if (!f->max_output_dims || !f->output_dims)
      return unsupported("its output shape depends on values computed on the device (an input fed by a "
                         "data-dependent op, or not a constant); the CUDA backend resolves such shapes only at "
                         "NonZero, NonMaxSuppression and TopK outputs (run this model on the CPU backend)");
    if (f->supports && !f->supports(n)) return unsupported("the CUDA layer does not support this node");
    return f->max_output_dims(n);
  }

  Expected<std::unique_ptr<EngineImpl>> create_engine(const Plan& plan) const override {
    KILN_ASSIGN_OR_RETURN(auto e, CudaEngine::create(plan));
    return std::unique_ptr<EngineImpl>(std::move(e));
  }

};

}  // namespace
}  // namespace kiln::cuda

KILN_REGISTER_BACKEND(kiln::cuda::CudaBackend);
