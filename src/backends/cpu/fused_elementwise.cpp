// kiln.FusedElementwise on the CPU (the reference the generated CUDA kernels are tested against):
// interprets the program per output element, each instruction in float, rounded to its type.
#include <vector>

#include "ir/half.hpp"
#include "ops/fused_elementwise.hpp"
#include "ops/op_registry.hpp"

namespace kiln {
namespace {

std::vector<float> to_floats(const Tensor& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    switch (t.dtype()) {
      case DType::kFloat32: out[i] = t.data<float>()[i]; break;
      case DType::kFloat16: out[i] = static_cast<float>(t.data<Half>()[i]); break;
      case DType::kBFloat16: out[i] = static_cast<float>(t.data<BFloat16>()[i]); break;
      case DType::kBool: out[i] = t.data<bool>()[i] ? 1.f : 0.f; break;
      default: break;
    }
  }
  return out;
}

void store(Tensor& t, int64_t i, float v) {
  switch (t.dtype()) {
    case DType::kFloat32: t.data<float>()[i] = v; break;
    case DType::kFloat16: t.data<Half>()[i] = Half(v); break;
    case DType::kBFloat16: t.data<BFloat16>()[i] = BFloat16(v); break;
    case DType::kBool: t.data<bool>()[i] = v != 0.f; break;
    default: break;
  }
}

Status fused_elementwise_kernel(KernelContext& ctx) {
  auto prog = fused_ew::parse_program(ctx.attrs().s("program", ""));
  if (!prog.ok()) return ctx.error("{}", prog.status().message());
  const size_t n_in = ctx.num_inputs();
  if (prog->num_inputs != static_cast<int>(n_in) || prog->outputs.size() != ctx.num_outputs())
    return ctx.error("the program does not match the node's inputs and outputs");
  std::vector<Tensor*> outs;
  for (size_t k = 0; k < ctx.num_outputs(); ++k) outs.push_back(&ctx.output(k));
  const Dims dims = outs[0]->dims();
  const size_t rank = dims.size();
  // Per input: its values as float and its element strides over the output dims (0 = broadcast).
  std::vector<std::vector<float>> vals;
  std::vector<Dims> strides;
  for (size_t i = 0; i < n_in; ++i) {
    const Tensor& t = ctx.input(i);
    if (!fused_ew::program_dtype(t.dtype())) return ctx.unsupported_dtype(t.dtype(), i);
    const Dims& d = t.dims();
    if (d.size() > rank) return ctx.error("input {} has more dims than the output", i);
    Dims s(rank, 0);
    int64_t step = 1;
    for (size_t j = d.size(); j-- > 0;) {
      const size_t o = rank - d.size() + j;
      if (d[j] != dims[o] && d[j] != 1) return ctx.error("input {} does not broadcast to the output", i);
      s[o] = d[j] == 1 ? 0 : step;
      step *= d[j];
    }
    vals.push_back(to_floats(t));
    strides.push_back(std::move(s));
  }
  const int64_t total = dims_numel(dims);
  std::vector<int64_t> idx(rank, 0), off(n_in, 0);
  std::vector<float> reg(prog->code.size());
  float args[3];
  for (int64_t e = 0; e < total; ++e) {
    for (size_t k = 0; k < prog->code.size(); ++k) {
      const fused_ew::Instr& in = prog->code[k];
      for (size_t a = 0; a < in.args.size(); ++a) {
        const fused_ew::Operand& o = in.args[a];
        args[a] = o.kind == fused_ew::Operand::kImm    ? o.imm
                  : o.kind == fused_ew::Operand::kTemp ? reg[static_cast<size_t>(o.index)]
                                                       : vals[static_cast<size_t>(o.index)][off[o.index]];
      }
      reg[k] = fused_ew::round_to(in.dtype, fused_ew::eval_instr(in, args));
    }
    for (size_t k = 0; k < outs.size(); ++k) store(*outs[k], e, reg[static_cast<size_t>(prog->outputs[k])]);
    // Next output index (innermost fastest), updating the input offsets.
    for (size_t j = rank; j-- > 0;) {
      if (++idx[j] < dims[j]) {
        for (size_t i = 0; i < n_in; ++i) off[i] += strides[i][j];
        break;
      }
      for (size_t i = 0; i < n_in; ++i) off[i] -= strides[i][j] * (dims[j] - 1);
      idx[j] = 0;
    }
  }
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_CPU_KERNEL_DOMAIN("kiln", "FusedElementwise", kiln::fused_elementwise_kernel);
