// Host interface of the kiln.Attention kernels (attention.cu); the layer is in attention.cpp.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "ir/dtype.hpp"

namespace kiln::cuda {

// Strided views as in ops/attention.hpp: element (b,h,s,c) of Q at q + q_off + b*qs[0] + h*qs[1] +
// s*qs[2] + c*qs[3] (elements), likewise K, V and the output y (offset 0); mask (nullable) element
// (b,h,i,j) at mask + b*ms[0] + h*ms[1] + i*ms[2] + j*ms[3] (Q's dtype, added to the scaled score;
// bool with mask_is_fill).
struct AttentionArgs {
  const void *q = nullptr, *k = nullptr, *v = nullptr, *mask = nullptr;
  void* y = nullptr;
  int64_t batch = 0, heads = 0, sq = 0, sk = 0;
  int d = 0, dv = 0;
  int64_t q_off = 0, k_off = 0, v_off = 0;
  int64_t qs[4] = {}, ks[4] = {}, vs[4] = {}, ys[4] = {}, ms[4] = {};
  float scale = 1.f;
  bool nan_to_zero = false;
  bool mask_is_fill = false;  // mask is bool: true entries make the score mask_fill
  float mask_fill = 0.f;
  bool no_flash = false;  // skip the FlashAttention-2 kernel (use the WMMA one): the "wmma" tactic
  int flash_rows = 0;     // query rows per flash CTA, 64 or 128 (the "flash64"/"flash128" tactics); 0: a heuristic
  int flash_stages = 0;   // K/V tiles in flight in the flash kernel: 2 (0 too) or 4 (d <= 64; "...s4" tactics)
};

constexpr int kAttentionMaxHeadDim = 128;

// float32/float16/bfloat16, d and dv <= kAttentionMaxHeadDim. float16/bfloat16 with d == dv in
// {32, 64, 128}, unit head-dim strides and 16-byte aligned rows run on tensor cores (flash
// attention: online softmax over key tiles); the rest on a simple per-query-row kernel.
bool attention_supported(DType t, int d, int dv);
// Which kernel `launch_attention` picks for these arguments ("flash", "tensor-core" or "simple").
const char* attention_kernel_name(DType t, const AttentionArgs& a);
cudaError_t launch_attention(DType t, const AttentionArgs& a, cudaStream_t stream);

// The FlashAttention-2 style kernel (attention_flash.cu), preferred by launch_attention: float16/
// bfloat16, d == dv in {32, 64, 128}, Sk >= 1, unit head-dim strides, every row (Q, K, V and the
// output) and pointer 16-byte aligned.
bool attention_flash_eligible(DType t, const AttentionArgs& a);
// The query rows per CTA the flash kernel runs for `a` (flash_rows, or the untimed heuristic).
int attention_flash_rows(const AttentionArgs& a);
cudaError_t launch_attention_flash(DType t, const AttentionArgs& a, cudaStream_t stream);

}  // namespace kiln::cuda
