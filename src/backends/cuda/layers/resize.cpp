// Resize (opset 19 semantics) with constant scales or sizes: nearest (any dtype, every
// nearest_mode) through per-axis index maps; linear and cubic (float dtypes, up to 3 resized axes)
// through a separable weighted kernel. Taps are computed on the host at create exactly as the
// CPU reference does. Not here (left unsupported): antialias, tf_crop_and_resize,
// keep_aspect_ratio_policy other than stretch.
#include <algorithm>
#include <cmath>

#include "backends/cuda/device_buffer.hpp"
#include "backends/cuda/layers/axis_map_layer.hpp"
#include "backends/cuda/layers/nn_kernels.hpp"

namespace kiln::cuda {
namespace {

enum class Mode { kNearest, kLinear, kCubic };
enum class Coord { kHalfPixel, kHalfPixelSymmetric, kPytorchHalfPixel, kAlignCorners, kAsymmetric };
enum class Nearest { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil };

struct Tap {
  int64_t index;
  double weight;
};

struct ResizeSetup {
  Mode mode = Mode::kNearest;
  Coord coord = Coord::kHalfPixel;
  Nearest nearest = Nearest::kRoundPreferFloor;
  double cubic_a = -0.75;
  bool exclude_outside = false;
  Dims in, out;
  std::vector<double> scales;             // per axis (1 where not resized)
  std::vector<std::vector<std::vector<Tap>>> taps;  // [axis][output index]
  std::vector<bool> resized;
};

double original_coord(const ResizeSetup& s, int64_t x, double scale, int64_t in_len, int64_t out_len) {
  const double xr = static_cast<double>(x), in = static_cast<double>(in_len), out_w = scale * in;
  switch (s.coord) {
    case Coord::kHalfPixel: return (xr + 0.5) / scale - 0.5;
    case Coord::kHalfPixelSymmetric: {
      const double adjustment = static_cast<double>(out_len) / out_w;
      return in / 2 * (1 - adjustment) + (xr + 0.5) / scale - 0.5;
    }
    case Coord::kPytorchHalfPixel: return out_len > 1 ? (xr + 0.5) / scale - 0.5 : 0.0;
    case Coord::kAlignCorners: return out_w == 1 ? 0.0 : xr * (in - 1) / (out_w - 1);
    case Coord::kAsymmetric: return xr / scale;
  }
  return 0;
}

double cubic_weight(double t, double a) {
  t = std::abs(t);
  if (t <= 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a;
  return 0;
}

std::vector<Tap> taps_for(const ResizeSetup& s, double x, int64_t in_len) {
  // The left neighbour i and ratio r in (0, 1]: an integer x is the right end of [x-1, x].
  int64_t i = static_cast<int64_t>(std::floor(x));
  double r = x - static_cast<double>(i);
  if (r == 0) {
    --i;
    r = 1;
  }
  std::vector<Tap> taps;
  if (s.mode == Mode::kNearest) {
    bool right = true;
    switch (s.nearest) {
      case Nearest::kRoundPreferFloor: right = r > 0.5 || r == 1; break;
      case Nearest::kRoundPreferCeil: right = r >= 0.5; break;
      case Nearest::kFloor: right = r == 1; break;
      case Nearest::kCeil: right = true; break;
    }
    taps.push_back({i + (right ? 1 : 0), 1.0});
  } else if (s.mode == Mode::kLinear) {
    taps = {{i, 1 - r}, {i + 1, r}};
  } else {
    for (int64_t j = -1; j <= 2; ++j) taps.push_back({i + j, cubic_weight(static_cast<double>(j) - r, s.cubic_a)});
  }
  if (s.exclude_outside && s.mode != Mode::kNearest) {
    double sum = 0;
    for (Tap& t : taps) {
      if (t.index < 0 || t.index >= in_len) t.weight = 0;
      sum += t.weight;
    }
    for (Tap& t : taps) t.weight = sum != 0 ? t.weight / sum : 0;
  }
  std::vector<Tap> kept;
  for (Tap t : taps) {
    if (t.weight == 0 && s.mode != Mode::kNearest) continue;
    t.index = std::clamp<int64_t>(t.index, 0, in_len - 1);  // edge padding
    kept.push_back(t);
  }
  return kept;
}

std::optional<std::vector<double>> constant_doubles(const Node& n, size_t i) {
  if (input_absent(n, i) || !n.inputs[i]->constant) return std::nullopt;
  return n.inputs[i]->constant->to_double_vector();
}

std::optional<ResizeSetup> resize_setup(const Node& n) {
  if (!n.has_input(0) || !n.has_output(0) || !all_static(n)) return std::nullopt;
  const DType t = n.inputs[0]->type.dtype;
  const size_t es = dtype_size(t);
  if (n.outputs[0]->type.dtype != t || !(es == 1 || es == 2 || es == 4 || es == 8)) return std::nullopt;
  ResizeSetup s;
  s.in = *static_dims(n.inputs[0]);
  s.out = *static_dims(n.outputs[0]);
  const size_t rank = s.in.size();
  if (rank == 0 || rank > 8 || s.out.size() != rank || dims_numel(s.in) == 0) return std::nullopt;
  const std::string mode = n.attrs.s("mode", "nearest"), coord = n.attrs.s("coordinate_transformation_mode", "half_pixel");
  const std::string nearest = n.attrs.s("nearest_mode", "round_prefer_floor");
  if (mode == "nearest") s.mode = Mode::kNearest;
  else if (mode == "linear") s.mode = Mode::kLinear;
  else if (mode == "cubic") s.mode = Mode::kCubic;
  else return std::nullopt;
  if (coord == "half_pixel") s.coord = Coord::kHalfPixel;
  else if (coord == "half_pixel_symmetric") s.coord = Coord::kHalfPixelSymmetric;
  else if (coord == "pytorch_half_pixel") s.coord = Coord::kPytorchHalfPixel;
  else if (coord == "align_corners") s.coord = Coord::kAlignCorners;
  else if (coord == "asymmetric") s.coord = Coord::kAsymmetric;
  else return std::nullopt;
  if (nearest == "round_prefer_floor") s.nearest = Nearest::kRoundPreferFloor;
  else if (nearest == "round_prefer_ceil") s.nearest = Nearest::kRoundPreferCeil;
  else if (nearest == "floor") s.nearest = Nearest::kFloor;
  else if (nearest == "ceil") s.nearest = Nearest::kCeil;
  else return std::nullopt;
  if (n.attrs.i("antialias", 0) != 0 || n.attrs.s("keep_aspect_ratio_policy", "stretch") != "stretch") return std::nullopt;
  s.cubic_a = n.attrs.f("cubic_coeff_a", -0.75f);
  s.exclude_outside = n.attrs.i("exclude_outside", 0) != 0;
  if (s.mode != Mode::kNearest && !is_gpu_float(t)) return std::nullopt;

  std::vector<int64_t> axes = n.attrs.ints("axes");
  if (axes.empty())
    for (size_t i = 0; i < rank; ++i) axes.push_back(static_cast<int64_t>(i));
  for (int64_t& a : axes) {
    if (a < 0) a += static_cast<int64_t>(rank);
    if (a < 0 || a >= static_cast<int64_t>(rank)) return std::nullopt;
  }
  auto scales = constant_doubles(n, 2);
  auto sizes = constant_ints(n, 3);
  if ((!input_absent(n, 2) && !scales) || (!input_absent(n, 3) && !sizes) || scales.has_value() == sizes.has_value())
    return std::nullopt;
  s.scales.assign(rank, 1.0);
  for (size_t i = 0; i < axes.size(); ++i) {
    const size_t a = static_cast<size_t>(axes[i]);
    if (scales) {
      if (scales->size() != axes.size() || !((*scales)[i] > 0)) return std::nullopt;
      s.scales[a] = (*scales)[i];
    } else {
      if (sizes->size() != axes.size()) return std::nullopt;
      s.scales[a] = static_cast<double>((*sizes)[i]) / static_cast<double>(s.in[a]);
    }
  }
  s.taps.resize(rank);
  s.resized.assign(rank, false);
  for (size_t k = 0; k < rank; ++k) {
    for (int64_t o = 0; o < s.out[k]; ++o) {
      const double x = original_coord(s, o, s.scales[k], s.in[k], s.out[k]);
      s.taps[k].push_back(taps_for(s, x, s.in[k]));
      const auto& tk = s.taps[k].back();
      if (tk.size() != 1 || tk[0].index != o || tk[0].weight != 1.0) s.resized[k] = true;
    }
    if (s.in[k] != s.out[k]) s.resized[k] = true;
  }
  if (s.mode != Mode::kNearest && std::count(s.resized.begin(), s.resized.end(), true) > 3) return std::nullopt;
  return s;
}

class ResampleLayer : public CudaLayer {
 public:
  Status enqueue(const LaunchArgs& a) const override {
    const DeviceTensor &x = a.inputs[0], &y = a.outputs[0];
    KILN_CUDA_CHECK(kernels::resample(x.dtype, x.data, y.data, offsets_.as<int64_t>(), weights_.as<float>(), p_, a.stream));
    return Status::Ok();
  }
  kernels::ResampleParams p_;
  DeviceBuffer offsets_, weights_;
};

Expected<std::unique_ptr<CudaLayer>> create_resize(const Node& n, const LayerChoice&) {
  auto s = resize_setup(n);
  if (!s) return invalid_model("{}: cannot resize this node on CUDA", n.describe());
  const size_t rank = s->in.size();
  if (s->mode == Mode::kNearest) {
    AxisMaps maps(rank);
    for (size_t k = 0; k < rank; ++k)
      for (const auto& t : s->taps[k]) {
        if (t.empty()) return internal_error("{}: a nearest tap is missing", n.describe());
        maps[k].push_back(t[0].index);
      }
    return make_axis_map_layer(s->in, maps, -1);
  }
  auto layer = std::make_unique<ResampleLayer>();
  kernels::ResampleParams& p = layer->p_;
  p.rank = static_cast<int>(rank);
  p.taps = s->mode == Mode::kLinear ? 2 : 4;
  std::vector<int64_t> offsets;
  std::vector<float> weights;
  int64_t stride = 1;
  std::vector<int64_t> strides(rank);
  for (size_t k = rank; k-- > 0;) {
    strides[k] = stride;
    stride *= s->in[k];
  }
  int slot = 0;
  for (size_t k = 0; k < rank; ++k) {
    p.out_dims[k] = s->out[k];
    p.in_strides[k] = strides[k];
    p.resized[k] = -1;
    if (!s->resized[k]) continue;
    p.resized[k] = slot;
    p.table_offset[slot] = static_cast<int64_t>(offsets.size());
    ++slot;
    for (const auto& taps : s->taps[k]) {
      if (static_cast<int>(taps.size()) > p.taps) return internal_error("{}: too many resize taps", n.describe());
      for (int j = 0; j < p.taps; ++j) {
        const bool real = j < static_cast<int>(taps.size());
        offsets.push_back(real ? taps[static_cast<size_t>(j)].index * strides[k] : 0);
        weights.push_back(real ? static_cast<float>(taps[static_cast<size_t>(j)].weight) : 0.f);
      }
    }
  }
  KILN_ASSIGN_OR_RETURN(layer->offsets_, DeviceBuffer::allocate(offsets.size() * sizeof(int64_t)));
  KILN_ASSIGN_OR_RETURN(layer->weights_, DeviceBuffer::allocate(weights.size() * sizeof(float)));
  if (!offsets.empty()) {
    KILN_CUDA_CHECK(cudaMemcpy(layer->offsets_.get(), offsets.data(), offsets.size() * sizeof(int64_t), cudaMemcpyHostToDevice));
    KILN_CUDA_CHECK(cudaMemcpy(layer->weights_.get(), weights.data(), weights.size() * sizeof(float), cudaMemcpyHostToDevice));
  }
  return std::unique_ptr<CudaLayer>(std::move(layer));
}

}  // namespace
}  // namespace kiln::cuda

KILN_REGISTER_CUDA_LAYER("Resize",
                         kiln::cuda::CudaLayerFactory{
                             .supports = [](const kiln::Node& n) { return kiln::cuda::resize_setup(n).has_value(); },
                             .tactics = nullptr,
                             .create = kiln::cuda::create_resize});
