// `kiln bench PLAN|MODEL`: trtexec-style throughput and latency measurement. A model is built in
// memory first (for the shapes of its inputs); then N streams run inferences back to back.
//
// --warmup is in milliseconds (as trtexec's --warmUp): each stream runs untimed inferences that
// long (at least one: it also captures the CUDA graph). The timed phase then lasts until every
// stream has done --iterations inferences and --duration seconds have passed.
#include <cstdio>

#include "bench_loop.hpp"
#include "bench_report.hpp"
#include "build_flags.hpp"
#include "cli_util.hpp"
#include "commands.hpp"
#include "io/file.hpp"
#include "plan_info.hpp"
#include "run_inputs.hpp"
#include "util/error.hpp"

namespace kiln::cli {

namespace {

struct BenchOptions {
  std::string path;
  BuildFlags build;
  InputOptions inputs;
  BenchSettings settings;
  bool no_data_transfers = false;
  std::string export_times, export_profile, export_layer_info;
  bool verbose = false;  // per-pass timings when a model is built
  int64_t profile_iterations = 0;  // 0: as many as --iterations (at least 10)
};

Status write_json(const std::string& path, const nlohmann::ordered_json& doc, const char* what) {
  Status st = write_file_atomic(path, doc.dump(2) + "\n");
  if (!st.ok()) return st.add_context(what);
  std::printf("wrote %s to %s\n", what, path.c_str());
  return Status::Ok();
}

Status bench(BenchOptions opt) {
  opt.settings.data_transfers = !opt.no_data_transfers;
  KILN_ASSIGN_OR_RETURN(BuildOptions options, to_build_options(opt.build));
  options.pass_log = opt.verbose;
  options.log = [](std::string_view line) {
    std::printf("%.*s\n", static_cast<int>(line.size()), line.data());
    std::fflush(stdout);
  };
  if (opt.settings.cuda_graph && !is_plan_file(opt.path) && options.backend != "cuda")
    return invalid_argument("--cuda-graph needs the CUDA backend (this run uses {})", options.backend);

  std::vector<BoundInput> bound;
  // A model's plan is built for the inputs' shapes (from files, --shapes or the model).
  auto before_build = [&](const Graph& g, BuildOptions& o) -> Status {
    KILN_ASSIGN_OR_RETURN(bound, prepare_inputs(g, opt.inputs));
    for (const BoundInput& b : bound)
      if (!in_profiles(o, b.name)) o.input_shapes[b.name] = b.tensor.dims();
    return Status::Ok();
  };
  KILN_ASSIGN_OR_RETURN(LoadedPlan loaded, load_or_build_plan(opt.path, opt.build, options, before_build));
  if (opt.settings.cuda_graph && loaded.plan.target.backend != "cuda")
    return invalid_argument("--cuda-graph needs the CUDA backend ('{}' is a {} plan)", opt.path,
                            loaded.plan.target.backend);
  if (!loaded.built) {
    KILN_ASSIGN_OR_RETURN(bound, prepare_inputs(*loaded.plan.graph, opt.inputs));
  }
  std::map<std::string, Tensor> feeds;
  for (const BoundInput& in : bound) {
    std::string source = in.file.empty() ? fmt::format("random (seed {})", opt.inputs.seed) : "from " + in.file;
    std::printf("input  '%s': %s  %s\n", in.name.c_str(), in.tensor.describe().c_str(), source.c_str());
    feeds[in.name] = in.tensor;
  }

  BenchContext ctx;
  ctx.source = opt.path;
  ctx.backend = loaded.plan.target.backend;
  ctx.settings = opt.settings;
  if (!bound.empty() && bound[0].tensor.rank() > 0) ctx.batch = bound[0].tensor.dims()[0];
  if (ctx.backend == "cuda") {
    // The ops after which a CUDA plan syncs: those whose output size is still unknown in the plan.
    for (const auto& n : loaded.plan.graph->nodes()) {
      if (n->op_type != "NonZero" && n->op_type != "NonMaxSuppression" && n->op_type != "TopK") continue;
      if (n->op_type == "TopK" && n->has_input(1) && n->inputs[1]->is_constant()) continue;
      for (const Value* o : n->outputs)
        if (o && !o->type.shape.is_static()) {
          ctx.sync_layers.push_back(fmt::format("{} '{}'", n->op_type, n->name));
          break;
        }
    }
  }
  if (!opt.export_layer_info.empty())
    KILN_RETURN_IF_ERROR(write_json(opt.export_layer_info, plan_json(loaded.plan, opt.path), "layer info"));

  auto engine = Engine::from_plan(loaded.plan);
  if (!engine.ok()) return Status(engine.status()).add_context(opt.path);
  if (ctx.backend == "cuda") {
    ctx.weight_bytes = (*engine)->impl().weight_bytes();
    ctx.context_bytes = (*engine)->impl().context_bytes();
  } else {
    ctx.weight_bytes = plan_weight_bytes(loaded.plan);
  }

  KILN_ASSIGN_OR_RETURN(BenchResult result, run_bench(**engine, feeds, opt.settings));
  print_summary(ctx, result);
  if (!opt.export_times.empty()) KILN_RETURN_IF_ERROR(write_json(opt.export_times, times_json(ctx, result), "times"));
  if (!opt.export_profile.empty()) {
    int64_t n = opt.profile_iterations > 0 ? opt.profile_iterations : std::max<int64_t>(opt.settings.iterations, 10);
    KILN_ASSIGN_OR_RETURN(LayerProfile profile, profile_layers(**engine, feeds, n));
    print_profile_top(loaded.plan, profile, 10);
    KILN_RETURN_IF_ERROR(write_json(opt.export_profile, profile_json(ctx, loaded.plan, profile), "layer profile"));
  }
  return Status::Ok();
}

}  // namespace

void add_bench_command(CLI::App& app, Action& action) {
  auto opt = std::make_shared<BenchOptions>();
  auto* cmd = app.add_subcommand("bench", "Measure throughput and latency of a plan or model (like trtexec)");
  cmd->add_option("path", opt->path, "A plan file, or an ONNX model to build in memory first")->required();
  add_build_flags(cmd, opt->build, /*with_shapes=*/false);
  cmd->add_option("--input,-i", opt->inputs.inputs, "NAME=FILE: an input from a .npy or .pb file (repeatable)");
  cmd->add_option("--shapes", opt->inputs.shapes,
                  "NAME:1x3x224x224: shape of a random input with dynamic dims (and of the plan built for a model)");
  cmd->add_option("--seed", opt->inputs.seed, "Seed of the random inputs")->default_val(42);
  BenchSettings& s = opt->settings;
  cmd->add_option("--warmup", s.warmup_ms, "Untimed warm-up per stream, in milliseconds (at least one inference)")
      ->default_val(200)
      ->check(CLI::Range(0.0, 1e7));
  cmd->add_option("--iterations", s.iterations, "At least this many timed inferences per stream")
      ->default_val(10)
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  cmd->add_option("--duration", s.duration_s, "Time for at least this many seconds")
      ->default_val(3)
      ->check(CLI::Range(0.0, 1e6));
  cmd->add_option("--streams", s.streams, "Contexts running at once, each on its own thread (and CUDA stream)")
      ->default_val(1)
      ->check(CLI::Range(1, 256));
  cmd->add_flag("--verbose,-v", opt->verbose, "Print per-pass timings when building a model");
  cmd->add_flag("--cuda-graph", s.cuda_graph, "Capture the layers into a CUDA graph and replay it");
  cmd->add_flag("--no-data-transfers", opt->no_data_transfers,
                "Copy the inputs in once; time only the layers (no per-inference copies)");
  cmd->add_option("--export-times", opt->export_times, "Write every timed inference and the summary to this JSON file");
  cmd->add_option("--export-profile", opt->export_profile,
                  "Time each layer in a separate run (GPU events between layers) and write them to this JSON file");
  cmd->add_option("--profile-iterations", opt->profile_iterations,
                  "Inferences of the --export-profile run (default: --iterations, at least 10)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  cmd->add_option("--export-layer-info", opt->export_layer_info,
                  "Write the plan's layers (op, precision, tactic, shapes) to this JSON file");
  cmd->callback([&action, opt] {
    action = [opt] {
      Status st = bench(*opt);
      return st.ok() ? 0 : report_error(st);
    };
  });
}

}  // namespace kiln::cli
