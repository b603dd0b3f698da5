#include "backends/cpu/copy_util.hpp"

namespace kiln {

std::vector<int64_t> contiguous_strides(const Dims& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (size_t k = dims.size(); k-- > 1;) s[k - 1] = s[k] * dims[k];
  return s;
}

namespace {

template <typename U>
void copy_loop(U* dst, const U* src, const Dims& dims, const std::vector<int64_t>& strides) {
  const size_t r = dims.size();
  const int64_t inner = dims[r - 1];
  const int64_t inner_stride = strides[r - 1];
  std::vector<int64_t> idx(r - 1, 0);
  Dims outer(dims.begin(), dims.end() - 1);
  int64_t offset = 0;  // source offset of idx
  while (true) {
    const U* s = src + offset;
    if (inner_stride == 1) {
      std::memcpy(dst, s, static_cast<size_t>(inner) * sizeof(U));
    } else {
      for (int64_t i = 0; i < inner; ++i) dst[i] = s[i * inner_stride];
    }
    dst += inner;
    // Odometer step of the outer index, keeping the source offset in sync.
    size_t k = outer.size();
    while (k-- > 0) {
      offset += strides[k];
      if (++idx[k] < outer[k]) break;
      offset -= strides[k] * outer[k];
      idx[k] = 0;
    }
    if (k == static_cast<size_t>(-1)) return;
  }
}

}  // namespace

void strided_copy(void* dst, const void* src, const Dims& dims, const std::vector<int64_t>& src_strides,
                  size_t elem_size) {
  for (int64_t d : dims)
    if (d == 0) return;
  // Drop size-1 dims and merge dims that are contiguous with each other in the source.
  Dims d;
  std::vector<int64_t> s;
  for (size_t k = 0; k < dims.size(); ++k) {
    if (dims[k] == 1) continue;
    if (!d.empty() && s.back() == src_strides[k] * dims[k]) {
      d.back() *= dims[k];
      s.back() = src_strides[k];
    } else {
      d.push_back(dims[k]);
      s.push_back(src_strides[k]);
    }
  }
  if (d.empty()) {
    d.push_back(1);
    s.push_back(1);
  }
  dispatch_elem_size(elem_size, [&](auto tag) {
    using U = typename decltype(tag)::type;
    copy_loop(static_cast<U*>(dst), static_cast<const U*>(src), d, s);
  });
}

}  // namespace kiln
