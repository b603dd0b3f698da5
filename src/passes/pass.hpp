// Graph passes: small rewrites that report whether they changed the graph, run to a fixed point.
//
// Fused nodes: a pass that replaces several nodes by one sets the optional string attribute
// `kiln_fused` on the new node to the comma-separated original nodes, each "name:OpType" (or
// "OpType" when unnamed), e.g. "div1:Div,erf1:Erf,add1:Add,mul1:Mul,mul2:Mul". `kiln inspect`
// lists them; kernels ignore the attribute.
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "ir/graph.hpp"

namespace kiln {

class Pass {
 public:
  virtual ~Pass() = default;
  virtual std::string_view name() const = 0;
  // Rewrites `graph`; returns true when it changed anything.
  virtual Expected<bool> run(Graph& graph) = 0;
};

inline constexpr const char* kFusedAttr = "kiln_fused";

struct PassManagerOptions {
  std::set<std::string> disabled;       // pass names to skip
  int max_iterations = 8;               // rounds of the whole pipeline before giving up on a fixed point
  std::function<void(std::string_view)> log;  // per-pass timing and modified counts when set
  std::set<std::string> dump_after;     // pass names ("all" for every pass) after which to dump the IR
  std::function<void(std::string_view)> dump;  // receives the dumps (text from graph_to_text)
};

class PassManager {
 public:
  explicit PassManager(PassManagerOptions options = {}) : options_(std::move(options)) {}
  void add(std::unique_ptr<Pass> pass) { passes_.push_back(std::move(pass)); }
  // Runs every enabled pass in order, repeating until none changes the graph; shape inference is
  // re-run after each change so later passes see current types.
  // With a log, ends with one summary line per pass (total time, runs that modified the graph).
  Status run(Graph& graph);

 private:
  struct Stats {
    double ms = 0;
    int runs = 0, modified = 0;
  };
  PassManagerOptions options_;
  std::vector<std::unique_ptr<Pass>> passes_;
  std::vector<Stats> stats_;
};

// Every pass the builder knows, for --list-passes and checking --disable-pass/--dump-ir-after
// names. Passes register themselves (KILN_REGISTER_PASS_INFO); backend fusion passes may too.
struct PassInfo {
  std::string name, description;
};
bool register_pass_info(std::string name, std::string description);
std::vector<PassInfo> known_passes();  // sorted by name
// Ok when every name is a known pass (or "all" where `allow_all`); else an error listing them.
Status check_pass_names(const std::set<std::string>& names, const char* flag, bool allow_all = false);

// The graph as readable text: inputs, outputs, then one line per node
// ("  y = Conv(x, w, b) {strides=[1,1]}  # conv1  float32[1,8,4,4]"); subgraphs indented.
std::string graph_to_text(const Graph& graph);

// Keeps only the named graph outputs, in the given order (an unknown name is an error listing the
// outputs); the dead-code pass then drops what only fed the others.
Status select_outputs(Graph& graph, const std::vector<std::string>& names);

// The backend-independent clean-up pipeline, in order: constant folding, If inlining, identity
// and cast-chain removal, BatchNormalization folding, GELU and LayerNorm recognition, dead code.
void add_cleanup_passes(PassManager& pm, bool fold_random);
// The CUDA backend's fusion and layout passes, in order (run after precision assignment).
void add_cuda_passes(PassManager& pm);
// The CUDA backend's last passes, run once add_cuda_passes reached a fixed point (so the other
// fusions have taken their elementwise nodes): conv-head-fusion, elementwise-fusion, then dead code.
void add_cuda_final_passes(PassManager& pm);

// Replaces nodes whose inputs are all constants by their outputs, computed with the CPU kernels
// (random-number ops are kept unless `fold_random`). Outputs larger than `max_bytes` are kept
// as nodes, so a tiny ConstantOfShape does not become a huge weight. DequantizeLinear of int8/uint8/float8
// constants (quantized weights of explicit Q/DQ models) is kept for the backends' Q/DQ fusion
// unless `keep_weight_dequantize` is false (the CUDA pipeline's last folding, after the fusion).
std::unique_ptr<Pass> make_constant_folding_pass(bool fold_random = false, uint64_t max_bytes = 64u << 20,
                                                 bool keep_weight_dequantize = true);
// Turns float32 activations and weights into `low` (float16 or bfloat16), keeping float32
// bindings with Casts at the graph's inputs and outputs. Run once, not in a fixed-point loop.
std::unique_ptr<Pass> make_precision_pass(DType low);
// Replaces each If whose condition is a constant by the nodes of the branch it selects (in every
// graph, subgraphs included), with Identity nodes binding the If's outputs.
std::unique_ptr<Pass> make_inline_constant_if_pass();
// Removes nodes none of whose outputs is used (by a node, a subgraph or a graph output), and
// values nothing refers to.
std::unique_ptr<Pass> make_dead_code_pass();
// Removes nodes that pass their input through: Identity, inference Dropout, Cast to the same type,
// Reshape/Expand to the same shape, identity Transpose, whole-tensor Slice, zero Pad, one-input Concat.
std::unique_ptr<Pass> make_identity_elimination_pass();
// Cast(Cast(x, B), C) -> Cast(x, C) where x's type converts to B exactly (a widening), so the
// value is unchanged; a Cast back to x's type then goes with identity elimination.
std::unique_ptr<Pass> make_cast_chain_pass();
// BatchNormalization (inference, constant statistics) folded into the weights of a preceding
// Conv / ConvTranspose / Gemm / rank-2 MatMul with constant weights; elsewhere lowered to Mul+Add.
std::unique_ptr<Pass> make_batchnorm_folding_pass();
// x*0.5*(1+Erf(x/sqrt(2))) and the tanh approximation -> Gelu (approximate "none" / "tanh").
std::unique_ptr<Pass> make_gelu_fusion_pass();
// ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div[/Mul/Add] over trailing axes -> LayerNormalization.
std::unique_ptr<Pass> make_layernorm_fusion_pass();
// x*HardSigmoid(x) (alpha 1/6, beta 0.5) and x*Clip(x+3,0,6)/6 -> HardSwish.
std::unique_ptr<Pass> make_hardswish_fusion_pass();

// Nodes of one op with equal attributes and the same inputs (small constants by contents) computed
// once: later duplicates' readers read the first's outputs (HF BERT's per-layer mask Where).
std::unique_ptr<Pass> make_common_subexpression_pass();

// CUDA backend, explicit FP8 quantization (before the float fusions take the MatMul/Gemm nodes):
// DQ(Q(x)) and DQ(float8 W) per tensor around MatMul/Gemm [+ bias] [+ residual] [+ Relu/Gelu] ->
// kiln.Fp8MatMul (ops/fp8_matmul.cpp).
std::unique_ptr<Pass> make_fp8_gemm_fusion_pass();
// After it: kiln.Fp8Quantize folded into its producer (Fp8MatMul writing float8, kiln.Fp8LayerNorm).
std::unique_ptr<Pass> make_fp8_quantize_fusion_pass();
// Then: FP8 GEMMs of one float8 input feeding only kiln.Attention (Q/K/V) -> one wider Fp8MatMul.
std::unique_ptr<Pass> make_fp8_qkv_merge_pass();

// CUDA backend, explicit quantization (before the float fusions): DequantizeLinear'd int8 inputs
// and weights of Conv/MatMul/Gemm [+ bias] [+ residual] [+ Relu] [+ QuantizeLinear] -> kiln.QConv /
// kiln.QMatMul (ops/qdq_layers.hpp), and Q(DQ(q, s), s) -> q.
std::unique_ptr<Pass> make_qdq_fusion_pass();

// CUDA backend, transformer fusions:
// MatMul(A, constant 2-D B) + Add(constant bias over N) [+ Relu] -> kiln.FusedMatMul.
std::unique_ptr<Pass> make_matmul_bias_fusion_pass();
// [Mul/Div by a constant scalar] [-> Add(mask)] -> Softmax(last axis) -> kiln.MaskedSoftmax.
std::unique_ptr<Pass> make_attention_softmax_fusion_pass();
// MatMul(Q, K^T) [scale] [+ mask] -> Softmax [-> IsNaN/Where] -> MatMul(., V) [-> Transpose], with the
// head split/merge views around it -> kiln.Attention (ops/attention.hpp). float16/bfloat16 only
// unless `float32` (the CUDA pipeline leaves float32 attention to cuBLAS; see the pass's file).
std::unique_ptr<Pass> make_attention_fusion_pass(bool float32 = false);

// Batch-first <-> sequence-first Transposes around attention projections (nn.MultiheadAttention's)
// moved into kiln.Attention's views: the projections read and write the untransposed rows.
std::unique_ptr<Pass> make_mha_transpose_pass();
// Float kiln.FusedMatMul projections of one input read only as attention Q/K/V (BERT's query, key,
// value) -> one FusedMatMul over the concatenated weights; the attentions read column slices.
std::unique_ptr<Pass> make_qkv_merge_pass();
// Conv with kernel == stride, no padding, one group (ViT's patch embedding) -> space-to-depth
// Transpose + kiln.FusedMatMul, absorbing a following flatten(2).transpose(1, 2).
std::unique_ptr<Pass> make_patchify_conv_pass();

// CUDA backend passes (ops/fused_conv.cpp documents kiln.FusedConv):
// Conv [+ Add of a same-shaped residual] [+ Relu] -> kiln.FusedConv (every float Conv).
std::unique_ptr<Pass> make_conv_fusion_pass();
// float16/bfloat16 2-D FusedConv -> NHWC layout, with Transposes around each.
std::unique_ptr<Pass> make_nhwc_layout_pass();
// Moves NHWC -> NCHW Transposes below layout-agnostic ops (elementwise, Concat).
std::unique_ptr<Pass> make_transpose_sinking_pass();
// Removes Transpose pairs that cancel (readers of the second read the first's input).
std::unique_ptr<Pass> make_transpose_cancellation_pass();
// A Transpose that only moves size-1 dims (NCHW -> NHWC of one channel) -> Reshape (a view).
std::unique_ptr<Pass> make_unit_transpose_to_reshape_pass();
// A float16 NHWC FusedConv (3x3, 64 outputs) reading a Concat of 64-channel parts -> one FusedConv
// per part, each adding the previous one's output as Z (the Concat's copy goes).
std::unique_ptr<Pass> make_concat_conv_split_pass();
// A float16 NHWC FusedConv (3x3, 64 inputs and outputs) whose only reader is a 1x1 FusedConv
// classifier (<= 8 outputs, no Z or activation) -> one FusedConv with that classifier as its head.
std::unique_ptr<Pass> make_conv_head_fusion_pass();
// Groups of >= 2 connected elementwise nodes (one output each group) -> kiln.FusedElementwise
// (ops/fused_elementwise.hpp), run by the CUDA backend as one NVRTC-generated kernel.
std::unique_ptr<Pass> make_elementwise_fusion_pass();

}  // namespace kiln

#define KILN_REGISTER_PASS_INFO(name, description)                                     \
  namespace {                                                                          \
  [[maybe_unused]] const bool KILN_CONCAT(kiln_pass_info_, __COUNTER__) =              \
      ::kiln::register_pass_info(name, description);                                   \
  }
