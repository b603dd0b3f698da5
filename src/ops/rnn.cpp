// Recurrent ops RNN, GRU, LSTM (opset 14+): input checks and output shapes.
//
// Inputs: X, W, R, B, sequence_lens, initial_h (+ LSTM: initial_c, P). Outputs: Y, Y_h (+ LSTM: Y_c),
// all optional. layout 0 puts the sequence first ([seq, batch, ...]), layout 1 the batch.
#include "ops/infer_util.hpp"
#include "ops/rnn_attrs.hpp"

namespace kiln {
namespace {

// Checks input `i` against the expected shape (unknown dims in either are not compared).
Status expect_shape(const InferContext& ctx, size_t i, const char* name, const std::vector<Dim>& want,
                    const std::string& desc) {
  if (!ctx.has_input(i)) return Status::Ok();
  const Shape& s = ctx.input(i).shape;
  if (!s.has_rank()) return Status::Ok();
  bool ok = s.rank() == want.size();
  for (size_t k = 0; ok && k < want.size(); ++k)
    ok = !(s[k].known() && want[k].known() && s[k].value != want[k].value);
  if (!ok)
    return ctx.error("{} (input {}) has shape {}, expected {} ({})", name, i, s.to_string(),
                     Shape(want).to_string(), desc);
  return Status::Ok();
}

// The dim at `axis` of input i when its rank is `rank`, else unknown.
Dim dim_of(const InferContext& ctx, size_t i, size_t rank, size_t axis) {
  if (!ctx.has_input(i)) return Dim();
  const Shape& s = ctx.input(i).shape;
  return s.has_rank() && s.rank() == rank ? s[axis] : Dim();
}

// The first known dim, else the first symbolic one, else unknown.
Dim first_known(std::initializer_list<Dim> dims) {
  for (const Dim& d : dims)
    if (d.known()) return d;
  for (const Dim& d : dims)
    if (!d.symbol.empty()) return d;
  return Dim();
}

Dim times(int64_t k, const Dim& d) { return d.known() ? Dim(k * d.value) : Dim(); }

Status infer_rnn(InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(RnnAttrs a, parse_rnn_attrs(ctx.node()));
  const bool lstm = a.kind == RnnKind::kLstm;
  static const char* const kNames[] = {"X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"};

  const DType dt = ctx.input(0).dtype;
  if (dt != DType::kFloat32 && dt != DType::kFloat64 && dt != DType::kFloat16)
    return ctx.error("X has dtype {}, expected float16, float32 or float64", dtype_name(dt));
  for (size_t i = 1; i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) continue;
    const DType t = ctx.input(i).dtype;
    if (i == 4) {
      if (!is_integer(t)) return ctx.error("sequence_lens (input 4) has dtype {}, expected int32", dtype_name(t));
    } else if (t != dt) {
      return ctx.error("{} (input {}) has dtype {}, but X has {}", kNames[i], i, dtype_name(t), dtype_name(dt));
    }
  }

  const size_t seq_axis = a.layout == 0 ? 0 : 1, batch_axis = a.layout == 0 ? 1 : 0;
  const int64_t g = a.gates;
  // hidden_size: the attribute, else R's last dim, else W's rows / gates.
  Dim hidden;
  const Dim w_rows = dim_of(ctx, 1, 3, 1);
  if (a.hidden_size) {
    hidden = *a.hidden_size;
  } else if (dim_of(ctx, 2, 3, 2).known()) {
    hidden = dim_of(ctx, 2, 3, 2);
  } else if (w_rows.known()) {
    if (w_rows.value % g != 0)
      return ctx.error("W (input 1) has {} rows, not a multiple of the {} gates", w_rows.value, g);
    hidden = w_rows.value / g;
  }
  const Dim dirs = a.num_directions;
  const Dim seq = dim_of(ctx, 0, 3, seq_axis);
  const Dim batch = first_known({dim_of(ctx, 0, 3, batch_axis), dim_of(ctx, 4, 1, 0),
                                 dim_of(ctx, 5, 3, batch_axis), dim_of(ctx, 6, 3, batch_axis)});
  const Dim input = dim_of(ctx, 0, 3, 2);
  const Dim gh = times(g, hidden);
  const std::vector<Dim> state = a.layout == 0 ? std::vector<Dim>{dirs, batch, hidden}
                                               : std::vector<Dim>{batch, dirs, hidden};
  const char* state_desc = a.layout == 0 ? "[num_directions, batch_size, hidden_size]"
                                         : "[batch_size, num_directions, hidden_size] (layout 1)";
  // "4 x hidden_size 5": what a wrong dim was expected to be, for the error message.
  const std::string hs = hidden.known() ? fmt::format("hidden_size {}", hidden.value) : "hidden_size";
  const std::string gate_desc = fmt::format("{} x {}", g, hs);

  std::vector<Dim> x_want(3);
  x_want[2] = input;
  KILN_RETURN_IF_ERROR(expect_shape(ctx, 0, "X", x_want, "rank 3"));
  KILN_RETURN_IF_ERROR(expect_shape(ctx, 1, "W", {dirs, gh, input},
                                    fmt::format("[num_directions, {}, input_size]", gate_desc)));
  KILN_RETURN_IF_ERROR(expect_shape(ctx, 2, "R", {dirs, gh, hidden},
                                    fmt::format("[num_directions, {}, {}]", gate_desc, hs)));
  KILN_RETURN_IF_ERROR(expect_shape(ctx, 3, "B", {dirs, times(2 * g, hidden)},
                                    fmt::format("[num_directions, 2 x {}]", gate_desc)));
  KILN_RETURN_IF_ERROR(expect_shape(ctx, 4, "sequence_lens", {batch}, "[batch_size]"));
  KILN_RETURN_IF_ERROR(expect_shape(ctx, 5, "initial_h", state, state_desc));
  if (lstm) {
    KILN_RETURN_IF_ERROR(expect_shape(ctx, 6, "initial_c", state, state_desc));
    KILN_RETURN_IF_ERROR(
        expect_shape(ctx, 7, "P", {dirs, times(3, hidden)}, fmt::format("[num_directions, 3 x {}]", hs)));
  }

  if (ctx.num_outputs() > 0)
    ctx.set_output(0, dt, Shape(a.layout == 0 ? std::vector<Dim>{seq, dirs, batch, hidden}
                                              : std::vector<Dim>{batch, seq, dirs, hidden}));
  for (size_t i = 1; i < ctx.num_outputs(); ++i) ctx.set_output(i, dt, Shape(state));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "RNN", .min_inputs = 3, .max_inputs = 6, .min_outputs = 0, .max_outputs = 2,
                  .infer = kiln::infer_rnn});
KILN_REGISTER_OP({.name = "GRU", .min_inputs = 3, .max_inputs = 6, .min_outputs = 0, .max_outputs = 2,
                  .infer = kiln::infer_rnn});
KILN_REGISTER_OP({.name = "LSTM", .min_inputs = 3, .max_inputs = 8, .min_outputs = 0, .max_outputs = 3,
                  .infer = kiln::infer_rnn});
