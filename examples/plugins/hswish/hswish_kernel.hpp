// The CUDA half of the HSwish plugin (hswish_kernel.cu), built only with KILN_WITH_CUDA.
#pragma once

#include <cstdint>
#include <string>

// Launches y = hswish(x) on `stream` for n elements of ONNX dtype `dtype` (1 float, 10 float16,
// 16 bfloat16). Returns "" or an error message.
std::string hswish_cuda(int dtype, const void* x, void* y, int64_t n, void* stream);
