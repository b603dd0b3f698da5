// Which CPU kernels accept string tensors. Most kernels move elements as bytes (dtype_size), which
// string tensors do not have, so the executor refuses strings to every kernel not listed here.
#pragma once

#include <string>

#include "util/error.hpp"

namespace kiln::cpu {

bool register_string_kernel(const std::string& domain, const std::string& name);
bool kernel_handles_strings(const std::string& domain, const std::string& name);

}  // namespace kiln::cpu

#define KILN_CPU_KERNEL_HANDLES_STRINGS(domain, name)                                    \
  namespace {                                                                            \
  [[maybe_unused]] const bool KILN_CONCAT(kiln_cpu_strings_, __COUNTER__) =              \
      ::kiln::cpu::register_string_kernel(domain, name);                                 \
  }
