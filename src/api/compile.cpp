// The public API's model compilation (kiln::compile, InferEngine::build): lives in libkiln_onnx
// with the importer, so that programs that only run plans need no protobuf.
#include "builder/backend.hpp"
#include "builder/builder.hpp"
#include "kiln/kiln.hpp"
#include "onnx/importer.hpp"
#include "runtime/engine.hpp"
#include "util/error.hpp"

namespace kiln {

namespace {

Expected<Plan> build_from_file(const std::string& model_path, const CompileOptions& c) {
  BuildOptions o;
  o.backend = c.backend;
  if (c.backend == "auto") {
    const Backend* cuda = find_backend("cuda");
    o.backend = cuda && cuda->available().ok() ? "cuda" : "cpu";
  }
  o.fp16 = c.fp16;
  o.bf16 = c.bf16;
  o.tf32 = c.tf32;
  for (const auto& [name, dims] : c.input_shapes) o.input_shapes[name] = dims;
  for (const auto& profile : c.profiles) {
    OptimizationProfile p;
    for (const auto& [name, r] : profile) p.inputs[name] = ProfileShapes{r.min, r.opt, r.max};
    o.profiles.push_back(std::move(p));
  }
  o.workspace_bytes = c.workspace_bytes;
  o.timing_cache = c.timing_cache;
  o.log = c.log;
  auto model = import_onnx_file(model_path);
  if (!model.ok()) {
    Status st = model.status();
    if (st.message().find(model_path) == std::string::npos) st.add_context("cannot import '" + model_path + "'");
    return st;
  }
  auto plan = build_plan(std::move(model).value(), o);
  if (!plan.ok()) return Status(plan.status()).add_context(model_path);
  return plan;
}

}  // namespace

Status compile(const std::string& model_path, const std::string& plan_path, const CompileOptions& options) {
  KILN_ASSIGN_OR_RETURN(Plan plan, build_from_file(model_path, options));
  return save_plan(plan, plan_path);
}

Expected<std::shared_ptr<InferEngine>> InferEngine::build(const std::string& model_path,
                                                          const CompileOptions& options) {
  KILN_ASSIGN_OR_RETURN(Plan plan, build_from_file(model_path, options));
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<Engine> engine, Engine::from_plan(std::move(plan)));
  return std::shared_ptr<InferEngine>(new InferEngine(std::move(engine)));
}

}  // namespace kiln
