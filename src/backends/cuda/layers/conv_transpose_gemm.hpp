// A ConvTranspose whose kernel equals its stride (UNet's 2x2 stride-2 upsampling), in NHWC, as
// cuBLASLt GEMMs: every input pixel scatters one (kh, kw, M) block, so output row parity di is
// one strided-batched product  Y[n, kh*h + di, kw*w + dj, m] = X[n, h, w, :] · W[:, di, dj, m] + B[m]
// over the (n, h) rows, written in place (tactics "gemm:lt:<algo>"), or one product over all pixels
// and a shuffle (tactics "gemm1:lt:<algo>").
#pragma once

#include "backends/cuda/cuda_layer.hpp"

namespace kiln::cuda {

// Whether the kiln.NHWC ConvTranspose `n` has this form (kernel == stride, no padding, dilation 1,
// group 1, float X/W/B/Y of one dtype).
bool conv_transpose_gemm_fits(const Node& n);
// cuBLASLt's algorithms for the node's product, as tactics (empty when it does not fit).
std::vector<std::string> conv_transpose_gemm_tactics(const Node& n, const BuildOptions& o);
bool is_conv_transpose_gemm_tactic(const std::string& tactic);
Expected<std::unique_ptr<CudaLayer>> conv_transpose_gemm_create(const Node& n, const LayerChoice& c);

}  // namespace kiln::cuda
