// Identity: the output is the input.
#include "ops/infer_util.hpp"

KILN_REGISTER_OP({.name = "Identity", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_same_as_input0});
