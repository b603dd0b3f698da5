// Calibration inputs for --int8/--fp8 builds and the accuracy budget: a directory of .npy tensors,
// or of images with a preprocessing spec (resize, channel order, mean/std, layout).
#pragma once

#include <array>
#include <functional>
#include <string_view>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.hpp"
#include "ir/tensor.hpp"
#include "util/error.hpp"

namespace kiln {

struct ImagePreprocess {
  int height = 0, width = 0;                  // resize target (0: the model input's dims)
  std::string channel_order = "RGB";          // or "BGR"
  std::array<float, 3> mean{0.f, 0.f, 0.f};   // subtracted after scaling
  std::array<float, 3> std{1.f, 1.f, 1.f};    // divided after subtracting the mean
  float scale = 1.0f / 255.0f;                // applied to the 0..255 pixel first
  std::string layout = "NCHW";                // or "NHWC"
};

struct CalibrationDataOptions {
  std::string dir;                            // --calib-data
  int batch = 1;                              // --calib-batch: samples per batch
  std::optional<ImagePreprocess> image;       // set: the directory holds images (.png/.jpg/.ppm)
  int max_batches = 0;                        // 0: all
  std::function<void(std::string_view)> log;  // progress lines
};

// The batches, each a map from graph input name to a tensor of that input's dtype with the batch
// dim set to `batch`. Errors name the file and the input at fault (wrong shape or dtype, an empty
// directory, an unreadable image).
Expected<std::vector<std::map<std::string, Tensor>>> load_calibration_batches(const Graph& g,
                                                                              const CalibrationDataOptions& o);

}  // namespace kiln
