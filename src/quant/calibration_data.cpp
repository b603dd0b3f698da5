// Loading calibration batches (the conventions are documented in docs/int8.md and `kiln build --help`).
#include "quant/calibration_data.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "io/npy.hpp"
#include "quant/image_io.hpp"

namespace kiln {

namespace fs = std::filesystem;

namespace {

void note(const CalibrationDataOptions& o, const std::string& line) {
  if (o.log) o.log(line);
}

bool has_ext(const fs::path& p, const char* ext) {
  std::string e = p.extension().string();
  for (char& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return e == ext;
}

// Regular files of `dir` that `keep` accepts, sorted by name.
std::vector<std::string> list_files(const std::string& dir, bool (*keep)(const fs::path&)) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file(ec) && keep(e.path())) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

bool is_npy(const fs::path& p) { return has_ext(p, ".npy"); }
bool is_image(const fs::path& p) { return is_image_file(p.string()); }
bool any_file(const fs::path&) { return true; }

// The samples of one graph input: loaded files, each holding `count` samples of `sample` dims.
struct InputSamples {
  const Value* input = nullptr;
  Dims sample;                 // dims without the batch dim (unknown model dims fixed by the first file)
  std::vector<Tensor> files;   // each [count, sample...]
  int64_t total = 0;
};

std::string expected_shape_text(const Value& in) {
  Shape s = in.type.shape;
  std::string sample = "[";
  for (size_t i = 1; i < s.rank(); ++i) sample += (i > 1 ? "," : "") + s[i].to_string();
  sample += "]";
  std::string batch = "[n" + std::string(s.rank() > 1 ? "," : "") + sample.substr(1);
  return fmt::format("{} (one sample {} or a batch {})", s.to_string(), sample, batch);
}

Status add_npy_file(InputSamples& in, const std::string& path) {
  KILN_ASSIGN_OR_RETURN(Tensor t, load_npy(path));
  const Value& v = *in.input;
  if (t.dtype() != v.type.dtype)
    return invalid_argument("calibration file '{}' for input '{}': expected dtype {}, got {}", path, v.name,
                            dtype_name(v.type.dtype), dtype_name(t.dtype()));
  const Shape& want = v.type.shape;
  const size_t r = want.rank();
  Dims sample;
  int64_t count = 0;
  if (static_cast<size_t>(t.rank()) + 1 == r) {
    sample = t.dims();
    count = 1;
  } else if (static_cast<size_t>(t.rank()) == r) {
    sample.assign(t.dims().begin() + 1, t.dims().end());
    count = t.dims()[0];
  } else {
    return invalid_argument("calibration file '{}' for input '{}': expected shape {}, got [{}]", path, v.name,
                            expected_shape_text(v), fmt::join(t.dims(), ","));
  }
  bool ok = true;
  for (size_t i = 0; i < sample.size(); ++i) {
    const Dim& d = want[i + 1];
    if (d.known()) ok &= d.value == sample[i];
    else if (!in.sample.empty()) ok &= in.sample[i] == sample[i];
  }
  if (!ok)
    return invalid_argument("calibration file '{}' for input '{}': expected shape {}{}, got [{}]", path, v.name,
                            expected_shape_text(v),
                            in.sample.empty() ? "" : fmt::format(" with sample dims [{}] as the files before",
                                                                 fmt::join(in.sample, ",")),
                            fmt::join(t.dims(), ","));
  if (in.sample.empty()) in.sample = sample;
  if (count == 0) return Status::Ok();
  Dims full = {count};
  full.insert(full.end(), sample.begin(), sample.end());
  in.files.push_back(t.reshaped(full));
  in.total += count;
  return Status::Ok();
}

// The batch size: the model's (static) batch dim, else --calib-batch.
Expected<int64_t> batch_size(const Graph& g, const CalibrationDataOptions& o) {
  int64_t fixed = 0;
  for (const Value* in : g.inputs) {
    if (!in->type.shape.has_rank() || in->type.shape.rank() == 0)
      return invalid_argument("input '{}' has shape {}: calibration needs inputs with a batch dim", in->name,
                              in->type.shape.to_string());
    const Dim& d = in->type.shape[0];
    if (d.known()) {
      if (fixed && fixed != d.value)
        return invalid_argument("the model's inputs have different batch dims ({} and {})", fixed, d.value);
      fixed = d.value;
    }
  }
  if (o.batch <= 0) return invalid_argument("--calib-batch must be at least 1, got {}", o.batch);
  if (!fixed) return static_cast<int64_t>(o.batch);
  if (fixed != o.batch)
    note(o, fmt::format("calibration: the model's batch dim is {}: batches of {} samples (not --calib-batch {})",
                        fixed, fixed, o.batch));
  return fixed;
}

Status no_files_error(const std::string& dir, const char* what, const CalibrationDataOptions& o) {
  if (list_files(dir, any_file).empty())
    return invalid_argument("--calib-data '{}' is empty: it holds no {}", dir, what);
  if (!o.image && !list_files(dir, is_image).empty())
    return invalid_argument("--calib-data '{}' holds images but no .npy files: give --calib-preprocess (e.g. "
                            "\"resize=224x224,scale=1/255\") to calibrate on images",
                            dir);
  return invalid_argument("--calib-data '{}' holds no {}", dir, what);
}

// Image mode: one float input of rank 4 (NCHW or NHWC per the spec); every image one sample.
Expected<std::vector<std::map<std::string, Tensor>>> load_image_batches(const Graph& g,
                                                                        const CalibrationDataOptions& o,
                                                                        int64_t batch) {
  const ImagePreprocess& p = *o.image;
  if (g.inputs.size() != 1)
    return invalid_argument("calibration images feed single-input models; this model has {} inputs (give .npy "
                            "files in a subfolder per input instead)",
                            g.inputs.size());
  const Value& in = *g.inputs[0];
  const Shape& s = in.type.shape;
  if (in.type.dtype != DType::kFloat32 || s.rank() != 4)
    return invalid_argument("calibration images need a float32 input of rank 4; input '{}' is {}", in.name,
                            in.type.to_string());
  const bool nchw = p.layout == "NCHW";
  const Dim& dc = s[nchw ? 1 : 3];
  const Dim& dh = s[nchw ? 2 : 1];
  const Dim& dw = s[nchw ? 3 : 2];
  const int channels = dc.known() ? static_cast<int>(dc.value) : 3;
  if (channels != 1 && channels != 3)
    return invalid_argument("input '{}' ({}, layout {}) has {} channels: calibration images give 1 or 3 (check "
                            "layout= in --calib-preprocess)",
                            in.name, s.to_string(), p.layout, channels);
  int h = p.height, w = p.width;
  if (!h) {
    if (!dh.known() || !dw.known())
      return invalid_argument("input '{}' has shape {}: give the image size with resize=HxW in --calib-preprocess",
                              in.name, s.to_string());
    h = static_cast<int>(dh.value);
    w = static_cast<int>(dw.value);
  } else if ((dh.known() && dh.value != h) || (dw.known() && dw.value != w)) {
    return invalid_argument("--calib-preprocess resize={}x{} does not fit input '{}' of shape {} (layout {})", h, w,
                            in.name, s.to_string(), p.layout);
  }
  std::vector<std::string> files = list_files(o.dir, is_image);
  if (files.empty()) return no_files_error(o.dir, "image files (.png, .jpg, .jpeg, .ppm, .pgm)", o);
  int64_t n_batches = static_cast<int64_t>(files.size()) / batch;
  if (n_batches == 0)
    return invalid_argument("--calib-data '{}' holds {} images, fewer than one batch of {}", o.dir, files.size(),
                            batch);
  if (o.max_batches > 0) n_batches = std::min<int64_t>(n_batches, o.max_batches);
  if (static_cast<int64_t>(files.size()) > n_batches * batch)
    note(o, fmt::format("calibration: using {} of {} images ({} batches of {})", n_batches * batch, files.size(),
                        n_batches, batch));
  const Dims dims = nchw ? Dims{batch, channels, h, w} : Dims{batch, h, w, channels};
  const size_t sample = static_cast<size_t>(channels) * h * w;
  std::vector<std::map<std::string, Tensor>> out;
  for (int64_t b = 0; b < n_batches; ++b) {
    Tensor t(DType::kFloat32, dims);
    for (int64_t i = 0; i < batch; ++i) {
      KILN_ASSIGN_OR_RETURN(Image img, read_image(files[b * batch + i]));
      image_to_tensor(img, p, channels, h, w, t.data<float>() + i * sample);
    }
    out.push_back({{in.name, t}});
  }
  return out;
}

}  // namespace

Expected<std::vector<std::map<std::string, Tensor>>> load_calibration_batches(const Graph& g,
                                                                              const CalibrationDataOptions& o) {
  std::error_code ec;
  if (o.dir.empty()) return invalid_argument("no calibration data: give --calib-data DIR (or --calib-cache FILE)");
  if (!fs::exists(o.dir, ec)) return not_found("--calib-data '{}' does not exist", o.dir);
  if (!fs::is_directory(o.dir, ec)) return invalid_argument("--calib-data '{}' is not a folder", o.dir);
  if (g.inputs.empty()) return invalid_argument("the model has no inputs to calibrate");
  KILN_ASSIGN_OR_RETURN(int64_t batch, batch_size(g, o));
  if (o.image) return load_image_batches(g, o, batch);

  std::vector<InputSamples> inputs;
  for (const Value* v : g.inputs) {
    InputSamples in;
    in.input = v;
    std::string dir = o.dir;
    if (g.inputs.size() > 1) {
      dir = (fs::path(o.dir) / v->name).string();
      if (!fs::is_directory(dir, ec)) {
        std::vector<std::string> names;
        for (const Value* x : g.inputs) names.push_back("'" + x->name + "'");
        return invalid_argument("the model has inputs {}: --calib-data '{}' needs a subfolder per input, and '{}' is "
                                "missing",
                                fmt::join(names, ", "), o.dir, dir);
      }
    }
    std::vector<std::string> files = list_files(dir, is_npy);
    if (files.empty()) return no_files_error(dir, ".npy files", o);
    for (const std::string& f : files) KILN_RETURN_IF_ERROR(add_npy_file(in, f));
    inputs.push_back(std::move(in));
  }
  const int64_t total = inputs[0].total;
  for (const InputSamples& in : inputs)
    if (in.total != total)
      return invalid_argument("--calib-data '{}': input '{}' has {} samples but input '{}' has {}", o.dir,
                              inputs[0].input->name, total, in.input->name, in.total);
  int64_t n_batches = total / batch;
  if (n_batches == 0)
    return invalid_argument("--calib-data '{}' holds {} samples, fewer than one batch of {}", o.dir, total, batch);
  if (o.max_batches > 0) n_batches = std::min<int64_t>(n_batches, o.max_batches);
  if (total > n_batches * batch)
    note(o, fmt::format("calibration: using {} of {} samples ({} batches of {})", n_batches * batch, total, n_batches,
                        batch));

  std::vector<std::map<std::string, Tensor>> out(static_cast<size_t>(n_batches));
  for (InputSamples& in : inputs) {
    Dims dims = {batch};
    dims.insert(dims.end(), in.sample.begin(), in.sample.end());
    const size_t sample_bytes = static_cast<size_t>(dims_numel(in.sample)) * dtype_size(in.input->type.dtype);
    size_t file = 0;
    int64_t offset = 0;  // next sample within files[file]
    for (int64_t b = 0; b < n_batches; ++b) {
      Tensor t(in.input->type.dtype, dims);
      auto* dst = static_cast<char*>(t.raw_data());
      for (int64_t i = 0; i < batch; ++i) {
        while (offset >= in.files[file].dims()[0]) {
          ++file;
          offset = 0;
        }
        std::memcpy(dst + i * sample_bytes, static_cast<const char*>(in.files[file].raw_data()) + offset * sample_bytes,
                    sample_bytes);
        ++offset;
      }
      out[b][in.input->name] = t;
    }
  }
  return out;
}

}  // namespace kiln
