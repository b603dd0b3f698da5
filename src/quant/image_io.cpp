#include "quant/image_io.hpp"

#include <algorithm>
#include <cctype>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>

#include <png.h>
// jpeglib.h needs FILE and size_t declared first.
#include <jpeglib.h>
#include <jerror.h>

namespace kiln {

namespace {

std::string lower_ext(const std::string& path) {
  const size_t dot = path.rfind('.');
  if (dot == std::string::npos || path.find('/', dot) != std::string::npos) return "";
  std::string e = path.substr(dot);
  for (char& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return e;
}

Expected<Image> read_png(const std::string& path) {
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&img, path.c_str()))
    return invalid_argument("cannot decode image '{}': {}", path, img.message);
  img.format = PNG_FORMAT_RGB;  // gray expands, alpha composites onto black
  Image out;
  out.width = static_cast<int>(img.width);
  out.height = static_cast<int>(img.height);
  out.rgb.resize(PNG_IMAGE_SIZE(img));
  if (!png_image_finish_read(&img, nullptr, out.rgb.data(), 0, nullptr)) {
    std::string msg = img.message;
    png_image_free(&img);
    return invalid_argument("cannot decode image '{}': {}", path, msg);
  }
  return out;
}

// libjpeg reports fatal errors through error_exit, which must not return: jump back with the text.
struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool truncated;
};

void jpeg_error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Warnings are not printed; a premature end of the data (which libjpeg fills with gray) is recorded:
// a truncated calibration image is an error, not a silently gray sample.
void jpeg_quiet(j_common_ptr cinfo, int level) {
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) reinterpret_cast<JpegError*>(cinfo->err)->truncated = true;
}

Expected<Image> read_jpeg(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return io_error("cannot open image '{}'", path);
  jpeg_decompress_struct cinfo{};
  JpegError err{};
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_error_exit;
  err.mgr.emit_message = jpeg_quiet;
  Image out;  // declared before setjmp: a longjmp back here leaves it intact
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    std::fclose(f);
    return invalid_argument("cannot decode image '{}': {}", path, err.message);
  }
  jpeg_create_decompress(&cinfo);
  jpeg_stdio_src(&cinfo, f);
  jpeg_read_header(&cinfo, TRUE);
  cinfo.out_color_space = JCS_RGB;  // grayscale and YCbCr both come out as RGB
  jpeg_start_decompress(&cinfo);
  out.width = static_cast<int>(cinfo.output_width);
  out.height = static_cast<int>(cinfo.output_height);
  out.rgb.resize(static_cast<size_t>(out.width) * out.height * 3);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out.rgb.data() + static_cast<size_t>(cinfo.output_scanline) * out.width * 3;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  std::fclose(f);
  if (err.truncated)
    return invalid_argument("cannot decode image '{}': the JPEG data ends early (a truncated file)", path);
  return out;
}

// Netpbm: P2/P5 (gray) and P3/P6 (RGB), maxval up to 65535 (scaled to 0..255).
Expected<Image> read_pnm(const std::string& path, const std::string& bytes) {
  auto bad = [&](const char* why) { return invalid_argument("cannot decode image '{}': {}", path, why); };
  size_t pos = 2;
  auto next_int = [&](long& v) -> bool {
    while (pos < bytes.size()) {
      if (bytes[pos] == '#') {
        while (pos < bytes.size() && bytes[pos] != '\n') ++pos;
      } else if (std::isspace(static_cast<unsigned char>(bytes[pos]))) {
        ++pos;
      } else {
        break;
      }
    }
    if (pos >= bytes.size() || !std::isdigit(static_cast<unsigned char>(bytes[pos]))) return false;
    v = 0;
    while (pos < bytes.size() && std::isdigit(static_cast<unsigned char>(bytes[pos])) && v < (1L << 24))
      v = v * 10 + (bytes[pos++] - '0');
    return true;
  };
  const char kind = bytes[1];
  const bool gray = kind == '2' || kind == '5', ascii = kind == '2' || kind == '3';
  long w = 0, h = 0, maxval = 0;
  if (!next_int(w) || !next_int(h) || !next_int(maxval)) return bad("truncated or malformed PPM/PGM header");
  if (w <= 0 || h <= 0 || w > 65536 || h > 65536) return bad("PPM/PGM dimensions out of range");
  if (maxval <= 0 || maxval > 65535) return bad("PPM/PGM maxval must be 1..65535");
  const int ch = gray ? 1 : 3;
  const size_t count = static_cast<size_t>(w) * h * ch;
  std::vector<long> samples(count);
  if (ascii) {
    for (size_t i = 0; i < count; ++i)
      if (!next_int(samples[i])) return bad("truncated PPM/PGM pixel data");
  } else {
    ++pos;  // the single whitespace after maxval
    const size_t bps = maxval > 255 ? 2 : 1;
    if (bytes.size() < pos + count * bps) return bad("truncated PPM/PGM pixel data");
    for (size_t i = 0; i < count; ++i) {
      const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + pos + i * bps);
      samples[i] = bps == 2 ? (p[0] << 8 | p[1]) : p[0];
    }
  }
  Image out;
  out.width = static_cast<int>(w);
  out.height = static_cast<int>(h);
  out.rgb.resize(static_cast<size_t>(w) * h * 3);
  for (size_t px = 0; px < static_cast<size_t>(w) * h; ++px)
    for (int c = 0; c < 3; ++c) {
      long s = std::min(samples[px * ch + (gray ? 0 : c)], maxval);
      out.rgb[px * 3 + c] = static_cast<uint8_t>((s * 255 + maxval / 2) / maxval);
    }
  return out;
}

bool parse_float(const std::string& s, float& v) {
  if (s.empty()) return false;
  const size_t slash = s.find('/');
  char* end = nullptr;
  if (slash != std::string::npos) {
    const std::string a = s.substr(0, slash), b = s.substr(slash + 1);
    float x = 0, y = 0;
    if (!parse_float(a, x) || !parse_float(b, y) || y == 0) return false;
    v = x / y;
    return true;
  }
  v = std::strtof(s.c_str(), &end);
  return *end == '\0';
}

}  // namespace

bool is_image_file(const std::string& path) {
  const std::string e = lower_ext(path);
  return e == ".png" || e == ".jpg" || e == ".jpeg" || e == ".ppm" || e == ".pgm";
}

Expected<Image> read_image(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error("cannot open image '{}'", path);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Expected<Image> img = invalid_argument("x");
  if (bytes.size() >= 8 && png_sig_cmp(reinterpret_cast<png_const_bytep>(bytes.data()), 0, 8) == 0) {
    img = read_png(path);
  } else if (bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xFF &&
             static_cast<unsigned char>(bytes[1]) == 0xD8) {
    img = read_jpeg(path);
  } else if (bytes.size() >= 2 && bytes[0] == 'P' && (bytes[1] == '2' || bytes[1] == '3' || bytes[1] == '5' ||
                                                      bytes[1] == '6')) {
    img = read_pnm(path, bytes);
  } else {
    return invalid_argument("cannot decode image '{}': not a PNG, JPEG, PPM or PGM file", path);
  }
  if (img.ok() && (img->width <= 0 || img->height <= 0))
    return invalid_argument("cannot decode image '{}': it has no pixels", path);
  return img;
}

std::vector<float> resize_bilinear(const Image& img, int out_w, int out_h) {
  std::vector<float> out(static_cast<size_t>(out_w) * out_h * 3);
  const float sx = static_cast<float>(img.width) / out_w, sy = static_cast<float>(img.height) / out_h;
  for (int y = 0; y < out_h; ++y) {
    float fy = std::clamp((y + 0.5f) * sy - 0.5f, 0.0f, static_cast<float>(img.height - 1));
    int y0 = static_cast<int>(fy), y1 = std::min(y0 + 1, img.height - 1);
    float wy = fy - y0;
    for (int x = 0; x < out_w; ++x) {
      float fx = std::clamp((x + 0.5f) * sx - 0.5f, 0.0f, static_cast<float>(img.width - 1));
      int x0 = static_cast<int>(fx), x1 = std::min(x0 + 1, img.width - 1);
      float wx = fx - x0;
      for (int c = 0; c < 3; ++c) {
        auto px = [&](int yy, int xx) {
          return static_cast<float>(img.rgb[(static_cast<size_t>(yy) * img.width + xx) * 3 + c]);
        };
        float top = px(y0, x0) * (1 - wx) + px(y0, x1) * wx;
        float bottom = px(y1, x0) * (1 - wx) + px(y1, x1) * wx;
        out[(static_cast<size_t>(y) * out_w + x) * 3 + c] = top * (1 - wy) + bottom * wy;
      }
    }
  }
  return out;
}

Expected<ImagePreprocess> parse_image_preprocess(const std::string& spec) {
  ImagePreprocess p;
  std::stringstream ss(spec);
  std::string item;
  auto bad = [&](const std::string& why) {
    return invalid_argument("--calib-preprocess '{}': {}", spec, why);
  };
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string::npos) return bad(fmt::format("'{}' is not KEY=VALUE", item));
    const std::string key = item.substr(0, eq), val = item.substr(eq + 1);
    if (key == "resize") {
      const size_t x = val.find('x');
      char* e1 = nullptr;
      char* e2 = nullptr;
      long h = x == std::string::npos ? 0 : std::strtol(val.substr(0, x).c_str(), &e1, 10);
      long w = x == std::string::npos ? 0 : std::strtol(val.substr(x + 1).c_str(), &e2, 10);
      if (x == std::string::npos || *e1 || *e2 || h <= 0 || w <= 0 || h > 16384 || w > 16384)
        return bad(fmt::format("resize={} should be HEIGHTxWIDTH, e.g. resize=224x224", val));
      p.height = static_cast<int>(h);
      p.width = static_cast<int>(w);
    } else if (key == "order") {
      if (val != "RGB" && val != "BGR") return bad(fmt::format("order={}: choose RGB or BGR", val));
      p.channel_order = val;
    } else if (key == "layout") {
      if (val != "NCHW" && val != "NHWC") return bad(fmt::format("layout={}: choose NCHW or NHWC", val));
      p.layout = val;
    } else if (key == "scale") {
      if (!parse_float(val, p.scale) || !(p.scale > 0))
        return bad(fmt::format("scale={} should be a positive number or fraction, e.g. scale=1/255", val));
    } else if (key == "mean" || key == "std") {
      std::vector<float> v;
      std::stringstream vs(val);
      std::string part;
      while (std::getline(vs, part, ':')) {
        float f = 0;
        if (!parse_float(part, f)) return bad(fmt::format("{}={}: '{}' is not a number", key, val, part));
        v.push_back(f);
      }
      if (v.size() != 1 && v.size() != 3)
        return bad(fmt::format("{}={} needs one value or three (R:G:B)", key, val));
      if (v.size() == 1) v.assign(3, v[0]);
      auto& dst = key == "mean" ? p.mean : p.std;
      for (int c = 0; c < 3; ++c) dst[c] = v[c];
      if (key == "std" && (v[0] == 0 || v[1] == 0 || v[2] == 0)) return bad("std must not be 0");
    } else {
      return bad(fmt::format("unknown key '{}' (known: resize, order, mean, std, scale, layout)", key));
    }
  }
  return p;
}

void image_to_tensor(const Image& img, const ImagePreprocess& p, int channels, int height, int width, float* out) {
  const std::vector<float> rgb = resize_bilinear(img, width, height);
  const bool bgr = p.channel_order == "BGR", nchw = p.layout == "NCHW";
  const size_t plane = static_cast<size_t>(height) * width;
  for (size_t px = 0; px < plane; ++px) {
    for (int c = 0; c < channels; ++c) {
      float v;
      if (channels == 1) {
        v = 0.299f * rgb[px * 3] + 0.587f * rgb[px * 3 + 1] + 0.114f * rgb[px * 3 + 2];
      } else {
        v = rgb[px * 3 + (bgr ? 2 - c : c)];
      }
      v = (v * p.scale - p.mean[c]) / p.std[c];
      out[nchw ? c * plane + px : px * channels + c] = v;
    }
  }
}

}  // namespace kiln
