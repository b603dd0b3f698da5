// The build options shared by the subcommands that compile a model (`build`, and `run`, `bench`,
// `inspect` when given a model instead of a plan), and loading a plan-or-model argument.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "builder/build_options.hpp"
#include "runtime/plan.hpp"

namespace kiln::cli {

struct BuildFlags {
  std::string backend = "auto";
  bool fp16 = false, bf16 = false, fp8 = false, no_tf32 = false;
  // Mixed precision (docs/precision.md).
  std::vector<std::string> layer_precisions;  // NAME:PREC[,...], repeatable
  std::string precision_constraints = "prefer";
  bool no_fp32_guard = false, best = false;
  double accuracy_budget = -1;
  std::vector<std::string> shapes;  // NAME:1x3x224x224[,...], repeatable
  // Optimization profiles: the i-th --min-shapes/--opt-shapes/--max-shapes make profile i.
  std::vector<std::string> min_shapes, opt_shapes, max_shapes;
  std::string timing_cache;
  uint64_t workspace_mib = 1024;
  std::vector<std::string> disable_passes, dump_ir_after, outputs;  // repeatable or comma-separated
  bool fold_random = false;
  // --int8 and calibration.
  bool int8 = false;
  std::string calib_data, calib_algo = "entropy", calib_cache, calib_preprocess;
  std::string calib_backend;  // --calib-backend cpu|cuda (empty: the build's --backend)
  int calib_batch = 1, calib_batches = 0;
  // Options that only mean something when a model is compiled (an error with a plan).
  std::vector<CLI::Option*> model_only;
};

// --backend, --fp16, --bf16, --no-tf32, --timing-cache, --workspace, --disable-pass,
// --dump-ir-after, --outputs, --fold-random; --shapes when `with_shapes`
// (`run` and `bench` declare their own --shapes, which also shapes their random inputs).
void add_build_flags(CLI::App* cmd, BuildFlags& flags, bool with_shapes = true);

// The flags as BuildOptions: `auto` resolved to the backend this machine can run, --shapes parsed.
Expected<BuildOptions> to_build_options(const BuildFlags& flags);

// --min-shapes/--opt-shapes/--max-shapes as profiles (the i-th of each makes profile i; every
// input named in one of a profile's three lists must be in all three).
Expected<std::vector<OptimizationProfile>> parse_profiles(const std::vector<std::string>& min,
                                                          const std::vector<std::string>& opt,
                                                          const std::vector<std::string>& max);

// Whether the file starts with the plan magic "KILNPLAN" (false for a missing or short file).
bool is_plan_file(const std::string& path);

// A model or plan path that can be read: an error naming it when missing or a folder.
Status check_input_path(const std::string& path, const char* what);

// A plan from `path`: read when it is a plan file (build-only flags are then an error), else the
// ONNX model is imported and built with `options` (progress through options.log). `before_build`
// sees the imported graph first and may adjust the options (e.g. input shapes from input data).
struct LoadedPlan {
  Plan plan;
  bool built = false;  // compiled from a model just now
  double import_ms = 0, build_ms = 0, load_ms = 0;
};
using BeforeBuild = std::function<Status(const Graph& imported, BuildOptions& options)>;
Expected<LoadedPlan> load_or_build_plan(const std::string& path, const BuildFlags& flags, BuildOptions options,
                                        const BeforeBuild& before_build = {});

}  // namespace kiln::cli
