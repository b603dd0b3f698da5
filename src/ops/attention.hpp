// kiln.Attention (ops/attention.cpp): fused scaled dot-product attention over strided views.
//
//   Y[b,h,i,:] = sum_j P[b,h,i,j] V[b,h,j,:],  P = softmax_j(scale * Q[b,h,i,:].K[b,h,j,:] + mask[b,h,i,j])
//
// Q [B,H,Sq,d], K [B,H,Sk,d] and V [B,H,Sk,dv] are logical views of the inputs: element (b,h,s,c)
// of Q is input 0's flat element offset + b*sB + h*sH + s*sS + c*sD (attributes q_view, k_view,
// v_view = [offset, sB, sH, sS, sD]), so the head split/merge Transposes, Reshapes and Gathers
// around attention need no copies. The output (shape out_shape) receives Y[b,h,i,c] at flat
// position b*oB + h*oH + i*oS + c*oD (out_strides, a permutation of a contiguous layout), which
// absorbs the head merge Transpose. Other attributes: dims = [B,H,Sq,Sk,d,dv], scale (float),
// nan_to_zero (int: rows whose scores are all -inf give 0 instead of NaN, HF's IsNaN/Where guard).
// The optional mask (input 3) broadcasts to [B,H,Sq,Sk] (numpy rules, right-aligned): additive, of
// Q's dtype; or, with the float attribute mask_fill, bool: where true the scaled score is replaced
// by mask_fill (PyTorch's masked_fill: Where(mask, fill, scores)).
#pragma once

#include <array>
#include <optional>

#include "ir/graph.hpp"

namespace kiln {

struct AttentionView {
  int64_t offset = 0;
  std::array<int64_t, 4> stride{};  // over [B, H, S, D]
};

struct AttentionGeometry {
  int64_t batch = 0, heads = 0, sq = 0, sk = 0, d = 0, dv = 0;
  AttentionView q, k, v, out;  // out.offset is 0
  Dims out_shape;
  float scale = 1.f;
  bool nan_to_zero = false;
  std::optional<float> mask_fill;  // bool mask: the value of masked scores
};

// The geometry from a node's attributes, checked for consistency (not yet against input sizes).
Expected<AttentionGeometry> attention_geometry(const Node& n);
// Whether `view` over logical dims `dims` stays inside a tensor of `numel` elements.
bool attention_view_fits(const AttentionView& view, const std::array<int64_t, 4>& dims, int64_t numel);
// The mask's element strides over [B,H,Sq,Sk] (0 where broadcast), or nullopt when it does not broadcast.
std::optional<std::array<int64_t, 4>> attention_mask_strides(const AttentionGeometry& g, const Dims& mask);
// Stores `g` in a node's attributes (the pass uses this; attention_geometry reads them back).
void set_attention_attrs(Attributes& attrs, const AttentionGeometry& g);

// Head dims the CUDA layer runs (the fusion pass only fires for those): d == dv, at most 128.
inline bool attention_head_dims_supported(int64_t d, int64_t dv) { return d == dv && d >= 1 && d <= 128; }

}  // namespace kiln
