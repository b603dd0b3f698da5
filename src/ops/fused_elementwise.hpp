// kiln.FusedElementwise: a chain of elementwise ops as one node, made by the elementwise-fusion
// pass (CUDA backend) and run there as one generated kernel (NVRTC at build time).
//
//   inputs: the group's external inputs (float16/bfloat16/float32, or bool for a Where condition),
//           numpy-broadcast against each other; outputs: the group's results, each of the broadcast
//           shape of all inputs.
//   program (string): the instructions, ';'-separated, each "Op dtype operand... [a=.. b=..]",
//           then "out t<k>..." naming the outputs, e.g.
//             "Mul f16 i0 #0x1.6a09e6p-1; Erf f16 t0; Add f16 t1 #0x1p+0; Mul f16 i0 t2; Mul f16 t3 #0x1p-1; out t4"
//           Operands: i<k> = input k, t<k> = the result of instruction k, #<float> an immediate
//           (a one-element constant of the original graph, as a hex float). dtype (f32, f16, bf16,
//           bool) is the original node's output type: every instruction computes in float and
//           rounds its result to that type, as the unfused graph (which stores each op's output)
//           does, so the fused result equals the unfused one up to the math functions' last ulp.
//   kiln_fused: the names of the nodes it replaced.
#pragma once

#include <string>
#include <vector>

#include "ir/dtype.hpp"
#include "util/error.hpp"

namespace kiln::fused_ew {

enum class Op : int {
  // binary
  kAdd, kSub, kMul, kDiv, kPow, kMax, kMin,
  // comparisons (bool result)
  kEqual, kLess, kLessOrEqual, kGreater, kGreaterOrEqual,
  // ternary
  kWhere,
  // unary
  kRelu, kSigmoid, kTanh, kErf, kExp, kLog, kSqrt, kAbs, kNeg, kReciprocal, kFloor, kCeil, kSin, kCos,
  kGelu, kGeluTanh, kHardSigmoid, kHardSwish, kClip, kLeakyRelu, kElu, kSoftplus, kSoftsign,
  kIsNaN, kNot, kCast,
  kCount
};

struct OpInfo {
  const char* name;  // as in the program text ("GeluTanh" is Gelu with approximate="tanh")
  int arity;
  bool bool_result;  // comparisons, IsNaN, Not
};
const OpInfo& op_info(Op op);

struct Operand {
  enum Kind { kInput, kTemp, kImm } kind = kInput;
  int index = 0;    // input or instruction index
  float imm = 0.f;  // kImm
};

struct Instr {
  Op op = Op::kAdd;
  DType dtype = DType::kFloat32;  // the result's type (rounded to it)
  std::vector<Operand> args;
  float a = 0.f, b = 0.f;  // HardSigmoid alpha/beta, Clip lo/hi, LeakyRelu/Elu alpha
};

struct Program {
  int num_inputs = 0;  // highest i<k> + 1 (checked against the node's input count)
  std::vector<Instr> code;
  std::vector<int> outputs;  // instruction indices
};

// The types instructions may have: float32, float16, bfloat16, bool.
bool program_dtype(DType t);
const char* dtype_code(DType t);  // "f32", "f16", "bf16", "bool"

std::string format_program(const Program& p);
// Parses and checks the program (operands defined before use, arities, result types).
Expected<Program> parse_program(const std::string& text);

// Rounds a float result to the instruction's type (bool: 0 or 1).
float round_to(DType t, float v);
// One instruction on float operands (rounding not included).
float eval_instr(const Instr& in, const float* args);

}  // namespace kiln::fused_ew
