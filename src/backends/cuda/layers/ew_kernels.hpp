// Host interface of the elementwise CUDA kernels (unary math, activations, binary arithmetic,
// comparisons, Where, Cast). The .cu files implement these; the layers (elementwise_layers.cpp)
// call them. Each `*_supported` answers exactly what the matching launcher can run, so a
// layer's `supports` and its `enqueue` never disagree.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "ir/dtype.hpp"
#include "ir/shape.hpp"

namespace kiln::cuda {

inline constexpr int kMaxBroadcastRank = 8;
inline constexpr int kMaxBroadcastInputs = 3;

// The output's dims and each input's element strides over them (0 where the input broadcasts),
// with adjacent dims merged wherever every input allows it (so same-shape inputs become rank 1,
// a per-channel bias over NCHW rank 3, ...). Dims of size 1 are dropped; rank >= 1.
struct BroadcastGeometry {
  int rank = 1;
  int num_inputs = 0;
  int64_t numel = 0;
  int64_t dims[kMaxBroadcastRank] = {};
  int64_t strides[kMaxBroadcastInputs][kMaxBroadcastRank] = {};
};

// The output's dims with mergeable neighbours merged, and each input's element strides over them
// (0 where it broadcasts); any number of inputs and dims. False when an input does not broadcast.
bool merge_broadcast_dims(const Dims& out, const std::vector<Dims>& inputs, std::vector<int64_t>& dims,
                          std::vector<std::vector<int64_t>>& strides);
// The same in the fixed-size form of the elementwise kernels: false also when there are too many
// inputs or the merged rank exceeds kMaxBroadcastRank.
bool make_broadcast_geometry(const Dims& out, const std::vector<Dims>& inputs, BroadcastGeometry& g);

// ---- Unary (one input, output of the same shape) ----
enum class UnaryOp : int {
  // unary_math.cu
  kAbs, kNeg, kSign, kExp, kLog, kSqrt, kReciprocal, kFloor, kCeil, kRound, kSin, kCos, kTan, kAsin,
  kAcos, kAtan, kSinh, kCosh, kAsinh, kAcosh, kAtanh, kErf, kIsNaN, kIsInf, kNot,
  // activation.cu
  kRelu, kLeakyRelu, kSigmoid, kHardSigmoid, kHardSwish, kTanh, kElu, kSelu, kCelu, kSoftplus,
  kSoftsign, kThresholdedRelu, kMish, kGelu, kGeluTanh, kShrink, kClip,
};
inline bool is_activation(UnaryOp op) { return static_cast<int>(op) >= static_cast<int>(UnaryOp::kRelu); }

struct UnaryParams {
  UnaryOp op = UnaryOp::kAbs;
  float alpha = 0.f, beta = 0.f, gamma = 0.f;
  bool flag_a = false, flag_b = false;  // IsInf: detect_negative, detect_positive
  // Clip bounds (absent = the dtype's limits); integers keep theirs exactly.
  bool has_lo = false, has_hi = false;
  double lo = 0, hi = 0;
  int64_t ilo = 0, ihi = 0;
};

bool unary_math_supported(UnaryOp op, DType in, DType out);
cudaError_t launch_unary_math(const UnaryParams& p, DType in, DType out, const void* x, void* y, int64_t n,
                              cudaStream_t stream);
bool activation_supported(UnaryOp op, DType in, DType out);
cudaError_t launch_activation(const UnaryParams& p, DType in, DType out, const void* x, void* y, int64_t n,
                              cudaStream_t stream);

// ---- Binary (numpy broadcasting) ----
enum class BinaryOp : int {
  // binary_math.cu: output dtype = input 0's (kMod: floats, fmod=1)
  kAdd, kSub, kMul, kDiv, kMod, kPow, kMax, kMin, kPRelu, kMeanFinish,  // kMeanFinish: (a + b) / alpha
  // compare.cu: bool output
  kEqual, kLess, kLessOrEqual, kGreater, kGreaterOrEqual, kAnd, kOr, kXor,
};
inline bool is_comparison(BinaryOp op) { return static_cast<int>(op) >= static_cast<int>(BinaryOp::kEqual); }

// `a`, `b`: input dtypes (they differ only for Pow's exponent).
bool binary_math_supported(BinaryOp op, DType a, DType b);
cudaError_t launch_binary_math(BinaryOp op, float alpha, DType a, DType b, const BroadcastGeometry& g,
                               const void* x, const void* y, void* out, cudaStream_t stream);
bool compare_supported(BinaryOp op, DType a);
cudaError_t launch_compare(BinaryOp op, DType a, const BroadcastGeometry& g, const void* x, const void* y,
                           void* out, cudaStream_t stream);

// ---- Where(cond, x, y) (compare.cu); any dtype of 1, 2, 4 or 8 bytes ----
bool where_supported(DType t);
cudaError_t launch_where(DType t, const BroadcastGeometry& g, const void* cond, const void* x, const void* y,
                         void* out, cudaStream_t stream);

// ---- Cast (cast.cu): float32/16, bfloat16, int8/32/64, uint8, bool in any pair ----
bool cast_supported(DType from, DType to);
cudaError_t launch_cast(DType from, DType to, const void* x, void* y, int64_t n, cudaStream_t stream);

}  // namespace kiln::cuda
