// A convolution node as a cuDNN backend-API operation graph: descriptors, heuristics, plans and
// execution (conv_graph.hpp; the tactic helpers are in conv_graph_tactics.cpp).
#include "backends/cuda/layers/conv_graph.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace kiln::cuda {
namespace {

constexpr int64_t kX = 1, kW = 2, kY = 3, kBias = 4, kZ = 5, kVirtual = 100;
// Every tensor kiln hands over is 256-byte aligned (arena slots, weights, workspace offsets);
// enqueue checks the pointers anyway.
constexpr int64_t kAlignment = 16;

Status set_attr(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type,
                int64_t count, const void* value, const char* what) {
  return check(cudnnBackendSetAttribute(d, name, type, count, value), what);
}

// Packed strides of NCHW-order `dims`, stored NHWC (rank 4 only) or NCHW.
std::vector<int64_t> strides_of(const Dims& dims, bool nhwc) {
  std::vector<int64_t> s(dims.size());
  if (nhwc && dims.size() == 4) {
    const int64_t c = dims[1], h = dims[2], w = dims[3];
    s = {c * h * w, 1, w * c, c};
    return s;
  }
  int64_t stride = 1;
  for (size_t i = dims.size(); i-- > 0;) {
    s[i] = stride;
    stride *= dims[i];
  }
  return s;
}

bool has_note(const std::vector<cudnnBackendNumericalNote_t>& notes, cudnnBackendNumericalNote_t n) {
  return std::find(notes.begin(), notes.end(), n) != notes.end();
}

// Whether an engine's numerics fit the layer precision: float32 without TF32 runs no tensor-core
// engine; nothing down-converts its inputs or reduces in less than float32 (the legacy path's
// float32 accumulation).
bool notes_allowed(const std::vector<cudnnBackendNumericalNote_t>& notes, const std::string& precision) {
  if (has_note(notes, CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS) ||
      has_note(notes, CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION))
    return false;
  return precision != "fp32" || !has_note(notes, CUDNN_NUMERICAL_NOTE_TENSOR_CORE);
}

}  // namespace

bool conv_graph_debug() {
  static const bool on = std::getenv("KILN_CONV_GRAPH_DEBUG") != nullptr;
  return on;
}

Status BackendDesc::create(cudnnBackendDescriptorType_t type) {
  reset();
  KILN_CUDA_CHECK(cudnnBackendCreateDescriptor(type, &d_));
  return Status::Ok();
}

std::string GraphConfig::name() const {
  std::string s = (plain ? "graphp_e" : "graph_e") + std::to_string(engine);
  for (const auto& [type, value] : knobs) s += "_k" + std::to_string(type) + "." + std::to_string(value);
  return s;
}

std::optional<GraphConfig> GraphConfig::parse(const std::string& tactic) {
  GraphConfig c;
  const char* p = tactic.c_str();
  int used = 0;
  long long e = -1;
  c.plain = tactic.rfind("graphp_", 0) == 0;
  if (std::sscanf(p, c.plain ? "graphp_e%lld%n" : "graph_e%lld%n", &e, &used) != 1 || e < 0) return std::nullopt;
  c.engine = e;
  p += used;
  while (*p) {
    long long type = 0, value = 0;
    used = 0;
    if (std::sscanf(p, "_k%lld.%lld%n", &type, &value, &used) != 2 || used == 0) return std::nullopt;
    c.knobs.emplace_back(type, value);
    p += used;
  }
  return c;
}

Expected<std::unique_ptr<ConvGraph>> ConvGraph::create(const ConvGraphSpec& spec, cudnnHandle_t h, bool plain) {
  auto g = std::unique_ptr<ConvGraph>(new ConvGraph());
  g->spec_ = spec;
  g->plain_variant_ = plain;
  g->handle_ = h;
  Status st = g->build_graph();
  if (!st.ok()) return unsupported("cuDNN graph API: {}", st.message());
  return g;
}

cudnnBackendDescriptor_t ConvGraph::tensor(int64_t uid) const {
  for (const auto& [id, d] : tensors_)
    if (id == uid) return d.get();
  return nullptr;
}

Status ConvGraph::make_tensor(int64_t uid, const Dims& dims, const std::vector<int64_t>& strides,
                              cudnnDataType_t type, bool is_virtual) {
  BackendDesc d;
  KILN_RETURN_IF_ERROR(d.create(CUDNN_BACKEND_TENSOR_DESCRIPTOR));
  const std::vector<int64_t> dv(dims.begin(), dims.end());
  const int64_t n = static_cast<int64_t>(dv.size());
  KILN_RETURN_IF_ERROR(set_attr(d.get(), CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type, "tensor type"));
  KILN_RETURN_IF_ERROR(set_attr(d.get(), CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, n, dv.data(), "tensor dims"));
  KILN_RETURN_IF_ERROR(
      set_attr(d.get(), CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, n, strides.data(), "tensor strides"));
  KILN_RETURN_IF_ERROR(set_attr(d.get(), CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid, "tensor uid"));
  KILN_RETURN_IF_ERROR(
      set_attr(d.get(), CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &kAlignment, "tensor alignment"));
  bool v = is_virtual;
  KILN_RETURN_IF_ERROR(set_attr(d.get(), CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &v, "tensor virtual"));
  KILN_CUDA_CHECK(cudnnBackendFinalize(d.get()));
  tensors_.emplace_back(uid, std::move(d));
  return Status::Ok();
}

Status ConvGraph::add_pointwise(cudnnPointwiseMode_t mode, int64_t x_uid, int64_t b_uid, int64_t y_uid) {
  BackendDesc pw;
  KILN_RETURN_IF_ERROR(pw.create(CUDNN_BACKEND_POINTWISE_DESCRIPTOR));
  const cudnnDataType_t prec = CUDNN_DATA_FLOAT;
  KILN_RETURN_IF_ERROR(set_attr(pw.get(), CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode, "pw mode"));
  KILN_RETURN_IF_ERROR(
      set_attr(pw.get(), CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec, "pw precision"));
  KILN_CUDA_CHECK(cudnnBackendFinalize(pw.get()));
  BackendDesc op;
  KILN_RETURN_IF_ERROR(op.create(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR));
  cudnnBackendDescriptor_t pd = pw.get(), xd = tensor(x_uid), yd = tensor(y_uid);
  KILN_RETURN_IF_ERROR(set_attr(op.get(), CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                1, &pd, "pw op desc"));
  KILN_RETURN_IF_ERROR(
      set_attr(op.get(), CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &xd, "pw op x"));
  if (b_uid >= 0) {
    cudnnBackendDescriptor_t bd = tensor(b_uid);
    KILN_RETURN_IF_ERROR(
        set_attr(op.get(), CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &bd, "pw op b"));
  }
  KILN_RETURN_IF_ERROR(
      set_attr(op.get(), CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &yd, "pw op y"));
  KILN_CUDA_CHECK(cudnnBackendFinalize(op.get()));
  misc_.push_back(std::move(pw));
  ops_.push_back(std::move(op));
  return Status::Ok();
}

Status ConvGraph::build_graph() {
  const ConvGeometry& geo = spec_.geo;
  const bool int8 = spec_.dtype == DType::kInt8;
  auto type = int8 ? std::optional<cudnnDataType_t>(CUDNN_DATA_INT8) : cudnn_type(spec_.dtype);
  if (!type) return unsupported("dtype {}", dtype_name(spec_.dtype));
  std::optional<cudnnDataType_t> y_type = type;
  if (spec_.y_dtype == DType::kInt32) y_type = CUDNN_DATA_INT32;
  else if (spec_.y_dtype != DType::kUndefined) y_type = cudnn_type(spec_.y_dtype);
  if (!y_type || (int8 && spec_.has_epilogue()))
    return unsupported("dtype {} -> {}", dtype_name(spec_.dtype), dtype_name(spec_.y_dtype));
  const bool nhwc = geo.nhwc;
  KILN_RETURN_IF_ERROR(make_tensor(kX, geo.x, strides_of(geo.x, nhwc), *type, false));
  KILN_RETURN_IF_ERROR(make_tensor(kW, geo.w, strides_of(geo.w, nhwc), *type, false));
  KILN_RETURN_IF_ERROR(make_tensor(kY, geo.y, strides_of(geo.y, nhwc), *y_type, false));
  Dims bias_dims(geo.y.size(), 1);
  bias_dims[1] = geo.y[1];
  if (spec_.bias) KILN_RETURN_IF_ERROR(make_tensor(kBias, bias_dims, strides_of(bias_dims, nhwc), *type, false));
  if (spec_.z) KILN_RETURN_IF_ERROR(make_tensor(kZ, geo.y, strides_of(geo.y, nhwc), *type, false));

  // The epilogue ops in order; each reads the previous result, the last writes Y.
  struct Step {
    cudnnPointwiseMode_t mode;
    int64_t b;
  };
  std::vector<Step> steps;
  if (spec_.bias) steps.push_back({CUDNN_POINTWISE_ADD, kBias});
  if (spec_.z) steps.push_back({CUDNN_POINTWISE_ADD, kZ});
  if (spec_.relu) steps.push_back({CUDNN_POINTWISE_RELU_FWD, -1});
  const std::vector<int64_t> y_strides = strides_of(geo.y, nhwc);
  int64_t conv_out = kY;
  if (!steps.empty()) {
    conv_out = kVirtual;
    KILN_RETURN_IF_ERROR(make_tensor(conv_out, geo.y, y_strides, CUDNN_DATA_FLOAT, true));
  }

  // The convolution.
  BackendDesc conv;
  KILN_RETURN_IF_ERROR(conv.create(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR));
  const int64_t nd = static_cast<int64_t>(geo.pads.size());
  const std::vector<int64_t> pads(geo.pads.begin(), geo.pads.end()), strides(geo.strides.begin(), geo.strides.end()),
      dil(geo.dilations.begin(), geo.dilations.end());
  const cudnnDataType_t comp = int8 ? CUDNN_DATA_INT32 : CUDNN_DATA_FLOAT;
  const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  KILN_RETURN_IF_ERROR(
      set_attr(conv.get(), CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &comp, "conv comp"));
  KILN_RETURN_IF_ERROR(
      set_attr(conv.get(), CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode, "conv mode"));
  KILN_RETURN_IF_ERROR(
      set_attr(conv.get(), CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &nd, "conv dims"));
  KILN_RETURN_IF_ERROR(
      set_attr(conv.get(), CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, nd, pads.data(), "conv pads"));
  KILN_RETURN_IF_ERROR(
      set_attr(conv.get(), CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, nd, pads.data(), "conv pads"));
  KILN_RETURN_IF_ERROR(set_attr(conv.get(), CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, nd,
                                strides.data(), "conv strides"));
  KILN_RETURN_IF_ERROR(
      set_attr(conv.get(), CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, nd, dil.data(), "conv dilations"));
  KILN_CUDA_CHECK(cudnnBackendFinalize(conv.get()));

  BackendDesc fwd;
  cudnnBackendDescriptor_t xd = tensor(kX), wd = tensor(kW), yd = tensor(conv_out), cd = conv.get();
  const float alpha = 1.f, beta = 0.f;
  if (spec_.transposed) {
    // ConvTranspose(X) is the data gradient of the convolution whose output gradient is X.
    KILN_RETURN_IF_ERROR(fwd.create(CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR));
    KILN_RETURN_IF_ERROR(set_attr(fwd.get(), CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY,
                                  CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &xd, "dgrad dy"));
    KILN_RETURN_IF_ERROR(set_attr(fwd.get(), CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W,
                                  CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &wd, "dgrad w"));
    KILN_RETURN_IF_ERROR(set_attr(fwd.get(), CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX,
                                  CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &yd, "dgrad dx"));
    KILN_RETURN_IF_ERROR(set_attr(fwd.get(), CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC,
                                  CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cd, "dgrad desc"));
    KILN_RETURN_IF_ERROR(set_attr(fwd.get(), CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA, CUDNN_TYPE_FLOAT, 1,
                                  &alpha, "dgrad alpha"));
    KILN_RETURN_IF_ERROR(set_attr(fwd.get(), CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA, CUDNN_TYPE_FLOAT, 1,
                                  &beta, "dgrad beta"));
  } else {
  KILN_RETURN_IF_ERROR(fwd.create(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR));
  KILN_RETURN_IF_ERROR(set_attr(fwd.get(), CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                &xd, "conv x"));
  KILN_RETURN_IF_ERROR(set_attr(fwd.get(), CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                &wd, "conv w"));
  KILN_RETURN_IF_ERROR(set_attr(fwd.get(), CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                &yd, "conv y"));
  KILN_RETURN_IF_ERROR(set_attr(fwd.get(), CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
                                CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cd, "conv desc"));
  KILN_RETURN_IF_ERROR(
      set_attr(fwd.get(), CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha, "conv alpha"));
  KILN_RETURN_IF_ERROR(
      set_attr(fwd.get(), CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &beta, "conv beta"));
  }
  KILN_CUDA_CHECK(cudnnBackendFinalize(fwd.get()));
  misc_.push_back(std::move(conv));
  ops_.push_back(std::move(fwd));

  int64_t cur = conv_out;
  for (size_t i = 0; i < steps.size(); ++i) {
    const bool last = i + 1 == steps.size();
    const int64_t out = last ? kY : kVirtual + 1 + static_cast<int64_t>(i);
    if (!last) KILN_RETURN_IF_ERROR(make_tensor(out, geo.y, y_strides, CUDNN_DATA_FLOAT, true));
    KILN_RETURN_IF_ERROR(add_pointwise(steps[i].mode, cur, steps[i].b, out));
    cur = out;
  }

  KILN_RETURN_IF_ERROR(graph_.create(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR));
  std::vector<cudnnBackendDescriptor_t> ops;
  for (const BackendDesc& o : ops_) ops.push_back(o.get());
  KILN_RETURN_IF_ERROR(set_attr(graph_.get(), CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle_,
                                "graph handle"));
  KILN_RETURN_IF_ERROR(set_attr(graph_.get(), CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                static_cast<int64_t>(ops.size()), ops.data(), "graph ops"));
  KILN_CUDA_CHECK(cudnnBackendFinalize(graph_.get()));
  return Status::Ok();
}

Expected<std::vector<GraphConfig>> ConvGraph::configs(size_t limit, size_t max_runtime_compiled,
                                                      uint64_t max_workspace) const {
  std::vector<GraphConfig> out;
  size_t rtc = 0;
  for (cudnnBackendHeurMode_t mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
    if (out.size() >= limit) break;
    BackendDesc heur;
    KILN_RETURN_IF_ERROR(heur.create(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR));
    cudnnBackendDescriptor_t gd = graph_.get();
    KILN_RETURN_IF_ERROR(set_attr(heur.get(), CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                  &gd, "heuristics graph"));
    KILN_RETURN_IF_ERROR(set_attr(heur.get(), CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode, "heur mode"));
    const cudnnStatus_t fin = cudnnBackendFinalize(heur.get());
    if (fin != CUDNN_STATUS_SUCCESS) {  // no engine of this kind
      if (conv_graph_debug())
        fmt::print(stderr, "[conv-graph] heuristics mode {}: {}\n", static_cast<int>(mode), cudnnGetErrorString(fin));
      continue;
    }
    int64_t count = 0;
    const cudnnStatus_t cst = cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                                       CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, nullptr);
    if (conv_graph_debug())
      fmt::print(stderr, "[conv-graph] heuristics mode {}: {} configs ({})\n", static_cast<int>(mode), count,
                 cudnnGetErrorString(cst));
    if (cst != CUDNN_STATUS_SUCCESS || count <= 0) continue;
    std::vector<BackendDesc> cfgs(static_cast<size_t>(count));
    std::vector<cudnnBackendDescriptor_t> raw;
    for (BackendDesc& c : cfgs) {
      KILN_RETURN_IF_ERROR(c.create(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR));
      raw.push_back(c.get());
    }
    int64_t got = 0;
    KILN_CUDA_CHECK(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                             count, &got, raw.data()));
    for (int64_t i = 0; i < std::min(got, count) && out.size() < limit; ++i) {
      BackendDesc engine;
      KILN_RETURN_IF_ERROR(engine.create(CUDNN_BACKEND_ENGINE_DESCRIPTOR));
      cudnnBackendDescriptor_t ed = engine.get();
      int64_t n = 0;
      if (cudnnBackendGetAttribute(raw[i], CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &ed) !=
          CUDNN_STATUS_SUCCESS)
        continue;
      GraphConfig c;
      if (cudnnBackendGetAttribute(ed, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n, &c.engine) !=
          CUDNN_STATUS_SUCCESS)
        continue;
      std::vector<cudnnBackendNumericalNote_t> notes(CUDNN_NUMERICAL_NOTE_TYPE_COUNT);
      int64_t nnotes = 0;
      if (cudnnBackendGetAttribute(ed, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                                   static_cast<int64_t>(notes.size()), &nnotes, notes.data()) != CUDNN_STATUS_SUCCESS)
        nnotes = 0;
      notes.resize(static_cast<size_t>(std::clamp<int64_t>(nnotes, 0, CUDNN_NUMERICAL_NOTE_TYPE_COUNT)));
      if (!notes_allowed(notes, spec_.precision)) {
        if (conv_graph_debug()) fmt::print(stderr, "[conv-graph]   engine {}: numerical notes exclude it\n", c.engine);
        continue;
      }
      std::vector<cudnnBackendBehaviorNote_t> behavior(CUDNN_BEHAVIOR_NOTE_TYPE_COUNT);
      int64_t nb = 0;
      if (cudnnBackendGetAttribute(ed, CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, CUDNN_TYPE_BEHAVIOR_NOTE,
                                   static_cast<int64_t>(behavior.size()), &nb, behavior.data()) != CUDNN_STATUS_SUCCESS)
        nb = 0;
      behavior.resize(static_cast<size_t>(std::clamp<int64_t>(nb, 0, CUDNN_BEHAVIOR_NOTE_TYPE_COUNT)));
      c.runtime_compiled = std::find(behavior.begin(), behavior.end(), CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION) !=
                           behavior.end();
      if (c.runtime_compiled && rtc >= max_runtime_compiled) {
        if (conv_graph_debug())
          fmt::print(stderr, "[conv-graph]   engine {}: runtime-compiled, over the limit\n", c.engine);
        continue;
      }
      int64_t ws = 0;
      if (cudnnBackendGetAttribute(raw[i], CUDNN_ATTR_ENGINECFG_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &n, &ws) ==
              CUDNN_STATUS_SUCCESS &&
          ws > 0 && static_cast<uint64_t>(ws) > max_workspace)
        continue;
      std::vector<BackendDesc> knobs(CUDNN_KNOB_TYPE_COUNTS);
      std::vector<cudnnBackendDescriptor_t> kraw;
      for (BackendDesc& k : knobs) {
        KILN_RETURN_IF_ERROR(k.create(CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR));
        kraw.push_back(k.get());
      }
      int64_t nk = 0;
      if (cudnnBackendGetAttribute(raw[i], CUDNN_ATTR_ENGINECFG_KNOB_CHOICES, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                   static_cast<int64_t>(kraw.size()), &nk, kraw.data()) != CUDNN_STATUS_SUCCESS)
        continue;
      bool knobs_ok = true;
      for (int64_t k = 0; k < std::min<int64_t>(nk, CUDNN_KNOB_TYPE_COUNTS); ++k) {
        cudnnBackendKnobType_t type{};
        int64_t value = 0;
        knobs_ok = knobs_ok &&
                   cudnnBackendGetAttribute(kraw[k], CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE, CUDNN_TYPE_KNOB_TYPE, 1, &n,
                                            &type) == CUDNN_STATUS_SUCCESS &&
                   cudnnBackendGetAttribute(kraw[k], CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE, CUDNN_TYPE_INT64, 1, &n,
                                            &value) == CUDNN_STATUS_SUCCESS;
        c.knobs.emplace_back(static_cast<int64_t>(type), value);
      }
      if (!knobs_ok) {
        if (conv_graph_debug()) fmt::print(stderr, "[conv-graph]   engine {}: knobs unreadable\n", c.engine);
        continue;
      }
      c.plain = plain_variant_;
      if (std::any_of(out.begin(), out.end(), [&](const GraphConfig& o) { return o.name() == c.name(); })) continue;
      rtc += c.runtime_compiled;
      out.push_back(std::move(c));
    }
  }
  return out;
}

Status ConvGraph::select(const GraphConfig& cfg) {
  plan_.reset();
  BackendDesc engine;
  KILN_RETURN_IF_ERROR(engine.create(CUDNN_BACKEND_ENGINE_DESCRIPTOR));
  cudnnBackendDescriptor_t gd = graph_.get();
  KILN_RETURN_IF_ERROR(
      set_attr(engine.get(), CUDNN_ATTR_ENGINE_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &gd, "engine graph"));
  KILN_RETURN_IF_ERROR(
      set_attr(engine.get(), CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &cfg.engine, "engine index"));
  KILN_CUDA_CHECK(cudnnBackendFinalize(engine.get()));
  std::vector<BackendDesc> knobs;
  std::vector<cudnnBackendDescriptor_t> kraw;
  for (const auto& [type, value] : cfg.knobs) {
    BackendDesc k;
    KILN_RETURN_IF_ERROR(k.create(CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR));
    auto t = static_cast<cudnnBackendKnobType_t>(type);
    KILN_RETURN_IF_ERROR(set_attr(k.get(), CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE, CUDNN_TYPE_KNOB_TYPE, 1, &t, "knob type"));
    KILN_RETURN_IF_ERROR(
        set_attr(k.get(), CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE, CUDNN_TYPE_INT64, 1, &value, "knob value"));
    KILN_CUDA_CHECK(cudnnBackendFinalize(k.get()));
    kraw.push_back(k.get());
    knobs.push_back(std::move(k));
  }
  BackendDesc cfgd;
  KILN_RETURN_IF_ERROR(cfgd.create(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR));
  cudnnBackendDescriptor_t ed = engine.get();
  KILN_RETURN_IF_ERROR(
      set_attr(cfgd.get(), CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &ed, "config engine"));
  if (!kraw.empty())
    KILN_RETURN_IF_ERROR(set_attr(cfgd.get(), CUDNN_ATTR_ENGINECFG_KNOB_CHOICES, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                  static_cast<int64_t>(kraw.size()), kraw.data(), "config knobs"));
  KILN_CUDA_CHECK(cudnnBackendFinalize(cfgd.get()));
  BackendDesc plan;
  KILN_RETURN_IF_ERROR(plan.create(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR));
  cudnnBackendDescriptor_t cd = cfgd.get();
  KILN_RETURN_IF_ERROR(set_attr(plan.get(), CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle_,
                                "plan handle"));
  KILN_RETURN_IF_ERROR(set_attr(plan.get(), CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                &cd, "plan config"));
  KILN_CUDA_CHECK(cudnnBackendFinalize(plan.get()));
  int64_t ws = 0, n = 0;
  KILN_CUDA_CHECK(
      cudnnBackendGetAttribute(plan.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &n, &ws));
  if (ws < 0) return internal_error("cuDNN plan workspace {}", ws);
  workspace_ = static_cast<size_t>(ws);
  plan_ = std::move(plan);
  return Status::Ok();
}

Status ConvGraph::execute(cudnnHandle_t h, const void* x, const void* w, const void* bias, const void* z, void* y,
                          void* workspace) const {
  if (!plan_.get()) return internal_error("cuDNN graph convolution without a plan");
  int64_t uids[5];
  void* ptrs[5];
  int64_t n = 0;
  auto add = [&](int64_t uid, const void* p) {
    uids[n] = uid;
    ptrs[n++] = const_cast<void*>(p);
  };
  add(kX, x);
  add(kW, w);
  add(kY, y);
  if (spec_.bias) add(kBias, bias);
  if (spec_.z) add(kZ, z);
  for (int64_t i = 0; i < n; ++i)
    if (!ptrs[i] || reinterpret_cast<uintptr_t>(ptrs[i]) % kAlignment != 0)
      return internal_error("cuDNN graph convolution: tensor {} is null or not {}-byte aligned", uids[i], kAlignment);
  BackendDesc pack;
  KILN_RETURN_IF_ERROR(pack.create(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR));
  KILN_RETURN_IF_ERROR(set_attr(pack.get(), CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uids, "pack ids"));
  KILN_RETURN_IF_ERROR(
      set_attr(pack.get(), CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n, ptrs, "pack pointers"));
  void* ws = workspace;
  KILN_RETURN_IF_ERROR(set_attr(pack.get(), CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws, "pack ws"));
  KILN_CUDA_CHECK(cudnnBackendFinalize(pack.get()));
  KILN_CUDA_CHECK(cudnnBackendExecute(h, plan_.get(), pack.get()));
  return Status::Ok();
}

}  // namespace kiln::cuda
