// The backend-independent clean-up pipeline and the names of the passes defined in this folder.
#include "passes/pass.hpp"

KILN_REGISTER_PASS_INFO("constant-folding", "Evaluates nodes whose inputs are all constants (shape arithmetic too)")
KILN_REGISTER_PASS_INFO("inline-constant-if", "Replaces an If on a constant condition by its chosen branch")
KILN_REGISTER_PASS_INFO("dead-code", "Removes nodes and values nothing uses (and outputs not chosen with --outputs)")
KILN_REGISTER_PASS_INFO("identity-elimination",
                        "Removes Identity, inference Dropout, no-op Cast/Reshape/Expand/Transpose/Slice/Pad/Concat")
KILN_REGISTER_PASS_INFO("cast-chain", "Drops an exact widening Cast before another Cast (f32->f64->f32 and such)")
KILN_REGISTER_PASS_INFO("batchnorm-folding",
                        "Folds BatchNormalization into Conv/ConvTranspose/Gemm/MatMul weights, else into Mul+Add")
KILN_REGISTER_PASS_INFO("gelu-fusion", "Recognizes the erf and tanh GELU subgraphs as one Gelu node")
KILN_REGISTER_PASS_INFO("layernorm-fusion", "Recognizes a decomposed layer normalization as LayerNormalization")
KILN_REGISTER_PASS_INFO("hardswish-fusion", "Recognizes x*HardSigmoid(x) and x*Clip(x+3,0,6)/6 as HardSwish")
KILN_REGISTER_PASS_INFO("precision", "With --fp16/--bf16: float32 layers and weights to the lower precision")
// CUDA backend only:
KILN_REGISTER_PASS_INFO("common-subexpression",
                        "CUDA: nodes with equal op, attributes and inputs computed once (per-layer attention masks)")
KILN_REGISTER_PASS_INFO("qdq-fusion",
                        "CUDA: Q/DQ around Conv/MatMul/Gemm [+ bias, residual, Relu, requantize] -> kiln.QConv/QMatMul")
KILN_REGISTER_PASS_INFO("matmul-bias-fusion",
                        "CUDA: MatMul/Gemm with constant weights + bias [+ residual Add] [+ Relu] -> kiln.FusedMatMul")
KILN_REGISTER_PASS_INFO("patchify-conv",
                        "CUDA: Conv with kernel == stride (ViT patch embedding) -> space-to-depth + kiln.FusedMatMul")
KILN_REGISTER_PASS_INFO("mha-transpose",
                        "CUDA: batch/sequence Transposes around attention projections -> kiln.Attention strides")
KILN_REGISTER_PASS_INFO("qkv-merge",
                        "CUDA: Q, K, V projections of one input -> one FusedMatMul the attention reads as slices")
KILN_REGISTER_PASS_INFO("attention-fusion",
                        "CUDA: Q.K^T [scale] [+ mask] -> Softmax -> .V with head split/merge views -> kiln.Attention")
KILN_REGISTER_PASS_INFO("attention-softmax-fusion",
                        "CUDA: [scale Mul/Div] [+ mask Add] + last-axis Softmax -> kiln.MaskedSoftmax")
KILN_REGISTER_PASS_INFO("conv-fusion", "CUDA: Conv + bias [+ residual Add] [+ Relu] -> kiln.FusedConv")
KILN_REGISTER_PASS_INFO("nhwc-layout", "CUDA: float16/bfloat16 convolutions and pools in NHWC, Transposes around them")
KILN_REGISTER_PASS_INFO("concat-conv-split",
                        "CUDA: float16 NHWC 3x3 FusedConv (64 outputs) over a Concat of 64-channel parts -> one "
                        "FusedConv per part chained through Z (no Concat copy)")
KILN_REGISTER_PASS_INFO("conv-head-fusion",
                        "CUDA: float16 NHWC 3x3 FusedConv (64 channels) + its only reader, a 1x1 classifier (<= 8 "
                        "outputs) -> one FusedConv with a head (applied per output tile)")
KILN_REGISTER_PASS_INFO("transpose-sinking", "CUDA: moves layout Transposes below layout-agnostic ops")
KILN_REGISTER_PASS_INFO("transpose-cancellation", "CUDA: removes Transpose pairs that cancel, merges duplicates")
KILN_REGISTER_PASS_INFO("elementwise-fusion",
                        "CUDA: connected elementwise/broadcast nodes -> kiln.FusedElementwise (one NVRTC kernel)")
KILN_REGISTER_PASS_INFO("unit-transpose-to-reshape",
                        "CUDA: a Transpose that only moves size-1 dims (NCHW->NHWC of one channel) -> Reshape (a view)")

namespace kiln {

void add_cleanup_passes(PassManager& pm, bool fold_random) {
  pm.add(make_constant_folding_pass(fold_random));
  pm.add(make_inline_constant_if_pass());
  pm.add(make_identity_elimination_pass());
  pm.add(make_cast_chain_pass());
  pm.add(make_batchnorm_folding_pass());
  pm.add(make_gelu_fusion_pass());
  pm.add(make_layernorm_fusion_pass());
  pm.add(make_hardswish_fusion_pass());
  pm.add(make_dead_code_pass());
}

void add_cuda_passes(PassManager& pm) {
  pm.add(make_qdq_fusion_pass());  // before the float fusions take the Conv/MatMul nodes
  pm.add(make_fp8_gemm_fusion_pass());  // float8 Q/DQ; int8 ones are qdq-fusion's
  pm.add(make_fp8_quantize_fusion_pass());  // the activations' quantization into their producers
  pm.add(make_fp8_qkv_merge_pass());  // Q/K/V FP8 GEMMs into one (once attention-fusion made kiln.Attention)
  pm.add(make_common_subexpression_pass());  // after the Q/DQ fusions, which want one reader per DQ
  pm.add(make_patchify_conv_pass());  // before conv-fusion takes the Conv
  pm.add(make_matmul_bias_fusion_pass());
  pm.add(make_attention_fusion_pass());
  pm.add(make_dead_code_pass());  // the head-split views kiln.Attention reads through
  pm.add(make_mha_transpose_pass());
  pm.add(make_qkv_merge_pass());
  pm.add(make_attention_softmax_fusion_pass());
  pm.add(make_conv_fusion_pass());
  pm.add(make_nhwc_layout_pass());
  pm.add(make_transpose_sinking_pass());
  pm.add(make_transpose_cancellation_pass());
  pm.add(make_unit_transpose_to_reshape_pass());
  // The transposed weights, and float weights of what qdq-fusion left (DequantizeLinear folded).
  pm.add(make_constant_folding_pass(false, 64u << 20, false));
  pm.add(make_concat_conv_split_pass());  // on folded (NHWC) weights
}

void add_cuda_final_passes(PassManager& pm) {
  pm.add(make_conv_head_fusion_pass());  // once: the fusion passes above do not take FusedConv heads
  pm.add(make_elementwise_fusion_pass());
  pm.add(make_dead_code_pass());
}

}  // namespace kiln
