// Calibration images: decoding (PNG via libpng, JPEG via libjpeg, binary/ASCII PPM and PGM by
// hand), bilinear resizing and the preprocessing that turns pixels into a model input.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "quant/calibration_data.hpp"
#include "util/error.hpp"

namespace kiln {

// 8-bit RGB pixels, interleaved, row-major (grayscale files are expanded to RGB).
struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // height * width * 3
};

// Whether the file name has an image extension kiln decodes (.png .jpg .jpeg .ppm .pgm, any case).
bool is_image_file(const std::string& path);
// Decodes by content (PNG/JPEG signatures, P2/P3/P5/P6 headers); errors name the file.
Expected<Image> read_image(const std::string& path);

// Bilinear resize with half-pixel centers (as OpenCV's INTER_LINEAR and ONNX Resize's default).
// Returns float RGB so that no rounding happens before normalization.
std::vector<float> resize_bilinear(const Image& img, int out_w, int out_h);

// "resize=224x224,order=RGB,mean=0.485:0.456:0.406,std=0.229:0.224:0.225,scale=1/255,layout=NCHW";
// every key optional; mean/std take one value or three; scale a number or a fraction "1/255".
Expected<ImagePreprocess> parse_image_preprocess(const std::string& spec);

// Writes one sample (channels 3, or 1: luminance) of `height` x `width` into `out`:
// out = (pixel * scale - mean[c]) / std[c], channels in p.channel_order, NCHW (C,H,W) or NHWC.
void image_to_tensor(const Image& img, const ImagePreprocess& p, int channels, int height, int width, float* out);

}  // namespace kiln
