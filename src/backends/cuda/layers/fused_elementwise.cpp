// CUDA layer of kiln.FusedElementwise: at build time (prepare_fused_elementwise, called by the
// backend's choose_layers) the program's kernel source (fused_ew_codegen.cpp) is compiled with
// NVRTC for this GPU's exact architecture (sm_90a on Hopper) and the node keeps the cubin and the
// source as attributes (kiln_cubin: a uint8 tensor, stored in the plan's weights section;
// kiln_source), so they travel in the plan with the layer. At engine load the cubin becomes a
// module through the driver API (cuModuleLoadData; no NVRTC), and enqueue launches it with
// cuLaunchKernel (CUDA graph capture works as for any launch on the stream). A node without a
// cubin (plans whose graph the builder specialized per shape: data-dependent or profiled shapes)
// is compiled when the engine creates the layer. A process-wide cache keyed by architecture +
// source compiles identical groups once.
#include <cuda.h>
#include <nvrtc.h>

#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "backends/cuda/layers/ew_kernels.hpp"
#include "backends/cuda/layers/ew_layer_util.hpp"
#include "backends/cuda/layers/fused_ew_codegen.hpp"

namespace kiln::cuda {

namespace {

std::mutex g_cache_mutex;
std::map<std::string, std::string>& cubin_cache() {
  static std::map<std::string, std::string> cache;
  return cache;
}
int64_t g_compiles = 0;

// The driver API functions used here, from the runtime's driver entry points (so libkiln_cuda
// does not link libcuda itself: the runtime finds the driver, as for every other CUDA call).
struct Driver {
  CUresult (*module_load_data)(CUmodule*, const void*) = nullptr;
  CUresult (*module_get_function)(CUfunction*, CUmodule, const char*) = nullptr;
  CUresult (*module_unload)(CUmodule) = nullptr;
  CUresult (*launch_kernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                            CUstream, void**, void**) = nullptr;
  CUresult (*get_error_name)(CUresult, const char**) = nullptr;
  Status status;
};

template <typename F>
Status entry_point(const char* name, F& fn) {
  void* p = nullptr;
  cudaDriverEntryPointQueryResult q{};
  cudaError_t e = cudaGetDriverEntryPointByVersion(name, &p, 12000, cudaEnableDefault, &q);
  if (e != cudaSuccess || q != cudaDriverEntryPointSuccess || !p)
    return make_error(StatusCode::kRuntimeError, "the CUDA driver has no {} ({})", name, cudaGetErrorString(e));
  fn = reinterpret_cast<F>(p);
  return Status::Ok();
}

const Driver& driver() {
  static const Driver d = [] {
    Driver r;
    for (Status st : {entry_point("cuModuleLoadData", r.module_load_data),
                      entry_point("cuModuleGetFunction", r.module_get_function),
                      entry_point("cuModuleUnload", r.module_unload), entry_point("cuLaunchKernel", r.launch_kernel),
                      entry_point("cuGetErrorName", r.get_error_name)})
      if (!st.ok() && r.status.ok()) r.status = st;
    return r;
  }();
  return d;
}

Status check_cu(CUresult r, const char* what) {
  if (r == CUDA_SUCCESS) return Status::Ok();
  const char* name = nullptr;
  if (driver().get_error_name) driver().get_error_name(r, &name);
  return make_error(StatusCode::kRuntimeError, "{}: CUDA driver error {} ({})", what, static_cast<int>(r),
                    name ? name : "?");
}
#define KILN_CU_CHECK(expr) KILN_RETURN_IF_ERROR(check_cu((expr), #expr))

Status check_nvrtc(nvrtcResult r, const char* what) {
  if (r == NVRTC_SUCCESS) return Status::Ok();
  return make_error(StatusCode::kRuntimeError, "{}: NVRTC error {}", what, nvrtcGetErrorString(r));
}

Expected<std::string> gpu_arch() {
  int dev = 0, major = 0, minor = 0;
  KILN_CUDA_CHECK(cudaGetDevice(&dev));
  KILN_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  KILN_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
  // The "a" targets (architecture-specific features) exist from sm_90 on; the cubin runs on this
  // exact GPU only, which the plan's target check enforces anyway.
  return fmt::format("sm_{}{}{}", major, minor, major >= 9 ? "a" : "");
}

Expected<std::string> compile(const std::string& source, const std::string& arch, const BuildOptions& options) {
  const std::string key = arch + "\n" + source;
  {
    std::lock_guard<std::mutex> lock(g_cache_mutex);
    auto it = cubin_cache().find(key);
    if (it != cubin_cache().end()) return it->second;
  }
  const auto start = std::chrono::steady_clock::now();
  nvrtcProgram prog = nullptr;
  KILN_RETURN_IF_ERROR(check_nvrtc(nvrtcCreateProgram(&prog, source.c_str(), "kiln_fused_elementwise.cu", 0,
                                                      nullptr, nullptr), "nvrtcCreateProgram"));
  std::unique_ptr<nvrtcProgram, void (*)(nvrtcProgram*)> guard(&prog, [](nvrtcProgram* p) { nvrtcDestroyProgram(p); });
  const std::string arch_opt = "--gpu-architecture=" + arch;
  // No FMA contraction: each instruction rounds as a separate kernel would, and the CPU reference
  // (which has no FMA here) stays within an ulp.
  const char* opts[] = {arch_opt.c_str(), "--fmad=false", "--std=c++17", "-default-device"};
  const nvrtcResult r = nvrtcCompileProgram(prog, 4, opts);
  if (r != NVRTC_SUCCESS) {
    size_t n = 0;
    nvrtcGetProgramLogSize(prog, &n);
    std::string log(n, '\0');
    if (n) nvrtcGetProgramLog(prog, log.data());
    if (log.size() > 2000) log = log.substr(0, 2000) + "...";
    return make_error(StatusCode::kRuntimeError, "NVRTC could not compile the fused elementwise kernel for {}: {}\n{}",
                      arch, nvrtcGetErrorString(r), log);
  }
  size_t size = 0;
  KILN_RETURN_IF_ERROR(check_nvrtc(nvrtcGetCUBINSize(prog, &size), "nvrtcGetCUBINSize"));
  std::string cubin(size, '\0');
  KILN_RETURN_IF_ERROR(check_nvrtc(nvrtcGetCUBIN(prog, cubin.data()), "nvrtcGetCUBIN"));
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (options.log)
    options.log(fmt::format("      nvrtc: fused elementwise kernel compiled for {} in {:.1f} ms ({} bytes)", arch, ms,
                            cubin.size()));
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  ++g_compiles;
  cubin_cache().emplace(key, cubin);
  return cubin;
}

// The node's program and its kernel source.
struct Generated {
  fused_ew::Program prog;
  FusedEwSource src;
};


// Output dims merged where every input allows it, with each input's element strides (0 where it
// broadcasts): merge_broadcast_dims, for up to kFusedEwMaxRank merged dims.
struct Geometry {
  std::vector<int64_t> dims;
  std::vector<std::vector<int64_t>> strides;  // [input][dim]
  int64_t numel = 0;
};

bool make_geometry(const Dims& out, const std::vector<Dims>& inputs, Geometry& g) {
  g = Geometry{};
  if (!merge_broadcast_dims(out, inputs, g.dims, g.strides)) return false;
  g.numel = dims_numel(out);
  return g.dims.size() <= static_cast<size_t>(kFusedEwMaxRank);
}

bool node_geometry(const Node& n, Geometry& g) {
  auto out = static_dims(n.has_output(0) ? n.outputs[0] : nullptr);
  if (!out) return false;
  std::vector<Dims> ins;
  for (const Value* v : n.inputs) {
    auto d = static_dims(v);
    if (!d) return false;
    ins.push_back(std::move(*d));
  }
  for (const Value* v : n.outputs)
    if (static_dims(v) != out) return false;
  return make_geometry(*out, ins, g);
}

Expected<Generated> generate(const Node& n) {
  KILN_ASSIGN_OR_RETURN(fused_ew::Program prog, fused_ew::parse_program(n.attrs.s("program", "")));
  std::vector<DType> ins, outs;
  for (const Value* v : n.inputs) ins.push_back(value_dtype(v));
  for (const Value* v : n.outputs) outs.push_back(value_dtype(v));
  Geometry g;
  if (!node_geometry(n, g)) return unsupported("inputs do not broadcast to the output");
  FusedEwSource src = fused_ew_source(prog, ins, outs, g.numel > INT32_MAX);
  return Generated{std::move(prog), std::move(src)};
}

struct ModuleDeleter {
  void operator()(CUmod_st* m) const {
    if (m && driver().module_unload) driver().module_unload(m);
  }
};

class FusedElementwiseLayer : public CudaLayer {
 public:
  Status init(const Node& n) {
    KILN_ASSIGN_OR_RETURN(Generated gen, generate(n));
    std::string cubin;
    if (const Tensor* t = n.attrs.tensor(kCubinAttr); t && t->dtype() == DType::kUInt8 && t->numel() > 0) {
      cubin.assign(static_cast<const char*>(t->raw_data()), static_cast<size_t>(t->numel()));
    } else {
      KILN_ASSIGN_OR_RETURN(std::string arch, gpu_arch());
      KILN_ASSIGN_OR_RETURN(cubin, compile(gen.src.code, arch, BuildOptions{}));
    }
    vec_ = gen.src.vec;
    if (!node_geometry(n, geo_)) return unsupported("inputs do not broadcast to the output");
    KILN_CUDA_CHECK(cudaFree(nullptr));  // makes the runtime's primary context current for the driver API
    const Driver& drv = driver();
    KILN_RETURN_IF_ERROR(drv.status);
    CUmodule m = nullptr;
    KILN_CU_CHECK(drv.module_load_data(&m, cubin.data()));
    module_.reset(m);
    KILN_CU_CHECK(drv.module_get_function(&scalar_fn_, m, "kfe_s"));
    KILN_CU_CHECK(drv.module_get_function(&vector_fn_, m, "kfe_v"));
    for (const Value* v : n.inputs) in_sizes_.push_back(dtype_size(value_dtype(v)));
    for (const Value* v : n.outputs) out_sizes_.push_back(dtype_size(value_dtype(v)));
    // Scalar and vector parameter sets (pointers filled at enqueue).
    const int rank = static_cast<int>(geo_.dims.size());
    scalar_ = FusedEwParams{};
    scalar_.n = geo_.numel;
    scalar_.rank = rank;
    for (int d = 0; d < rank; ++d) scalar_.dims[d] = geo_.dims[d];
    for (size_t k = 0; k < geo_.strides.size(); ++k)
      for (int d = 0; d < rank; ++d) scalar_.strides[k][d] = geo_.strides[k][d];
    can_vec_ = vec_ > 1 && geo_.dims.back() % vec_ == 0;
    if (can_vec_) {
      vector_ = scalar_;
      vector_.n = geo_.numel / vec_;
      vector_.dims[rank - 1] /= vec_;
      for (size_t k = 0; k < geo_.strides.size(); ++k) {
        vector_.inner1[k] = geo_.strides[k][rank - 1] == 1;
        vector_.strides[k][rank - 1] *= vec_;
      }
    }
    return Status::Ok();
  }

  Status enqueue(const LaunchArgs& a) const override {
    if (geo_.numel == 0) return Status::Ok();
    bool vec = can_vec_;
    for (size_t k = 0; vec && k < a.inputs.size(); ++k)
      vec = !vector_.inner1[k] || reinterpret_cast<uintptr_t>(a.inputs[k].data) % (in_sizes_[k] * vec_) == 0;
    for (size_t k = 0; vec && k < a.outputs.size(); ++k)
      vec = reinterpret_cast<uintptr_t>(a.outputs[k].data) % (out_sizes_[k] * vec_) == 0;
    FusedEwParams p = vec ? vector_ : scalar_;
    for (size_t k = 0; k < a.inputs.size(); ++k) p.in[k] = a.inputs[k].data;
    for (size_t k = 0; k < a.outputs.size(); ++k) p.out[k] = a.outputs[k].data;
    const int64_t blocks = std::min<int64_t>((p.n + 255) / 256, int64_t{1} << 20);
    CUfunction f = vec ? vector_fn_ : scalar_fn_;
    void* args[] = {&p};
    KILN_CU_CHECK(driver().launch_kernel(f, static_cast<unsigned>(std::max<int64_t>(blocks, 1)), 1, 1, 256, 1, 1, 0,
                                 reinterpret_cast<CUstream>(a.stream), args, nullptr));
    return Status::Ok();
  }

 private:
  std::unique_ptr<CUmod_st, ModuleDeleter> module_;
  CUfunction scalar_fn_ = nullptr, vector_fn_ = nullptr;
  Geometry geo_;
  int vec_ = 1;
  bool can_vec_ = false;
  FusedEwParams scalar_{}, vector_{};
  std::vector<size_t> in_sizes_, out_sizes_;
};

bool supports(const Node& n) {
  if (n.num_inputs() < 1 || n.num_inputs() > static_cast<size_t>(kFusedEwMaxInputs) ||
      n.outputs.size() > static_cast<size_t>(kFusedEwMaxOutputs))
    return false;
  auto prog = fused_ew::parse_program(n.attrs.s("program", ""));
  if (!prog.ok() || prog->num_inputs != static_cast<int>(n.num_inputs()) || prog->outputs.size() != n.outputs.size())
    return false;
  for (const Value* v : n.inputs)
    if (!v || !fused_ew::program_dtype(v->type.dtype)) return false;
  for (const Value* v : n.outputs)
    if (!v || !fused_ew::program_dtype(v->type.dtype)) return false;
  Geometry g;
  return node_geometry(n, g);
}

}  // namespace

int64_t fused_ew_nvrtc_compiles() {
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  return g_compiles;
}

void fused_ew_clear_cache() {
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  cubin_cache().clear();
}

Expected<std::string> compile_fused_ew(const std::string& source, const std::string& arch) {
  return compile(source, arch, BuildOptions{});
}

Status prepare_fused_elementwise(Node& n, const BuildOptions& options) {
  if (n.domain != "kiln" || n.op_type != "FusedElementwise") return Status::Ok();
  KILN_ASSIGN_OR_RETURN(Generated gen, generate(n));
  KILN_ASSIGN_OR_RETURN(std::string arch, gpu_arch());
  KILN_ASSIGN_OR_RETURN(std::string cubin, compile(gen.src.code, arch, options));
  Tensor t(DType::kUInt8, {static_cast<int64_t>(cubin.size())});
  std::memcpy(t.raw_data(), cubin.data(), cubin.size());
  n.attrs.set(kCubinAttr, std::move(t));
  n.attrs.set(kSourceAttr, gen.src.code);
  return Status::Ok();
}

}  // namespace kiln::cuda

KILN_REGISTER_CUDA_LAYER(
    "kiln.FusedElementwise",
    kiln::cuda::CudaLayerFactory{
        .supports = kiln::cuda::supports,
        .tactics = nullptr,
        .create = [](const kiln::Node& n, const kiln::LayerChoice&)
            -> kiln::Expected<std::unique_ptr<kiln::cuda::CudaLayer>> {
          auto layer = std::make_unique<kiln::cuda::FusedElementwiseLayer>();
          KILN_RETURN_IF_ERROR(layer->init(n));
          return std::unique_ptr<kiln::cuda::CudaLayer>(std::move(layer));
        }});
