// im2col / col2im over N spatial dims, for Conv (GEMM on gathered windows) and ConvTranspose
// (GEMM, then scatter-add of the windows).
//
// Column layout: row (c * kernel_size + kernel_index), column = output position (row-major), so
// Conv is W[M, C*k] x col[C*k, out] and the GEMM output is already NC(spatial).
#pragma once

#include <algorithm>
#include <cstring>

#include "ops/window_geometry.hpp"

namespace kiln::cpu {

// Calls fn(col_row, image_row, o_begin, o_end, i_first, stride) for each run of output positions
// along the last spatial dim of one (channel, kernel offset, outer output position): positions
// [o_begin, o_end) read image_row[i_first + (o - o_begin) * stride]; the rest of the `out_last`
// positions fall in the padding. image_row is null when the whole run is in the padding.
template <typename T, typename U, typename Fn>
void for_each_window_row(T* col, U* image, int64_t channels, const Window& w, Fn&& fn) {
  const size_t nd = w.rank();
  int64_t in_size = 1, out_size = 1, kernel_size = 1;
  for (size_t i = 0; i < nd; ++i) {
    in_size *= w.in[i];
    out_size *= w.out[i];
    kernel_size *= w.kernel[i];
  }
  const size_t last = nd - 1;
  const int64_t out_last = w.out[last], in_last = w.in[last];
  const int64_t rows_per_plane = out_last > 0 ? out_size / out_last : 0;
  Dims kpos(nd), opos(nd);
  for (int64_t c = 0; c < channels; ++c) {
    U* plane = image + c * in_size;
    for (int64_t kidx = 0; kidx < kernel_size; ++kidx) {
      for (int64_t r = kidx, i = static_cast<int64_t>(nd) - 1; i >= 0; --i) {
        kpos[static_cast<size_t>(i)] = r % w.kernel[static_cast<size_t>(i)];
        r /= w.kernel[static_cast<size_t>(i)];
      }
      T* col_rows = col + (c * kernel_size + kidx) * out_size;
      // Along the last dim: input index o * s + k * d - pb must lie in [0, in_last).
      const int64_t s = w.strides[last];
      const int64_t start = kpos[last] * w.dilations[last] - w.pads_begin[last];
      int64_t o_begin = start >= 0 ? 0 : (-start + s - 1) / s;
      int64_t o_end = start >= in_last ? 0 : (in_last - start + s - 1) / s;
      o_begin = std::min(o_begin, out_last);
      o_end = std::clamp(o_end, o_begin, out_last);
      for (int64_t row = 0; row < rows_per_plane; ++row) {
        for (int64_t r = row, i = static_cast<int64_t>(last) - 1; i >= 0; --i) {
          opos[static_cast<size_t>(i)] = r % w.out[static_cast<size_t>(i)];
          r /= w.out[static_cast<size_t>(i)];
        }
        int64_t offset = 0;
        bool inside = true;
        for (size_t i = 0; i < last; ++i) {
          int64_t p = opos[i] * w.strides[i] + kpos[i] * w.dilations[i] - w.pads_begin[i];
          if (p < 0 || p >= w.in[i]) {
            inside = false;
            break;
          }
          offset = offset * w.in[i] + p;
        }
        T* col_row = col_rows + row * out_last;
        if (!inside || o_begin >= o_end) {
          fn(col_row, static_cast<U*>(nullptr), int64_t{0}, int64_t{0}, int64_t{0}, s);
        } else {
          fn(col_row, plane + offset * in_last, o_begin, o_end, start + o_begin * s, s);
        }
      }
    }
  }
}

// Gathers the windows of `image` (channels x w.in) into col (channels * kernel x w.out); padding
// reads as `pad` (0, or a quantized input's zero point).
template <typename T>
void im2col(const T* image, int64_t channels, const Window& w, T* col, T pad = T(0)) {
  const int64_t out_last = w.out[w.rank() - 1];
  for_each_window_row(col, image, channels, w,
                      [out_last, pad](T* dst, const T* src, int64_t ob, int64_t oe, int64_t first, int64_t s) {
                        if (!src) {
                          std::fill(dst, dst + out_last, pad);
                          return;
                        }
                        std::fill(dst, dst + ob, pad);
                        if (s == 1) {
                          std::memcpy(dst + ob, src + first, static_cast<size_t>(oe - ob) * sizeof(T));
                        } else {
                          for (int64_t o = ob; o < oe; ++o) dst[o] = src[first + (o - ob) * s];
                        }
                        std::fill(dst + oe, dst + out_last, pad);
                      });
}

// Adds each column back onto the image position it was gathered from (the adjoint of im2col).
// `image` must be initialised (zeros or bias).
template <typename T>
void col2im_add(const T* col, int64_t channels, const Window& w, T* image) {
  for_each_window_row(col, image, channels, w,
                      [](const T* src, T* dst, int64_t ob, int64_t oe, int64_t first, int64_t s) {
                        if (!dst) return;
                        for (int64_t o = ob; o < oe; ++o) dst[first + (o - ob) * s] += src[o];
                      });
}

}  // namespace kiln::cpu
