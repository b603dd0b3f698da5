// Helpers shared by the CLI subcommands: error reporting, tensor files, summaries, timing.
#pragma once

#include <chrono>
#include <string>

#include "ir/tensor.hpp"

namespace kiln::cli {

// Prints "kiln: error: <message>" as one line on stderr and returns the exit code 1.
int report_error(const Status& status);
int report_error(const std::string& message);
// Newlines (and other control characters) become spaces so a message stays on one line.
std::string one_line(std::string s);

// A tensor from a .npy file or a serialized ONNX TensorProto (.pb); other extensions are
// recognised by their content.
Expected<Tensor> load_tensor_file(const std::string& path);

// "min -1.2 max 3.4 mean 0.0123" (plus NaN/Inf counts when present; "empty" for no elements).
std::string tensor_stats(const Tensor& t);

// "97.5 MiB", "512 B", "1.00 GiB" (binary units).
std::string format_bytes(uint64_t bytes);

class Timer {
 public:
  Timer() : start_(std::chrono::steady_clock::now()) {}
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  double ms() const { return seconds() * 1e3; }

 private:
  std::chrono::steady_clock::time_point start_;
};

}  // namespace kiln::cli
