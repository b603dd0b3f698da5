// Comparisons and logic (bool outputs) and Where, all with numpy broadcasting. float16 and
// bfloat16 compare as float (exact).
#include "backends/cuda/layers/ew_device.cuh"

namespace kiln::cuda::ew {
namespace {

#define KILN_CMP_FN(Name, types, expr)          \
  struct Name {                                 \
    static constexpr unsigned kTypes = types;   \
    template <typename C>                       \
    __device__ bool operator()(C a, C b) const { \
      return (expr);                            \
    }                                           \
  };
KILN_CMP_FN(Equal, kFloats | kInts | kI8 | kU8 | kBool, a == b)
KILN_CMP_FN(Less, kFloats | kInts | kI8 | kU8, a < b)
KILN_CMP_FN(LessOrEqual, kFloats | kInts | kI8 | kU8, a <= b)
KILN_CMP_FN(Greater, kFloats | kInts | kI8 | kU8, a > b)
KILN_CMP_FN(GreaterOrEqual, kFloats | kInts | kI8 | kU8, a >= b)
KILN_CMP_FN(And, kBool, a && b)
KILN_CMP_FN(Or, kBool, a || b)
KILN_CMP_FN(Xor, kBool, a != b)
#undef KILN_CMP_FN

template <typename Fn>
bool with_op(BinaryOp op, Fn&& fn) {
  switch (op) {
    case BinaryOp::kEqual: fn(Equal{}); return true;
    case BinaryOp::kLess: fn(Less{}); return true;
    case BinaryOp::kLessOrEqual: fn(LessOrEqual{}); return true;
    case BinaryOp::kGreater: fn(Greater{}); return true;
    case BinaryOp::kGreaterOrEqual: fn(GreaterOrEqual{}); return true;
    case BinaryOp::kAnd: fn(And{}); return true;
    case BinaryOp::kOr: fn(Or{}); return true;
    case BinaryOp::kXor: fn(Xor{}); return true;
    default: return false;
  }
}

// Where moves elements without looking at them: unsigned integers of the element's size (one
// instantiation per size; NaN payloads survive).
struct Select {
  template <typename U>
  __device__ U operator()(bool c, U a, U b) const {
    return c ? a : b;
  }
};

template <typename Fn>
bool by_size(size_t size, Fn&& fn) {
  switch (size) {
    case 1: fn(Tag<uint8_t>{}); return true;
    case 2: fn(Tag<uint16_t>{}); return true;
    case 4: fn(Tag<uint32_t>{}); return true;
    case 8: fn(Tag<uint64_t>{}); return true;
    default: return false;
  }
}

}  // namespace
}  // namespace kiln::cuda::ew

namespace kiln::cuda {

bool compare_supported(BinaryOp op, DType a) {
  bool ok = false;
  ew::with_op(op, [&](auto f) { ok = ew::dispatch<decltype(f)::kTypes>(a, [](auto) {}); });
  return ok;
}

cudaError_t launch_compare(BinaryOp op, DType a, const BroadcastGeometry& g, const void* x, const void* y,
                           void* out, cudaStream_t stream) {
  if (!compare_supported(op, a)) return cudaErrorNotSupported;
  cudaError_t err = cudaSuccess;
  ew::with_op(op, [&](auto f) {
    ew::dispatch<decltype(f)::kTypes>(a, [&](auto tag) {
      using T = typename decltype(tag)::type;
      err = ew::launch_bcast2<T, T, bool>(g, x, y, out, f, stream);
    });
  });
  return err;
}

bool where_supported(DType t) {
  return t != DType::kString && ew::by_size(dtype_size(t), [](auto) {});
}

cudaError_t launch_where(DType t, const BroadcastGeometry& g, const void* cond, const void* x, const void* y,
                         void* out, cudaStream_t stream) {
  if (!where_supported(t)) return cudaErrorNotSupported;
  cudaError_t err = cudaSuccess;
  ew::by_size(dtype_size(t), [&](auto tag) {
    using U = typename decltype(tag)::type;
    err = ew::launch_bcast3<bool, U, U, U>(g, cond, x, y, out, ew::Select{}, stream);
  });
  return err;
}

}  // namespace kiln::cuda
