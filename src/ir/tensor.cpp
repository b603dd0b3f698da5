#include "ir/tensor.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#include "util/error.hpp"

namespace kiln {

namespace {
std::shared_ptr<void> allocate(size_t bytes) {
  size_t rounded = (bytes + 63) / 64 * 64;
  if (rounded == 0) rounded = 64;
  void* p = std::aligned_alloc(64, rounded);
  if (!p) throw std::bad_alloc();
  return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}
// String tensors hold std::string objects (default-constructed: empty), so that numeric code,
// which sees dtype_size(kString) == 0, never touches them as bytes.
std::shared_ptr<void> allocate_strings(int64_t n) {
  auto* p = new std::string[static_cast<size_t>(n > 0 ? n : 1)];
  return std::shared_ptr<void>(p, [](void* q) { delete[] static_cast<std::string*>(q); });
}
}  // namespace

Tensor::Tensor(DType dtype, Dims dims) : dtype_(dtype), dims_(std::move(dims)) {
  storage_ = dtype_ == DType::kString ? allocate_strings(numel()) : allocate(nbytes());
  data_ = storage_.get();
}

Tensor Tensor::zeros(DType dtype, Dims dims) {
  Tensor t(dtype, std::move(dims));
  std::memset(t.data_, 0, t.nbytes());
  return t;
}

Tensor Tensor::from_bytes(DType dtype, Dims dims, const void* data) {
  Tensor t(dtype, std::move(dims));
  if (t.nbytes()) std::memcpy(t.data_, data, t.nbytes());
  return t;
}

Tensor Tensor::wrap(DType dtype, Dims dims, void* data, std::shared_ptr<void> keepalive) {
  Tensor t;
  t.dtype_ = dtype;
  t.dims_ = std::move(dims);
  t.storage_ = std::move(keepalive);
  t.data_ = data;
  return t;
}

Tensor Tensor::reshaped(Dims dims) const {
  Tensor t = *this;
  t.dims_ = std::move(dims);
  return t;
}

Tensor Tensor::clone() const {
  if (dtype_ != DType::kString) return from_bytes(dtype_, dims_, data_);
  Tensor t(dtype_, dims_);
  std::copy(data<std::string>(), data<std::string>() + numel(), t.data<std::string>());
  return t;
}

namespace {
// Number -> string as the ONNX reference prints it: the shortest text that reads back to the same
// value ("0.1", "1e-05", "inf", "-inf", "nan"); integers and bools in decimal.
template <typename S>
std::string number_text(S v) {
  using C = compute_t<S>;
  const C c = static_cast<C>(v);
  if constexpr (std::is_floating_point_v<C>) {
    if (std::isnan(c)) return "NaN";
    if (std::isinf(c)) return c < 0 ? "-INF" : "INF";
  }
  if constexpr (std::is_same_v<S, bool>) {
    return v ? "1" : "0";
  } else {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, c);
    return std::string(buf, r.ptr);
  }
}
}  // namespace

Tensor Tensor::cast(DType to) const {
  Tensor out(to, dims_);
  const int64_t n = numel();
  if (dtype_ == DType::kString && to == DType::kString) return clone();
  if (to == DType::kString) {
    std::string* dst = out.data<std::string>();
    dispatch_dtype(dtype_, [&](auto tag) {
      using S = typename decltype(tag)::type;
      for (int64_t i = 0; i < n; ++i) dst[i] = number_text(data<S>()[i]);
    });
    return out;
  }
  // float8 goes through float32 (saturating, as ONNX Cast's default saturate=1).
  if (dtype_ == DType::kFloat8E4M3FN || to == DType::kFloat8E4M3FN) {
    if (dtype_ == to) return clone();
    if (to == DType::kFloat8E4M3FN) {
      const Tensor f = dtype_ == DType::kFloat32 ? *this : cast(DType::kFloat32);
      for (int64_t i = 0; i < n; ++i) out.data<Float8E4M3FN>()[i] = Float8E4M3FN(f.data<float>()[i]);
      return out;
    }
    Tensor f(DType::kFloat32, dims_);
    for (int64_t i = 0; i < n; ++i) f.data<float>()[i] = static_cast<float>(data<Float8E4M3FN>()[i]);
    return to == DType::kFloat32 ? f : f.cast(to);
  }
  if (dtype_ == DType::kString) {
    // Text that is not a number reads as NaN for floats, 0 for integers.
    const std::string* src = data<std::string>();
    Tensor as_double(DType::kFloat64, dims_);
    for (int64_t i = 0; i < n; ++i) {
      char* end = nullptr;
      const double v = std::strtod(src[i].c_str(), &end);
      as_double.data<double>()[i] = end != src[i].c_str() ? v : is_floating(to) ? std::nan("") : 0.0;
    }
    return as_double.cast(to);
  }
  dispatch_dtype(dtype_, [&](auto src_tag) {
    using S = typename decltype(src_tag)::type;
    const S* src = data<S>();
    dispatch_dtype(to, [&](auto dst_tag) {
      using D = typename decltype(dst_tag)::type;
      D* dst = out.data<D>();
      for (int64_t i = 0; i < n; ++i) {
        if constexpr (std::is_same_v<D, bool>) {
          dst[i] = static_cast<compute_t<S>>(src[i]) != compute_t<S>(0);
        } else if constexpr (std::is_same_v<D, Half> || std::is_same_v<D, BFloat16>) {
          dst[i] = D(static_cast<float>(static_cast<compute_t<S>>(src[i])));
        } else {
          dst[i] = static_cast<D>(static_cast<compute_t<S>>(src[i]));
        }
      }
    });
  });
  return out;
}

Expected<std::vector<int64_t>> Tensor::to_int64_vector() const {
  if (!is_integer(dtype_))
    return invalid_argument("expected an integer tensor, got {}", describe());
  std::vector<int64_t> v(static_cast<size_t>(numel()));
  dispatch_dtype(dtype_, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p = data<T>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int64_t>(p[i]);
  });
  return v;
}

std::vector<double> Tensor::to_double_vector() const {
  if (dtype_ == DType::kFloat8E4M3FN) return cast(DType::kFloat32).to_double_vector();
  std::vector<double> v(static_cast<size_t>(numel()));
  dispatch_dtype(dtype_, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p = data<T>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(static_cast<compute_t<T>>(p[i]));
  });
  return v;
}

double Tensor::scalar_as_double() const {
  double v = 0;
  if (numel() < 1) return v;
  if (dtype_ == DType::kFloat8E4M3FN) return static_cast<float>(data<Float8E4M3FN>()[0]);
  dispatch_dtype(dtype_, [&](auto tag) {
    using T = typename decltype(tag)::type;
    v = static_cast<double>(static_cast<compute_t<T>>(data<T>()[0]));
  });
  return v;
}

std::string Tensor::describe() const {
  return fmt::format("{}[{}]", dtype_name(dtype_), dims_to_string(dims_));
}

}  // namespace kiln
