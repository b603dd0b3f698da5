// cuDNN descriptors of a convolution node (see conv_descs.hpp).
#include "backends/cuda/layers/conv_descs.hpp"

#include <algorithm>

#include "ops/fused_conv.hpp"
#include "ops/window_geometry.hpp"

namespace kiln::cuda {

bool is_transposed_conv(const Node& n) {
  if (n.domain == kKilnDomain) return n.op_type == "NHWC" && n.attrs.s("op", "") == "ConvTranspose";
  return n.op_type == "ConvTranspose";
}

bool is_nhwc_conv(const Node& n) {
  if (n.domain != kKilnDomain) return false;
  return (n.op_type == "FusedConv" && n.attrs.s("layout", "NCHW") == "NHWC") ||
         (n.op_type == "NHWC" && n.attrs.s("op", "") == "ConvTranspose");
}

namespace {

Dims permute_dims(const Dims& d, const std::vector<int64_t>& perm) {
  Dims out;
  for (int64_t p : perm) out.push_back(d[static_cast<size_t>(p)]);
  return out;
}

}  // namespace

Status set_conv_tensor(TensorDesc& desc, cudnnDataType_t type, const Dims& dims, bool nhwc) {
  if (!nhwc) return set_packed_tensor(desc, type, dims);
  if (dims.size() != 4) return internal_error("NHWC cuDNN tensor of rank {}", dims.size());
  for (int64_t v : dims)
    if (v > INT32_MAX || dims_numel(dims) > INT32_MAX)
      return unsupported("tensor dims [{}] exceed cuDNN's 32-bit sizes", fmt::join(dims, ","));
  if (!desc.get()) KILN_CUDA_CHECK(cudnnCreateTensorDescriptor(desc.out()));
  KILN_CUDA_CHECK(cudnnSetTensor4dDescriptor(desc.get(), CUDNN_TENSOR_NHWC, type, static_cast<int>(dims[0]),
                                             static_cast<int>(dims[1]), static_cast<int>(dims[2]),
                                             static_cast<int>(dims[3])));
  return Status::Ok();
}

// Unsupported (with the reason) when cuDNN cannot express the node exactly.
Expected<ConvGeometry> conv_geometry(const Node& n) {
  auto x = static_dims(n.inputs[0]);
  auto w = static_dims(n.has_input(1) ? n.inputs[1] : nullptr);
  auto y = static_dims(n.has_output(0) ? n.outputs[0] : nullptr);
  if (!x || !w || !y) return unsupported("{}: shapes are not static", n.describe());
  const bool nhwc = is_nhwc_conv(n);
  if (nhwc) {
    if (x->size() != 4 || w->size() != 4 || y->size() != 4)
      return unsupported("{}: NHWC layout runs 2-D convolutions only", n.describe());
    for (Dims* d : {&*x, &*w, &*y}) *d = permute_dims(*d, nhwc_to_nchw_perm(4));
  }
  const size_t rank = x->size();
  if (rank < 3 || rank > 5 || w->size() != rank || y->size() != rank)
    return unsupported("{}: only 1-D, 2-D and 3-D convolutions run on CUDA", n.describe());
  const size_t nd = rank - 2;
  const Dims in(x->begin() + 2, x->end()), kernel(w->begin() + 2, w->end()), out(y->begin() + 2, y->end());
  KILN_ASSIGN_OR_RETURN(Window win, is_transposed_conv(n) ? resolve_transposed_window(n, in, kernel)
                                                     : resolve_window(n, in, &kernel, false));
  ConvGeometry g;
  g.nhwc = nhwc;
  const int64_t group = n.attrs.i("group", 1);
  if (group < 1 || group > INT32_MAX) return unsupported("{}: group {}", n.describe(), group);
  g.group = static_cast<int>(group);
  Dims extra_begin(nd, 0), extra_end(nd, 0);
  for (size_t i = 0; i < nd; ++i) {
    // cuDNN pads both ends by the same amount p, and the output size it derives must be the
    // node's. ConvTranspose: p is the begin padding (an unequal end is implicit output padding
    // when it fits). Conv: p is the smaller side; X is pre-padded by the rest.
    const int64_t s = win.strides[i], d = win.dilations[i];
    const int64_t span = (kernel[i] - 1) * d + 1;
    int64_t p = win.pads_begin[i];
    int64_t fwd_in = out[i];
    const int64_t fwd_out = is_transposed_conv(n) ? in[i] : out[i];
    if (!is_transposed_conv(n)) {
      p = std::min(win.pads_begin[i], win.pads_end[i]);
      extra_begin[i] = win.pads_begin[i] - p;
      extra_end[i] = win.pads_end[i] - p;
      fwd_in = in[i] + extra_begin[i] + extra_end[i];
    }
    if (p < 0 || fwd_in + 2 * p < span || (fwd_in + 2 * p - span) / s + 1 != fwd_out)
      return unsupported("{}: pads [{}] are not expressible as cuDNN's symmetric padding", n.describe(),
                         fmt::join(n.attrs.ints("pads"), ","));
    if (p > INT32_MAX || s > INT32_MAX || d > INT32_MAX) return unsupported("{}: window too large", n.describe());
    g.pads.push_back(static_cast<int>(p));
    g.strides.push_back(static_cast<int>(s));
    g.dilations.push_back(static_cast<int>(d));
  }
  g.x = *x;
  g.w = *w;
  g.y = *y;
  g.x_node = *x;
  bool prepad = false;
  for (size_t i = 0; i < nd; ++i) {
    g.x[2 + i] += extra_begin[i] + extra_end[i];
    prepad = prepad || extra_begin[i] || extra_end[i];
  }
  if (prepad) {
    g.prepad.resize(rank);
    for (size_t k = 0; k < rank; ++k)
      for (int64_t o = 0; o < g.x[k]; ++o) {
        const int64_t q = k < 2 ? o : o - extra_begin[k - 2];
        g.prepad[k].push_back(q >= 0 && q < g.x_node[k] ? q : -1);
      }
  }
  if (nhwc && prepad) {
    // The pre-padding copy works on the node's NHWC tensor.
    g.x_node = permute_dims(g.x_node, nchw_to_nhwc_perm(4));
    g.prepad = AxisMaps{g.prepad[0], g.prepad[2], g.prepad[3], g.prepad[1]};
  }
  if (nd == 1) {
    if (prepad) {
      g.prepad.insert(g.prepad.begin() + 2, std::vector<int64_t>{0});
      g.x_node.insert(g.x_node.begin() + 2, 1);
    }
    g.x.insert(g.x.begin() + 2, 1);
    g.w.insert(g.w.begin() + 2, 1);
    g.y.insert(g.y.begin() + 2, 1);
    g.pads.insert(g.pads.begin(), 0);
    g.strides.insert(g.strides.begin(), 1);
    g.dilations.insert(g.dilations.begin(), 1);
  }
  return g;
}

cudnnMathType_t default_math(const std::string& precision) {
  if (precision == "fp32") return CUDNN_FMA_MATH;  // no TF32
  if (precision == "tf32") return CUDNN_DEFAULT_MATH;  // TF32 tensor cores allowed
  return CUDNN_TENSOR_OP_MATH;
}

bool math_allowed(cudnnMathType_t m, const std::string& precision) {
  if (precision == "fp32") return m == CUDNN_FMA_MATH || m == CUDNN_DEFAULT_MATH;
  // Down-conversion of float32 to float16 would lose more than TF32 does.
  if (precision == "tf32") return m != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
  return true;
}

std::string conv_tactic_name(const std::string& prefix, int algo, cudnnMathType_t math) {
  return prefix + "_algo" + std::to_string(algo) + "_math" + std::to_string(static_cast<int>(math));
}

Status ConvDescs::init(const Node& n) {
  KILN_ASSIGN_OR_RETURN(geo, conv_geometry(n));
  dtype = n.inputs[0]->type.dtype;
  transposed = is_transposed_conv(n);
  auto type = cudnn_type(dtype);
  if (!type) return unsupported("{}: {} convolutions do not run on CUDA", n.describe(), dtype_name(dtype));
  KILN_RETURN_IF_ERROR(set_conv_tensor(x, *type, geo.x, geo.nhwc));
  KILN_RETURN_IF_ERROR(set_conv_tensor(y, *type, geo.y, geo.nhwc));
  std::vector<int> wd;
  for (int64_t v : geo.w) {
    if (v > INT32_MAX) return unsupported("{}: weights too large for cuDNN", n.describe());
    wd.push_back(static_cast<int>(v));
  }
  KILN_CUDA_CHECK(cudnnCreateFilterDescriptor(w.out()));
  // Filter dims are given in KCRS order whatever the format; NHWC stores them as KRSC.
  KILN_CUDA_CHECK(cudnnSetFilterNdDescriptor(w.get(), *type, geo.nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW,
                                             static_cast<int>(wd.size()), wd.data()));
  KILN_CUDA_CHECK(cudnnCreateConvolutionDescriptor(conv.out()));
  // float16/bfloat16 data accumulate in float32 (cuDNN's "pseudo" configurations).
  KILN_CUDA_CHECK(cudnnSetConvolutionNdDescriptor(conv.get(), static_cast<int>(geo.pads.size()), geo.pads.data(),
                                                  geo.strides.data(), geo.dilations.data(), CUDNN_CROSS_CORRELATION,
                                                  CUDNN_DATA_FLOAT));
  KILN_CUDA_CHECK(cudnnSetConvolutionGroupCount(conv.get(), geo.group));
  return Status::Ok();
}

Status ConvDescs::set_math(cudnnMathType_t m) {
  KILN_CUDA_CHECK(cudnnSetConvolutionMathType(conv.get(), m));
  return Status::Ok();
}

Expected<std::vector<ConvDescs::Candidate>> ConvDescs::candidates(cudnnHandle_t h) const {
  std::vector<Candidate> out;
  int count = 0;
  if (!transposed) {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    KILN_CUDA_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, x.get(), w.get(), conv.get(), y.get(),
                                                           CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, perf));
    for (int i = 0; i < count; ++i)
      if (perf[i].status == CUDNN_STATUS_SUCCESS)
        out.push_back({static_cast<int>(perf[i].algo), perf[i].mathType, perf[i].memory});
  } else {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    KILN_CUDA_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, w.get(), x.get(), conv.get(), y.get(),
                                                                CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, perf));
    for (int i = 0; i < count; ++i)
      if (perf[i].status == CUDNN_STATUS_SUCCESS)
        out.push_back({static_cast<int>(perf[i].algo), perf[i].mathType, perf[i].memory});
  }
  return out;
}

Expected<size_t> ConvDescs::workspace_for(cudnnHandle_t h, int algo) const {
  size_t bytes = 0;
  if (!transposed)
    KILN_CUDA_CHECK(cudnnGetConvolutionForwardWorkspaceSize(h, x.get(), w.get(), conv.get(), y.get(),
                                                            static_cast<cudnnConvolutionFwdAlgo_t>(algo), &bytes));
  else
    KILN_CUDA_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(
        h, w.get(), x.get(), conv.get(), y.get(), static_cast<cudnnConvolutionBwdDataAlgo_t>(algo), &bytes));
  return bytes;
}

}  // namespace kiln::cuda
