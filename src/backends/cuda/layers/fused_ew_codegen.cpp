// Generates the CUDA C++ of a fused elementwise program (see fused_ew_codegen.hpp). The formulas
// are those of the CPU kernels (ops/fused_elementwise.cpp's eval_instr); each instruction's result
// is rounded to its dtype, as the unfused graph stores it. No headers are included (the GPU
// machine may have no CUDA toolkit): float16/bfloat16 conversions are inline PTX.
#include "backends/cuda/layers/fused_ew_codegen.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace kiln::cuda {
namespace {

using fused_ew::Op;

const char* storage(DType t) {
  switch (t) {
    case DType::kFloat32: return "float";
    case DType::kBool: return "u8";
    default: return "u16";
  }
}
const char* suffix(DType t) {
  switch (t) {
    case DType::kFloat32: return "f32";
    case DType::kFloat16: return "f16";
    case DType::kBFloat16: return "bf16";
    default: return "bool";
  }
}
size_t size_of(DType t) { return t == DType::kFloat32 ? 4 : t == DType::kBool ? 1 : 2; }

// A float literal, bit-exact (inf and NaN included).
std::string literal(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return fmt::format("__int_as_float(0x{:08x})", u);
}

std::string expr(const fused_ew::Instr& in, const std::vector<std::string>& x) {
  const std::string a = literal(in.a), b = literal(in.b);
  auto s = [&](size_t i) { return x[i]; };
  switch (in.op) {
    case Op::kAdd: return "(" + s(0) + " + " + s(1) + ")";
    case Op::kSub: return "(" + s(0) + " - " + s(1) + ")";
    case Op::kMul: return "(" + s(0) + " * " + s(1) + ")";
    case Op::kDiv: return "(" + s(0) + " / " + s(1) + ")";
    case Op::kPow: return "powf(" + s(0) + ", " + s(1) + ")";
    case Op::kMax: return "kf_max(" + s(0) + ", " + s(1) + ")";
    case Op::kMin: return "kf_min(" + s(0) + ", " + s(1) + ")";
    case Op::kEqual: return "(" + s(0) + " == " + s(1) + " ? 1.f : 0.f)";
    case Op::kLess: return "(" + s(0) + " < " + s(1) + " ? 1.f : 0.f)";
    case Op::kLessOrEqual: return "(" + s(0) + " <= " + s(1) + " ? 1.f : 0.f)";
    case Op::kGreater: return "(" + s(0) + " > " + s(1) + " ? 1.f : 0.f)";
    case Op::kGreaterOrEqual: return "(" + s(0) + " >= " + s(1) + " ? 1.f : 0.f)";
    case Op::kWhere: return "(" + s(0) + " != 0.f ? " + s(1) + " : " + s(2) + ")";
    case Op::kRelu: return "(" + s(0) + " < 0.f ? 0.f : " + s(0) + ")";
    case Op::kSigmoid: return "kf_sigmoid(" + s(0) + ")";
    case Op::kTanh: return "tanhf(" + s(0) + ")";
    case Op::kErf: return "erff(" + s(0) + ")";
    case Op::kExp: return "expf(" + s(0) + ")";
    case Op::kLog: return "logf(" + s(0) + ")";
    case Op::kSqrt: return "sqrtf(" + s(0) + ")";
    case Op::kAbs: return "fabsf(" + s(0) + ")";
    case Op::kNeg: return "(-" + s(0) + ")";
    case Op::kReciprocal: return "(1.f / " + s(0) + ")";
    case Op::kFloor: return "floorf(" + s(0) + ")";
    case Op::kCeil: return "ceilf(" + s(0) + ")";
    case Op::kSin: return "sinf(" + s(0) + ")";
    case Op::kCos: return "cosf(" + s(0) + ")";
    case Op::kGelu: return "(0.5f * " + s(0) + " * (1.f + erff(" + s(0) + " * 0.7071067811865476f)))";
    case Op::kGeluTanh: return "kf_gelu_tanh(" + s(0) + ")";
    case Op::kHardSigmoid: return "kf_hard_sigmoid(" + s(0) + ", " + a + ", " + b + ")";
    case Op::kHardSwish: return "(" + s(0) + " * fmaxf(0.f, fminf(1.f, " + s(0) + " / 6.f + 0.5f)))";
    case Op::kClip: return "kf_clip(" + s(0) + ", " + a + ", " + b + ")";
    case Op::kLeakyRelu: return "(" + s(0) + " < 0.f ? " + a + " * " + s(0) + " : " + s(0) + ")";
    case Op::kElu: return "(" + s(0) + " < 0.f ? " + a + " * expm1f(" + s(0) + ") : " + s(0) + ")";
    case Op::kSoftplus: return "kf_softplus(" + s(0) + ")";
    case Op::kSoftsign: return "(" + s(0) + " / (1.f + fabsf(" + s(0) + ")))";
    case Op::kIsNaN: return "(" + s(0) + " != " + s(0) + " ? 1.f : 0.f)";
    case Op::kNot: return "(" + s(0) + " != 0.f ? 0.f : 1.f)";
    case Op::kCast: return s(0);
    case Op::kCount: break;
  }
  return "0.f";
}

constexpr const char* kPrelude = R"(// kiln.FusedElementwise, generated
typedef unsigned short u16;
typedef unsigned char u8;
struct P {
  const void* in[8];
  void* out[4];
  long long n;
  long long rank;
  long long dims[8];
  long long strides[8][8];
  long long inner1[8];
};
template <typename T, int N> struct alignas(sizeof(T) * N) Vec { T v[N]; };
__device__ __forceinline__ float ld_f32(float x) { return x; }
__device__ __forceinline__ float ld_f16(u16 h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
__device__ __forceinline__ float ld_bf16(u16 h) { return __uint_as_float(((unsigned)h) << 16); }
__device__ __forceinline__ float ld_bool(u8 b) { return b ? 1.f : 0.f; }
__device__ __forceinline__ float st_f32(float x) { return x; }
__device__ __forceinline__ u16 st_f16(float f) { u16 h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
__device__ __forceinline__ u16 st_bf16(float f) { u16 h; asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
__device__ __forceinline__ u8 st_bool(float f) { return f != 0.f ? 1 : 0; }
__device__ __forceinline__ float r_f32(float x) { return x; }
__device__ __forceinline__ float r_f16(float x) { return ld_f16(st_f16(x)); }
__device__ __forceinline__ float r_bf16(float x) { return ld_bf16(st_bf16(x)); }
__device__ __forceinline__ float r_bool(float x) { return x != 0.f ? 1.f : 0.f; }
__device__ __forceinline__ float kf_max(float a, float b) { return (a != a || b != b) ? (a != a ? a : b) : (b > a ? b : a); }
__device__ __forceinline__ float kf_min(float a, float b) { return (a != a || b != b) ? (a != a ? a : b) : (b < a ? b : a); }
__device__ __forceinline__ float kf_sigmoid(float x) {
  if (x >= 0.f) return 1.f / (1.f + expf(-x));
  const float e = expf(x);
  return e / (1.f + e);
}
__device__ __forceinline__ float kf_softplus(float x) { return x > 0.f ? x + log1pf(expf(-x)) : log1pf(expf(x)); }
__device__ __forceinline__ float kf_gelu_tanh(float v) {
  return 0.5f * v * (1.f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
}
__device__ __forceinline__ float kf_hard_sigmoid(float x, float a, float b) {
  const float y = a * x + b;
  return y != y ? y : fmaxf(0.f, fminf(1.f, y));
}
__device__ __forceinline__ float kf_clip(float x, float lo, float hi) {
  float v = x < lo ? lo : x;
  return v > hi ? hi : v;
}
)";

}  // namespace

FusedEwSource fused_ew_source(const fused_ew::Program& p, const std::vector<DType>& inputs,
                              const std::vector<DType>& outputs, bool wide) {
  const size_t nin = inputs.size(), nout = outputs.size();
  size_t widest = 1;
  for (DType t : inputs) widest = std::max(widest, size_of(t));
  for (DType t : outputs) widest = std::max(widest, size_of(t));
  FusedEwSource src;
  src.vec = static_cast<int>(std::min<size_t>(8, 16 / widest));
  std::string c = kPrelude;
  c += fmt::format("#define KFE_VEC {}\n#define KFE_NIN {}\n", src.vec, nin);

  // The program: inputs x<k> as floats in, outputs y<k> out.
  c += "__device__ __forceinline__ void kfe_prog(";
  for (size_t k = 0; k < nin; ++k) c += fmt::format("{}float x{}", k ? ", " : "", k);
  for (size_t k = 0; k < nout; ++k) c += fmt::format(", float& y{}", k);
  c += ") {\n";
  for (size_t i = 0; i < p.code.size(); ++i) {
    const fused_ew::Instr& in = p.code[i];
    std::vector<std::string> args;
    for (const fused_ew::Operand& o : in.args)
      args.push_back(o.kind == fused_ew::Operand::kImm    ? literal(o.imm)
                     : o.kind == fused_ew::Operand::kTemp ? fmt::format("t{}", o.index)
                                                          : fmt::format("x{}", o.index));
    c += fmt::format("  const float t{} = r_{}({});\n", i, suffix(in.dtype), expr(in, args));
  }
  for (size_t k = 0; k < nout; ++k) c += fmt::format("  y{} = t{};\n", k, p.outputs[k]);
  c += "}\n";

  c += R"(template <typename I>
__device__ __forceinline__ void kfe_offsets(const P& p, I e, I (&off)[KFE_NIN]) {
#pragma unroll
  for (int k = 0; k < KFE_NIN; ++k) off[k] = 0;
  I rem = e;
  for (int d = (int)p.rank - 1; d > 0; --d) {
    const I dim = (I)p.dims[d];
    const I q = rem / dim;
    const I cd = rem - q * dim;
    rem = q;
#pragma unroll
    for (int k = 0; k < KFE_NIN; ++k) off[k] += cd * (I)p.strides[k][d];
  }
#pragma unroll
  for (int k = 0; k < KFE_NIN; ++k) off[k] += rem * (I)p.strides[k][0];
}
)";

  // Scalar kernel body.
  std::string call_args;
  for (size_t k = 0; k < nin; ++k) call_args += fmt::format("{}x{}", k ? ", " : "", k);
  for (size_t k = 0; k < nout; ++k) call_args += fmt::format(", y{}", k);
  c += "template <typename I>\n__device__ __forceinline__ void kfe_scalar(const P& p) {\n"
       "  const I step = (I)gridDim.x * blockDim.x;\n"
       "  for (I e = (I)blockIdx.x * blockDim.x + threadIdx.x; e < (I)p.n; e += step) {\n"
       "    I off[KFE_NIN];\n    kfe_offsets<I>(p, e, off);\n";
  for (size_t k = 0; k < nin; ++k)
    c += fmt::format("    const float x{0} = ld_{1}(((const {2}*)p.in[{0}])[off[{0}]]);\n", k, suffix(inputs[k]),
                     storage(inputs[k]));
  for (size_t k = 0; k < nout; ++k) c += fmt::format("    float y{};\n", k);
  c += "    kfe_prog(" + call_args + ");\n";
  for (size_t k = 0; k < nout; ++k)
    c += fmt::format("    (({0}*)p.out[{1}])[e] = st_{2}(y{1});\n", storage(outputs[k]), k, suffix(outputs[k]));
  c += "  }\n}\n";

  // Vector kernel body: group g covers output elements [g * KFE_VEC, (g + 1) * KFE_VEC).
  c += "template <typename I>\n__device__ __forceinline__ void kfe_vector(const P& p) {\n"
       "  const I step = (I)gridDim.x * blockDim.x;\n"
       "  for (I g = (I)blockIdx.x * blockDim.x + threadIdx.x; g < (I)p.n; g += step) {\n"
       "    I off[KFE_NIN];\n    kfe_offsets<I>(p, g, off);\n";
  for (size_t k = 0; k < nin; ++k) {
    const char* st = storage(inputs[k]);
    const char* sx = suffix(inputs[k]);
    c += fmt::format(
        "    float x{0}[KFE_VEC];\n"
        "    if (p.inner1[{0}]) {{\n"
        "      const Vec<{1}, KFE_VEC> a = *(const Vec<{1}, KFE_VEC>*)((const {1}*)p.in[{0}] + off[{0}]);\n"
        "#pragma unroll\n      for (int v = 0; v < KFE_VEC; ++v) x{0}[v] = ld_{2}(a.v[v]);\n"
        "    }} else {{\n"
        "      const float s = ld_{2}(((const {1}*)p.in[{0}])[off[{0}]]);\n"
        "#pragma unroll\n      for (int v = 0; v < KFE_VEC; ++v) x{0}[v] = s;\n"
        "    }}\n",
        k, st, sx);
  }
  for (size_t k = 0; k < nout; ++k) c += fmt::format("    Vec<{}, KFE_VEC> r{};\n", storage(outputs[k]), k);
  c += "#pragma unroll\n    for (int v = 0; v < KFE_VEC; ++v) {\n";
  for (size_t k = 0; k < nout; ++k) c += fmt::format("      float y{};\n", k);
  std::string vargs;
  for (size_t k = 0; k < nin; ++k) vargs += fmt::format("{}x{}[v]", k ? ", " : "", k);
  for (size_t k = 0; k < nout; ++k) vargs += fmt::format(", y{}", k);
  c += "      kfe_prog(" + vargs + ");\n";
  for (size_t k = 0; k < nout; ++k) c += fmt::format("      r{0}.v[v] = st_{1}(y{0});\n", k, suffix(outputs[k]));
  c += "    }\n";
  for (size_t k = 0; k < nout; ++k)
    c += fmt::format("    *(Vec<{0}, KFE_VEC>*)(({0}*)p.out[{1}] + g * KFE_VEC) = r{1};\n", storage(outputs[k]), k);
  c += "  }\n}\n";

  const char* index = wide ? "long long" : "int";
  c += fmt::format("extern \"C\" __global__ void __launch_bounds__(256) kfe_s(const P p) {{ kfe_scalar<{0}>(p); }}\n"
                   "extern \"C\" __global__ void __launch_bounds__(256) kfe_v(const P p) {{ kfe_vector<{0}>(p); }}\n",
                   index);
  src.code = std::move(c);
  return src;
}

}  // namespace kiln::cuda
