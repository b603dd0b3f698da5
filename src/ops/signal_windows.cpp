// Generated signal tensors: the HannWindow / HammingWindow / BlackmanWindow [size] and the
// MelWeightMatrix [dft_length / 2 + 1, num_mel_bins] (opset 17), in dtype output_datatype.
#include "ops/infer_util.hpp"
#include "ops/onnx_dtype.hpp"

namespace kiln {
namespace {

Expected<DType> output_datatype(const InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(DType t, dtype_from_onnx_code(ctx, "output_datatype", ctx.attrs().i("output_datatype", 1)));
  if (t == DType::kBool) return ctx.error("attribute output_datatype must be a numeric type, got bool");
  return t;
}

// A scalar input's value (nullopt when unknown); `is_int` picks the accepted dtypes.
Expected<std::optional<double>> scalar(const InferContext& ctx, size_t i, const char* name, bool is_int) {
  const DType t = ctx.input(i).dtype;
  if (is_int ? !is_integer(t) : !is_floating(t))
    return ctx.error("{} must be {} scalar, got {}", name, is_int ? "an int32/int64" : "a float", dtype_name(t));
  const Tensor* v = ctx.value(i);
  if (!v) return std::optional<double>();
  if (v->numel() != 1) return ctx.error("{} must be a scalar, got {} values", name, v->numel());
  return std::optional<double>(v->scalar_as_double());
}

Status infer_window(InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(DType out, output_datatype(ctx));
  const int64_t periodic = ctx.attrs().i("periodic", 1);
  if (periodic != 0 && periodic != 1) return ctx.error("attribute periodic must be 0 or 1, got {}", periodic);
  KILN_ASSIGN_OR_RETURN(const std::optional<double> size, scalar(ctx, 0, "size", true));
  if (size && *size < 0) return ctx.error("size must not be negative, got {}", *size);
  ctx.set_output(0, out, Shape({size ? Dim(static_cast<int64_t>(*size)) : Dim()}));
  return Status::Ok();
}

Status infer_mel_weight_matrix(InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(DType out, output_datatype(ctx));
  KILN_ASSIGN_OR_RETURN(const std::optional<double> bins, scalar(ctx, 0, "num_mel_bins", true));
  KILN_ASSIGN_OR_RETURN(const std::optional<double> length, scalar(ctx, 1, "dft_length", true));
  KILN_ASSIGN_OR_RETURN(const std::optional<double> rate, scalar(ctx, 2, "sample_rate", true));
  KILN_ASSIGN_OR_RETURN(const std::optional<double> lower, scalar(ctx, 3, "lower_edge_hertz", false));
  KILN_ASSIGN_OR_RETURN(const std::optional<double> upper, scalar(ctx, 4, "upper_edge_hertz", false));
  if (bins && *bins < 1) return ctx.error("num_mel_bins must be positive, got {}", *bins);
  if (length && *length < 1) return ctx.error("dft_length must be positive, got {}", *length);
  if (rate && *rate < 1) return ctx.error("sample_rate must be positive, got {}", *rate);
  if (lower && !(*lower >= 0)) return ctx.error("lower_edge_hertz must not be negative, got {}", *lower);
  if (lower && upper && !(*lower < *upper))
    return ctx.error("lower_edge_hertz ({}) must be below upper_edge_hertz ({})", *lower, *upper);
  ctx.set_output(0, out,
                 Shape({length ? Dim(static_cast<int64_t>(*length) / 2 + 1) : Dim(),
                        bins ? Dim(static_cast<int64_t>(*bins)) : Dim()}));
  return Status::Ok();
}

}  // namespace
}  // namespace kiln

KILN_REGISTER_OP({.name = "HannWindow", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_window});
KILN_REGISTER_OP({.name = "HammingWindow", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_window});
KILN_REGISTER_OP({.name = "BlackmanWindow", .min_inputs = 1, .max_inputs = 1, .infer = kiln::infer_window});
KILN_REGISTER_OP({.name = "MelWeightMatrix", .min_inputs = 5, .max_inputs = 5,
                  .infer = kiln::infer_mel_weight_matrix});
