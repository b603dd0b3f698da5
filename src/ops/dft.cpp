// DFT (opset 20: dft_length and axis as inputs) and STFT (opset 17). Complex values are a last
// dim of 2 (real, imaginary); a last dim of 1 is a real signal.
#include "ops/infer_util.hpp"

namespace kiln {
namespace {

Expected<bool> read_flag(const InferContext& ctx, const char* name, int64_t def) {
  const int64_t v = ctx.attrs().i(name, def);
  if (v != 0 && v != 1) return ctx.error("attribute {} must be 0 or 1, got {}", name, v);
  return v == 1;
}

// The value of a scalar integer input (a 1-element tensor is accepted too); nullopt when unknown.
Expected<std::optional<int64_t>> scalar_input(const InferContext& ctx, size_t i, const char* name) {
  if (!is_integer(ctx.input(i).dtype))
    return ctx.error("{} must be an int32/int64 scalar, got {}", name, dtype_name(ctx.input(i).dtype));
  auto v = int_values(ctx, i);
  if (!v) return std::optional<int64_t>();
  if (v->size() != 1) return ctx.error("{} must be a scalar, got {} values", name, v->size());
  return std::optional<int64_t>((*v)[0]);
}

Status check_float(const InferContext& ctx, size_t i, const char* name) {
  if (!is_floating(ctx.input(i).dtype))
    return ctx.error("{} must be a float tensor, got {}", name, dtype_name(ctx.input(i).dtype));
  return Status::Ok();
}

Status infer_dft(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_float(ctx, 0, "input"));
  KILN_ASSIGN_OR_RETURN(const bool inverse, read_flag(ctx, "inverse", 0));
  KILN_ASSIGN_OR_RETURN(const bool onesided, read_flag(ctx, "onesided", 0));
  const TensorType& in = ctx.input(0);
  std::optional<int64_t> length;
  if (ctx.has_input(1)) {
    KILN_ASSIGN_OR_RETURN(length, scalar_input(ctx, 1, "dft_length"));
    if (length && *length < 1) return ctx.error("dft_length must be positive, got {}", *length);
  }
  std::optional<int64_t> axis_value = -2;
  if (ctx.has_input(2)) {
    KILN_ASSIGN_OR_RETURN(axis_value, scalar_input(ctx, 2, "axis"));
  }
  if (!in.shape.has_rank()) {
    ctx.set_output(0, in.dtype, Shape());
    return Status::Ok();
  }
  const int64_t rank = static_cast<int64_t>(in.shape.rank());
  if (rank < 2) return ctx.error("input must have rank >= 2 (signal dims, then 1 or 2 components), got {}", in.shape.to_string());
  const Dim& comp = in.shape[static_cast<size_t>(rank - 1)];
  if (comp.known() && comp.value != 1 && comp.value != 2)
    return ctx.error("the last dim of the input must be 1 (real) or 2 (complex), got {}", comp.value);
  // One-sided forward transforms take real input (RFFT); one-sided inverse ones complex (IRFFT).
  if (comp.known() && onesided && !inverse && comp.value == 2)
    return ctx.error("onesided=1 with inverse=0 needs a real input (last dim 1), got {}", in.shape.to_string());
  if (comp.known() && onesided && inverse && comp.value == 1)
    return ctx.error("onesided=1 with inverse=1 needs a complex input (last dim 2), got {}", in.shape.to_string());
  const bool irfft = onesided && inverse;
  std::vector<Dim> out = in.shape.dims();
  out.back() = Dim(irfft ? 1 : 2);
  if (!axis_value) {  // the transformed dim is unknown, and with it every dim whose size may change
    if (length || onesided)
      for (size_t i = 0; i + 1 < out.size(); ++i) out[i] = Dim();
    ctx.set_output(0, in.dtype, Shape(out));
    return Status::Ok();
  }
  if (*axis_value < -rank || *axis_value > rank - 2 || *axis_value == -1)
    return ctx.error("axis {} is out of range [-{}, -2] U [0, {}] for an input of rank {}", *axis_value, rank,
                     rank - 2, rank);
  const size_t axis = static_cast<size_t>(*axis_value < 0 ? *axis_value + rank : *axis_value);
  const Dim& n_in = in.shape[axis];
  if (!ctx.has_input(1) && n_in.known()) {
    length = irfft ? 2 * (n_in.value - 1) : n_in.value;
    if (*length < 1) return ctx.error("the default dft_length of axis {} (size {}) is not positive", axis, n_in.value);
  }
  out[axis] = !length ? Dim() : (onesided && !inverse) ? Dim(*length / 2 + 1) : Dim(*length);
  ctx.set_output(0, in.dtype, Shape(out));
  return Status::Ok();
}

Status infer_stft(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_float(ctx, 0, "signal"));
  KILN_ASSIGN_OR_RETURN(const bool onesided, read_flag(ctx, "onesided", 1));
  const Shape& sig = ctx.input(0).shape;
  if (sig.has_rank() && sig.rank() != 3)
    return ctx.error("signal must be [batch, length, 1 or 2], got {}", sig.to_string());
  const Dim comp = sig.has_rank() ? sig[2] : Dim();
  if (comp.known() && comp.value != 1 && comp.value != 2)
    return ctx.error("the last dim of signal must be 1 (real) or 2 (complex), got {}", comp.value);
  if (onesided && comp.known() && comp.value == 2)
    return ctx.error("onesided=1 needs a real signal (last dim 1), got {}", sig.to_string());
  KILN_ASSIGN_OR_RETURN(const std::optional<int64_t> step, scalar_input(ctx, 1, "frame_step"));
  if (step && *step < 1) return ctx.error("frame_step must be positive, got {}", *step);
  Dim window;
  if (ctx.has_input(2)) {
    if (ctx.input(2).dtype != ctx.input(0).dtype)
      return ctx.error("window ({}) and signal ({}) must have one dtype", dtype_name(ctx.input(2).dtype),
                       dtype_name(ctx.input(0).dtype));
    const Shape& w = ctx.input(2).shape;
    if (w.has_rank() && w.rank() != 1) return ctx.error("window must be 1-D, got {}", w.to_string());
    if (w.has_rank()) window = w[0];
  }
  // The frame length: frame_length, else the window's length, else the whole signal.
  Dim frame = ctx.has_input(2) ? window : sig.has_rank() ? sig[1] : Dim();
  if (ctx.has_input(3)) {
    KILN_ASSIGN_OR_RETURN(const std::optional<int64_t> fl, scalar_input(ctx, 3, "frame_length"));
    if (fl && *fl < 1) return ctx.error("frame_length must be positive, got {}", *fl);
    if (fl && window.known() && window.value != *fl)
      return ctx.error("window has {} values but frame_length is {}", window.value, *fl);
    frame = fl ? Dim(*fl) : Dim();
  }
  if (frame.known() && frame.value < 1) return ctx.error("the frame length must be positive, got {}", frame.value);
  Dim frames;
  const Dim len = sig.has_rank() ? sig[1] : Dim();
  if (len.known() && frame.known() && len.value < frame.value)
    return ctx.error("the signal ({} samples) is shorter than one frame ({})", len.value, frame.value);
  if (len.known() && frame.known() && step) frames = Dim(1 + (len.value - frame.value) / *step);
  const Dim bins = !frame.known() ? Dim() : onesided ? Dim(frame.value / 2 + 1) : frame;
  ctx.set_output(0, ctx.input(0).dtype, Shape({sig.has_rank() ? sig[0] : Dim(), frames, bins, Dim(2)}));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "DFT", .min_inputs = 1, .max_inputs = 3, .infer = kiln::infer_dft});
KILN_REGISTER_OP({.name = "STFT", .min_inputs = 2, .max_inputs = 4, .infer = kiln::infer_stft});
