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

}  // namespace kiln
