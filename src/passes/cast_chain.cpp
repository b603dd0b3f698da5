// cast-chain: Cast(Cast(x, B), C) -> Cast(x, C) when every value of x's type is exactly a value
// of B (so the first Cast loses nothing and the second sees x's own value).
#include "passes/pass.hpp"
#include "passes/pass_util.hpp"

namespace kiln {

namespace {

// Whether every value of `from` converts to `to` exactly.
bool exact_widening(DType from, DType to) {
  using D = DType;
  if (from == to) return true;
  switch (from) {
    case D::kBool: return to != D::kUndefined && (is_integer(to) || is_floating(to));
    case D::kFloat16: case D::kBFloat16: return to == D::kFloat32 || to == D::kFloat64;
    case D::kFloat32: return to == D::kFloat64;
    case D::kInt8:
      return to == D::kInt16 || to == D::kInt32 || to == D::kInt64 || to == D::kFloat16 || to == D::kFloat32 ||
             to == D::kFloat64 || to == D::kBFloat16;
    case D::kUInt8:
      return to == D::kInt16 || to == D::kUInt16 || to == D::kInt32 || to == D::kUInt32 || to == D::kInt64 ||
             to == D::kUInt64 || to == D::kFloat16 || to == D::kFloat32 || to == D::kFloat64 || to == D::kBFloat16;
    case D::kInt16: return to == D::kInt32 || to == D::kInt64 || to == D::kFloat32 || to == D::kFloat64;
    case D::kUInt16:
      return to == D::kInt32 || to == D::kUInt32 || to == D::kInt64 || to == D::kUInt64 || to == D::kFloat32 ||
             to == D::kFloat64;
    case D::kInt32: return to == D::kInt64 || to == D::kFloat64;
    case D::kUInt32: return to == D::kInt64 || to == D::kUInt64 || to == D::kFloat64;
    default: return false;
  }
}

class CastChain : public Pass {
 public:
  std::string_view name() const override { return "cast-chain"; }

  Expected<bool> run(Graph& g) override {
    bool changed = false;
    for (const auto& n : g.nodes()) {
      if (!n->domain.empty() || n->op_type != "Cast" || !n->has_input(0)) continue;
      Node* inner = passes::producer_of(n->inputs[0], "Cast");
      if (!inner || !inner->has_input(0)) continue;
      DType from = inner->inputs[0]->type.dtype, mid = n->inputs[0]->type.dtype;
      if (from == DType::kUndefined || mid == DType::kUndefined || !exact_widening(from, mid)) continue;
      n->inputs[0] = inner->inputs[0];  // the inner Cast goes with dead-code when nothing else reads it
      changed = true;
    }
    return changed;
  }
};

}  // namespace

std::unique_ptr<Pass> make_cast_chain_pass() { return std::make_unique<CastChain>(); }

}  // namespace kiln
