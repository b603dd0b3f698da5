#include "build_flags.hpp"

#include <filesystem>
#include <fstream>

#include "backend.hpp"
#include "builder/builder.hpp"
#include "builder/precision_plan.hpp"
#include "cli_util.hpp"
#include "onnx/importer.hpp"
#include "quant/image_io.hpp"
#include "run_inputs.hpp"
#include "runtime/plan_header.hpp"
#include "util/error.hpp"

namespace kiln::cli {

void add_build_flags(CLI::App* cmd, BuildFlags& f, bool with_shapes) {
  cmd->add_option("--backend", f.backend, "cpu, cuda or auto (CUDA when this machine has a usable GPU)")
      ->default_val("auto");
  auto& m = f.model_only;
  m.push_back(cmd->add_flag("--fp16", f.fp16, "Allow float16 layers"));
  m.push_back(cmd->add_flag("--bf16", f.bf16, "Allow bfloat16 layers"));
  m.push_back(cmd->add_flag("--fp8", f.fp8,
                            "FP8 E4M3 GEMMs (CUDA, Hopper) for MatMul/Gemm with constant weights: calibrated on "
                            "--calib-data (or --calib-cache), or from the model's own FP8 Q/DQ; implies --fp16 for "
                            "the rest unless --bf16 (see docs/fp8.md)"));
  m.push_back(cmd->add_flag("--int8", f.int8,
                            "Allow INT8 layers: post-training quantization calibrated on --calib-data (or read from "
                            "--calib-cache; calibration runs the float32 model on --calib-backend); Conv/MatMul/Gemm "
                            "get Q/DQ (see docs/int8.md)"));
  m.push_back(cmd->add_option(
      "--calib-data", f.calib_data,
      "Calibration data folder for --int8, --best and --accuracy-budget. One-input model: every *.npy is one sample (the input's shape without "
      "the batch dim, or with batch 1) or several (leading dim n); all are concatenated in file-name order and cut "
      "into batches of --calib-batch. Several inputs: a subfolder per input name, files matched in sorted order. "
      "With --calib-preprocess: images (.png .jpg .jpeg .ppm .pgm), one sample each"));
  m.push_back(cmd->add_option("--calib-algo", f.calib_algo,
                              "Calibrator: minmax (largest |x|), entropy (TensorRT's KL-divergence threshold) or "
                              "percentile=P (P-th percentile of |x|, e.g. percentile=99.99)")
                  ->default_val("entropy"));
  m.push_back(cmd->add_option("--calib-backend", f.calib_backend,
                              "Where calibration runs the float32 model: cpu (the CPU executor) or cuda (a float32 "
                              "CUDA plan, TF32 off: the same ranges, faster); default: the build's --backend")
                  ->check(CLI::IsMember({"cpu", "cuda"})));
  m.push_back(cmd->add_option("--calib-batch", f.calib_batch,
                              "Samples per calibration batch (a model with a fixed batch dim uses that instead)")
                  ->default_val(1)
                  ->check(CLI::Range(1, 1 << 20)));
  m.push_back(cmd->add_option("--calib-batches", f.calib_batches, "Use at most this many calibration batches (0: all)")
                  ->default_val(0)
                  ->check(CLI::Range(0, 1 << 30)));
  m.push_back(cmd->add_option("--calib-cache", f.calib_cache,
                              "Calibration cache file: used instead of calibrating when it exists and was made with "
                              "the same --calib-algo for this model; else written after calibrating"));
  m.push_back(cmd->add_option(
      "--calib-preprocess", f.calib_preprocess,
      "--calib-data holds images: how to make input tensors of them, e.g. \"resize=224x224,order=RGB,"
      "mean=0.485:0.456:0.406,std=0.229:0.224:0.225,scale=1/255,layout=NCHW\" (pixel*scale, minus mean, divided by "
      "std; resize is bilinear; defaults: the input's H and W, RGB, mean 0, std 1, scale 1/255, NCHW)"));
  m.push_back(cmd->add_flag("--no-tf32", f.no_tf32, "Run float32 layers in full float32 (no TF32 tensor cores)"));
  m.push_back(cmd->add_option("--layer-precision", f.layer_precisions,
                              "NAME:PREC[,NAME:PREC...]: run these nodes in fp32, fp16, bf16, int8 or fp8 (NAME may be "
                              "a glob such as '*/LayerNorm*'; a later match wins; see docs/precision.md)"));
  m.push_back(cmd->add_option("--precision-constraints", f.precision_constraints,
                              "obey: fail the build when a --layer-precision cannot be honoured; prefer: fall back "
                              "with a warning")
                  ->check(CLI::IsMember({"obey", "prefer"}))
                  ->default_val("prefer"));
  m.push_back(cmd->add_flag("--no-fp32-guard", f.no_fp32_guard,
                            "With --fp16/--bf16/--best, also lower the overflow-prone patterns the guard keeps in "
                            "fp32 (sums of squares, Exp feeding a sum, reductions over > 4096 elements)"));
  m.push_back(cmd->add_flag("--best", f.best,
                            "Allow every precision, fastest kept: fp16 (bf16 with --bf16) + tf32, and int8 for large "
                            "Conv/MatMul/Gemm when --calib-data is given"));
  m.push_back(cmd->add_option("--accuracy-budget", f.accuracy_budget,
                              "Keep the most sensitive reduced-precision layers in fp32 until the outputs' mean "
                              "relative L2 error against fp32 is at most this (needs --calib-data)")
                  ->check(CLI::Range(0.0, 1e30)));
  m.push_back(cmd->add_option("--timing-cache", f.timing_cache,
                              "Tactic timing cache file: read, and updated with new timings"));
  m.push_back(cmd->add_option("--workspace", f.workspace_mib, "Most scratch memory one layer may use, in MiB")
                  ->default_val(1024)
                  ->check(CLI::Range(uint64_t{0}, uint64_t{1} << 20)));
  m.push_back(cmd->add_option("--disable-pass", f.disable_passes,
                              "Skip a graph pass by name (repeatable or comma-separated; see `kiln passes`)")
                  ->delimiter(','));
  m.push_back(cmd->add_option("--dump-ir-after", f.dump_ir_after,
                              "Print the graph after this pass ('all': after every pass; repeatable)")
                  ->delimiter(','));
  m.push_back(cmd->add_option("--outputs", f.outputs,
                              "Keep only these graph outputs (comma-separated names); the rest is pruned")
                  ->delimiter(','));
  m.push_back(cmd->add_flag("--fold-random", f.fold_random,
                            "Constant-fold random-number ops with constant inputs (fixes their values in the plan)"));
  const char* range_help =
      " shapes of an optimization profile: NAME:DIMS[,NAME:DIMS...] for every dynamic input. Give "
      "--min-shapes, --opt-shapes and --max-shapes together; repeat the three for more profiles (the i-th of "
      "each makes profile i). Tactics are timed at opt, activation memory is sized for max; the plan then runs "
      "any shape within a profile (e.g. `kiln run PLAN --shapes NAME:DIMS`).";
  m.push_back(cmd->add_option("--min-shapes", f.min_shapes, std::string("Smallest") + range_help));
  m.push_back(cmd->add_option("--opt-shapes", f.opt_shapes, std::string("Typical") + range_help));
  m.push_back(cmd->add_option("--max-shapes", f.max_shapes, std::string("Largest") + range_help));
  if (with_shapes)
    m.push_back(cmd->add_option("--shapes", f.shapes,
                                "NAME:1x3x224x224 fixes an input's shape (repeatable or comma-separated)"));
}

Expected<std::vector<OptimizationProfile>> parse_profiles(const std::vector<std::string>& min,
                                                          const std::vector<std::string>& opt,
                                                          const std::vector<std::string>& max) {
  std::vector<std::map<std::string, Dims>> lists[3];
  const std::vector<std::string>* args[3] = {&min, &opt, &max};
  const char* flag[3] = {"--min-shapes", "--opt-shapes", "--max-shapes"};
  for (int e = 0; e < 3; ++e)
    for (const std::string& arg : *args[e]) {
      auto parsed = parse_shapes({arg});
      if (!parsed.ok()) {
        // parse_shapes names --shapes; say which flag it was.
        std::string msg = parsed.status().message();
        if (msg.rfind("--shapes", 0) == 0) msg = flag[e] + msg.substr(8);
        return invalid_argument("{}", msg);
      }
      std::map<std::string, Dims> m;
      for (auto& [name, dims] : *parsed) m[name] = std::move(dims);
      lists[e].push_back(std::move(m));
    }
  return make_profiles(lists[0], lists[1], lists[2]);
}

Expected<BuildOptions> to_build_options(const BuildFlags& f) {
  KILN_ASSIGN_OR_RETURN(BackendKind kind, parse_backend(f.backend));
  BuildOptions o;
  KILN_ASSIGN_OR_RETURN(o.backend, resolve_backend(kind));
  o.fp16 = f.fp16;
  o.bf16 = f.bf16;
  o.fp8 = f.fp8;
  o.tf32 = !f.no_tf32;
  o.int8 = f.int8;
  // What reads calibration data: INT8 (an FP8 build would join here: same data, ranges and cache),
  // and the precision controls (--best quantizes with it, the accuracy budget measures with it).
  const bool calibrated = f.int8 || f.fp8 || f.best || f.accuracy_budget >= 0 || !f.layer_precisions.empty();
  const bool calib_given = !f.calib_data.empty() || !f.calib_cache.empty() || !f.calib_preprocess.empty() ||
                           !f.calib_backend.empty();
  if (!calibrated && calib_given)
    return invalid_argument("--calib-data, --calib-cache, --calib-preprocess and --calib-backend apply to --int8, "
                            "--fp8, --best, --layer-precision and --accuracy-budget builds");
  if (f.int8 && f.calib_data.empty() && f.calib_cache.empty())
    return invalid_argument("--int8 needs calibration: give --calib-data DIR (and --calib-cache FILE to keep the "
                            "ranges), or an existing --calib-cache FILE");
  if (calibrated) {
    KILN_RETURN_IF_ERROR(parse_calibration_algorithm(f.calib_algo));
    o.calibration.algorithm = f.calib_algo;
    o.calibration.cache = f.calib_cache;
    if (!f.calib_backend.empty()) {  // asked for: checked now (a CPU-only build or machine has no cuda)
      KILN_ASSIGN_OR_RETURN(o.calibration.backend, check_calibration_backend(f.calib_backend));
    }
    o.calibration.data.dir = f.calib_data;
    o.calibration.data.batch = f.calib_batch;
    o.calibration.data.max_batches = f.calib_batches;
    if (!f.calib_preprocess.empty()) {
      KILN_ASSIGN_OR_RETURN(ImagePreprocess p, parse_image_preprocess(f.calib_preprocess));
      o.calibration.data.image = p;
    }
  }
  KILN_ASSIGN_OR_RETURN(o.layer_precisions, parse_layer_precisions(f.layer_precisions));
  o.precision_constraints = f.precision_constraints;
  o.fp32_guard = !f.no_fp32_guard;
  o.best = f.best;
  o.accuracy_budget = f.accuracy_budget;
  if (o.accuracy_budget >= 0 && f.calib_data.empty())
    return invalid_argument("--accuracy-budget needs calibration data to measure with: give --calib-data DIR");
  if (o.accuracy_budget >= 0 && !o.fp16 && !o.bf16 && !o.best)
    return invalid_argument("--accuracy-budget chooses which reduced-precision layers stay fp32: give --fp16, --bf16 "
                            "or --best");
  o.timing_cache = f.timing_cache;
  o.workspace_bytes = f.workspace_mib << 20;
  o.disabled_passes.insert(f.disable_passes.begin(), f.disable_passes.end());
  o.dump_ir_after.insert(f.dump_ir_after.begin(), f.dump_ir_after.end());
  o.outputs = f.outputs;
  o.fold_random = f.fold_random;
  KILN_ASSIGN_OR_RETURN(auto shapes, parse_shapes(f.shapes));
  for (auto& [name, dims] : shapes) o.input_shapes[name] = std::move(dims);
  KILN_ASSIGN_OR_RETURN(o.profiles, parse_profiles(f.min_shapes, f.opt_shapes, f.max_shapes));
  return o;
}

bool is_plan_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[sizeof(plan_detail::kMagic)] = {};
  if (!in.read(magic, sizeof(magic))) return false;
  return std::equal(magic, magic + sizeof(magic), plan_detail::kMagic);
}

Status check_input_path(const std::string& path, const char* what) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return not_found("{} '{}' does not exist", what, path);
  if (std::filesystem::is_directory(path, ec)) return invalid_argument("{} '{}' is a folder, not a file", what, path);
  return Status::Ok();
}

Expected<LoadedPlan> load_or_build_plan(const std::string& path, const BuildFlags& flags, BuildOptions options,
                                        const BeforeBuild& before_build) {
  KILN_RETURN_IF_ERROR(check_input_path(path, "model or plan"));
  LoadedPlan out;
  if (is_plan_file(path)) {
    for (const CLI::Option* o : flags.model_only)
      if (o->count() > 0)
        return invalid_argument("{} applies when compiling a model; '{}' is a plan, built already", o->get_name(),
                                path);
    Timer t;
    KILN_ASSIGN_OR_RETURN(out.plan, load_plan(path));
    out.load_ms = t.ms();
    if (flags.backend != "auto" && flags.backend != out.plan.target.backend)
      return invalid_argument("'{}' is a plan for the {} backend: --backend {} does not apply (rebuild the model "
                              "for another backend)",
                              path, out.plan.target.backend, flags.backend);
    return out;
  }
  Timer t_import;
  auto model = import_onnx_file(path);
  if (!model.ok()) {
    Status st = model.status();
    if (st.message().find(path) == std::string::npos) st.add_context("cannot import '" + path + "'");
    return st;
  }
  out.import_ms = t_import.ms();
  if (before_build) KILN_RETURN_IF_ERROR(before_build(*model->graph, options));
  // The precision controls run the model on calibration batches (the conventions of --int8's data).
  if (!flags.calib_data.empty() && (options.best || options.accuracy_budget >= 0 || !options.layer_precisions.empty())) {
    CalibrationDataOptions d = options.calibration.data;
    if (!d.log) d.log = options.log;
    if (options.accuracy_budget >= 0 && !options.best && options.layer_precisions.empty())
      d.max_batches = options.accuracy_max_batches;  // all the budget reads
    KILN_ASSIGN_OR_RETURN(options.calibration_batches, load_calibration_batches(*model->graph, d));
  }
  Timer t_build;
  KILN_ASSIGN_OR_RETURN(out.plan, build_plan(std::move(model).value(), options));
  out.build_ms = t_build.ms();
  out.built = true;
  return out;
}

}  // namespace kiln::cli
