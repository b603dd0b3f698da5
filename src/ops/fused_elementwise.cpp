// kiln.FusedElementwise (see fused_elementwise.hpp): the program text, its float semantics (shared
// by the CPU kernel; the CUDA layer generates the same formulas) and the schema.
#include "ops/fused_elementwise.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <sstream>

#include "ir/half.hpp"
#include "ops/infer_util.hpp"

namespace kiln::fused_ew {

namespace {

constexpr OpInfo kOps[] = {
    {"Add", 2, false},        {"Sub", 2, false},         {"Mul", 2, false},          {"Div", 2, false},
    {"Pow", 2, false},        {"Max", 2, false},         {"Min", 2, false},          {"Equal", 2, true},
    {"Less", 2, true},        {"LessOrEqual", 2, true},  {"Greater", 2, true},       {"GreaterOrEqual", 2, true},
    {"Where", 3, false},      {"Relu", 1, false},        {"Sigmoid", 1, false},      {"Tanh", 1, false},
    {"Erf", 1, false},        {"Exp", 1, false},         {"Log", 1, false},          {"Sqrt", 1, false},
    {"Abs", 1, false},        {"Neg", 1, false},         {"Reciprocal", 1, false},   {"Floor", 1, false},
    {"Ceil", 1, false},       {"Sin", 1, false},         {"Cos", 1, false},          {"Gelu", 1, false},
    {"GeluTanh", 1, false},   {"HardSigmoid", 1, false}, {"HardSwish", 1, false},    {"Clip", 1, false},
    {"LeakyRelu", 1, false},  {"Elu", 1, false},         {"Softplus", 1, false},     {"Softsign", 1, false},
    {"IsNaN", 1, true},       {"Not", 1, true},          {"Cast", 1, false},
};
static_assert(sizeof(kOps) / sizeof(kOps[0]) == static_cast<size_t>(Op::kCount));

std::string hex_float(float f) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", static_cast<double>(f));
  return buf;
}

bool parse_float(const std::string& s, float& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  out = std::strtof(s.c_str(), &end);
  return end && *end == '\0';
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  return out;
}

std::vector<std::string> words(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

float sigmoid(float x) {
  if (x >= 0.f) return 1.f / (1.f + std::exp(-x));
  const float e = std::exp(x);
  return e / (1.f + e);
}
float softplus(float x) { return x > 0.f ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }

}  // namespace

const OpInfo& op_info(Op op) { return kOps[static_cast<int>(op)]; }

bool program_dtype(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16 || t == DType::kBool;
}

const char* dtype_code(DType t) {
  switch (t) {
    case DType::kFloat32: return "f32";
    case DType::kFloat16: return "f16";
    case DType::kBFloat16: return "bf16";
    case DType::kBool: return "bool";
    default: return "?";
  }
}

std::string format_program(const Program& p) {
  std::string s;
  for (const Instr& in : p.code) {
    s += op_info(in.op).name;
    s += ' ';
    s += dtype_code(in.dtype);
    for (const Operand& o : in.args) {
      s += ' ';
      if (o.kind == Operand::kImm) s += "#" + hex_float(o.imm);
      else s += (o.kind == Operand::kInput ? "i" : "t") + std::to_string(o.index);
    }
    switch (in.op) {
      case Op::kHardSigmoid: case Op::kClip: s += " a=" + hex_float(in.a) + " b=" + hex_float(in.b); break;
      case Op::kLeakyRelu: case Op::kElu: s += " a=" + hex_float(in.a); break;
      default: break;
    }
    s += "; ";
  }
  s += "out";
  for (int o : p.outputs) s += " t" + std::to_string(o);
  return s;
}

Expected<Program> parse_program(const std::string& text) {
  Program p;
  auto bad = [&](const std::string& part, const std::string& why) -> Status {
    return invalid_argument("program instruction '{}': {}", part, why);
  };
  bool have_out = false;
  for (const std::string& part : split(text, ';')) {
    std::vector<std::string> w = words(part);
    if (w.empty()) continue;
    if (have_out) return bad(part, "nothing may follow 'out'");
    if (w[0] == "out") {
      for (size_t k = 1; k < w.size(); ++k) {
        int idx = -1;
        if (w[k].size() < 2 || w[k][0] != 't' || (idx = std::atoi(w[k].c_str() + 1)) < 0 ||
            idx >= static_cast<int>(p.code.size()) || std::to_string(idx) != w[k].substr(1))
          return bad(part, "outputs must name instructions (t<k>)");
        p.outputs.push_back(idx);
      }
      have_out = true;
      continue;
    }
    Instr in;
    int op = 0;
    while (op < static_cast<int>(Op::kCount) && w[0] != kOps[op].name) ++op;
    if (op == static_cast<int>(Op::kCount)) return bad(part, "unknown op '" + w[0] + "'");
    in.op = static_cast<Op>(op);
    if (w.size() < 2) return bad(part, "missing the result type");
    const char* codes[] = {"f32", "f16", "bf16", "bool"};
    const DType types[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16, DType::kBool};
    int t = 0;
    while (t < 4 && w[1] != codes[t]) ++t;
    if (t == 4) return bad(part, "unknown type '" + w[1] + "'");
    in.dtype = types[t];
    if ((in.dtype == DType::kBool) != kOps[op].bool_result)
      return bad(part, kOps[op].bool_result ? "the result must be bool" : "the result must be a float type");
    for (size_t k = 2; k < w.size(); ++k) {
      const std::string& s = w[k];
      if (s.rfind("a=", 0) == 0 || s.rfind("b=", 0) == 0) {
        if (!parse_float(s.substr(2), s[0] == 'a' ? in.a : in.b)) return bad(part, "bad parameter '" + s + "'");
        continue;
      }
      Operand o;
      if (s.size() >= 2 && s[0] == '#') {
        o.kind = Operand::kImm;
        if (!parse_float(s.substr(1), o.imm)) return bad(part, "bad immediate '" + s + "'");
      } else if (s.size() >= 2 && (s[0] == 'i' || s[0] == 't') && s.find_first_not_of("0123456789", 1) == s.npos) {
        o.kind = s[0] == 'i' ? Operand::kInput : Operand::kTemp;
        o.index = std::atoi(s.c_str() + 1);
        if (o.kind == Operand::kTemp && o.index >= static_cast<int>(p.code.size()))
          return bad(part, "'" + s + "' is not an earlier instruction");
        if (o.kind == Operand::kInput) p.num_inputs = std::max(p.num_inputs, o.index + 1);
      } else {
        return bad(part, "bad operand '" + s + "'");
      }
      in.args.push_back(o);
    }
    if (static_cast<int>(in.args.size()) != kOps[op].arity)
      return bad(part, fmt::format("{} takes {} operand(s)", kOps[op].name, kOps[op].arity));
    p.code.push_back(std::move(in));
  }
  if (p.code.empty()) return invalid_argument("the program has no instructions");
  if (p.outputs.empty()) return invalid_argument("the program names no outputs ('out t<k>')");
  return p;
}

float round_to(DType t, float v) {
  switch (t) {
    case DType::kFloat16: return static_cast<float>(Half(v));
    case DType::kBFloat16: return static_cast<float>(BFloat16(v));
    case DType::kBool: return v != 0.f ? 1.f : 0.f;
    default: return v;
  }
}

float eval_instr(const Instr& in, const float* x) {
  const float a = in.a, b = in.b;
  switch (in.op) {
    case Op::kAdd: return x[0] + x[1];
    case Op::kSub: return x[0] - x[1];
    case Op::kMul: return x[0] * x[1];
    case Op::kDiv: return x[0] / x[1];
    case Op::kPow: return std::pow(x[0], x[1]);
    case Op::kMax: return std::isnan(x[0]) || std::isnan(x[1]) ? (std::isnan(x[0]) ? x[0] : x[1])
                                                               : (x[1] > x[0] ? x[1] : x[0]);
    case Op::kMin: return std::isnan(x[0]) || std::isnan(x[1]) ? (std::isnan(x[0]) ? x[0] : x[1])
                                                               : (x[1] < x[0] ? x[1] : x[0]);
    case Op::kEqual: return x[0] == x[1];
    case Op::kLess: return x[0] < x[1];
    case Op::kLessOrEqual: return x[0] <= x[1];
    case Op::kGreater: return x[0] > x[1];
    case Op::kGreaterOrEqual: return x[0] >= x[1];
    case Op::kWhere: return x[0] != 0.f ? x[1] : x[2];
    case Op::kRelu: return x[0] < 0.f ? 0.f : x[0];
    case Op::kSigmoid: return sigmoid(x[0]);
    case Op::kTanh: return std::tanh(x[0]);
    case Op::kErf: return std::erf(x[0]);
    case Op::kExp: return std::exp(x[0]);
    case Op::kLog: return std::log(x[0]);
    case Op::kSqrt: return std::sqrt(x[0]);
    case Op::kAbs: return std::fabs(x[0]);
    case Op::kNeg: return -x[0];
    case Op::kReciprocal: return 1.f / x[0];
    case Op::kFloor: return std::floor(x[0]);
    case Op::kCeil: return std::ceil(x[0]);
    case Op::kSin: return std::sin(x[0]);
    case Op::kCos: return std::cos(x[0]);
    case Op::kGelu: return 0.5f * x[0] * (1.f + std::erf(x[0] * 0.7071067811865476f));
    case Op::kGeluTanh: {
      const float v = x[0];
      return 0.5f * v * (1.f + std::tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    }
    case Op::kHardSigmoid: {
      const float y = a * x[0] + b;
      return y != y ? y : std::max(0.f, std::min(1.f, y));
    }
    case Op::kHardSwish: return x[0] * std::max(0.f, std::min(1.f, x[0] / 6.f + 0.5f));
    case Op::kClip: {
      float v = x[0] < a ? a : x[0];
      return v > b ? b : v;
    }
    case Op::kLeakyRelu: return x[0] < 0.f ? a * x[0] : x[0];
    case Op::kElu: return x[0] < 0.f ? a * std::expm1(x[0]) : x[0];
    case Op::kSoftplus: return softplus(x[0]);
    case Op::kSoftsign: return x[0] / (1.f + std::fabs(x[0]));
    case Op::kIsNaN: return std::isnan(x[0]) ? 1.f : 0.f;
    case Op::kNot: return x[0] != 0.f ? 0.f : 1.f;
    case Op::kCast: return x[0];
    case Op::kCount: break;
  }
  return 0.f;
}

}  // namespace kiln::fused_ew

namespace kiln {
namespace {

Status infer_fused_elementwise(InferContext& ctx) {
  auto prog = fused_ew::parse_program(ctx.node().attrs.s("program", ""));
  if (!prog.ok()) return ctx.error("{}", prog.status().message());
  if (prog->num_inputs != static_cast<int>(ctx.num_inputs()))
    return ctx.error("the program reads {} input(s) but the node has {}", prog->num_inputs, ctx.num_inputs());
  if (prog->outputs.size() != ctx.num_outputs())
    return ctx.error("the program has {} output(s) but the node has {}", prog->outputs.size(), ctx.num_outputs());
  std::vector<Shape> shapes;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) return ctx.error("input {} is missing", i);
    const TensorType& t = ctx.input(i);
    if (!fused_ew::program_dtype(t.dtype))
      return ctx.error("input {} is {}; expected float32, float16, bfloat16 or bool", i, dtype_name(t.dtype));
    shapes.push_back(t.shape);
  }
  auto out = broadcast_shapes(shapes);
  if (!out.ok()) return ctx.error("{}", out.status().message());
  for (size_t k = 0; k < prog->outputs.size(); ++k)
    ctx.set_output(k, prog->code[static_cast<size_t>(prog->outputs[k])].dtype, *out);
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "FusedElementwise", .domain = "kiln", .min_inputs = 1, .max_inputs = 64,
                  .min_outputs = 1, .max_outputs = 16, .infer = kiln::infer_fused_elementwise});
