#include "io/npy.hpp"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cstring>
#include <optional>

#include "io/file.hpp"
#include "util/error.hpp"

namespace kiln {

static_assert(std::endian::native == std::endian::little, "the .npy code assumes a little-endian host");

namespace {

constexpr std::string_view kMagic = "\x93NUMPY";

struct DescrEntry {
  char kind;  // numpy kind letter: f, i, u, b
  int size;
  DType dtype;
};
constexpr DescrEntry kDescrs[] = {
    {'f', 2, DType::kFloat16}, {'f', 4, DType::kFloat32}, {'f', 8, DType::kFloat64},
    {'i', 1, DType::kInt8},    {'i', 2, DType::kInt16},   {'i', 4, DType::kInt32},
    {'i', 8, DType::kInt64},   {'u', 1, DType::kUInt8},   {'u', 2, DType::kUInt16},
    {'u', 4, DType::kUInt32},  {'u', 8, DType::kUInt64},  {'b', 1, DType::kBool},
};
constexpr std::string_view kSupported = "f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1";

// The header is a Python dict literal, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }.
// This parses exactly the subset numpy writes: string keys; string, bool and int-tuple values.
struct HeaderValue {
  enum Kind { kString, kBool, kTuple, kOther } kind = kOther;
  std::string str;
  bool boolean = false;
  std::vector<int64_t> ints;
};

class HeaderParser {
 public:
  explicit HeaderParser(std::string_view s) : s_(s) {}

  // Fills `out` with key -> value; returns an error description or "".
  std::string parse(std::vector<std::pair<std::string, HeaderValue>>& out) {
    skip_ws();
    if (!eat('{')) return "expected '{'";
    while (true) {
      skip_ws();
      if (eat('}')) break;
      std::string key;
      if (!parse_string(key)) return "expected a quoted key";
      skip_ws();
      if (!eat(':')) return "expected ':' after '" + key + "'";
      skip_ws();
      HeaderValue v;
      std::string err = parse_value(v);
      if (!err.empty()) return err + " (value of '" + key + "')";
      out.emplace_back(key, std::move(v));
      skip_ws();
      if (eat(',')) continue;
      skip_ws();
      if (eat('}')) break;
      return "expected ',' or '}'";
    }
    skip_ws();
    if (pos_ != s_.size()) return "unexpected text after the dict";
    return "";
  }

 private:
  void skip_ws() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  bool eat(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool parse_string(std::string& out) {
    if (pos_ >= s_.size() || (s_[pos_] != '\'' && s_[pos_] != '"')) return false;
    char q = s_[pos_++];
    size_t end = s_.find(q, pos_);
    if (end == std::string_view::npos) return false;
    out = std::string(s_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return true;
  }
  bool parse_int(int64_t& out) {
    size_t start = pos_;
    bool neg = eat('-');
    uint64_t v = 0;
    size_t digits = 0;
    while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) {
      uint64_t d = static_cast<uint64_t>(s_[pos_++] - '0');
      if (v > (static_cast<uint64_t>(INT64_MAX) - d) / 10) return false;
      v = v * 10 + d;
      ++digits;
    }
    if (digits == 0) {
      pos_ = start;
      return false;
    }
    eat('L');  // Python 2 long suffix, found in old files
    out = neg ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
    return true;
  }
  std::string parse_value(HeaderValue& v) {
    if (pos_ < s_.size() && (s_[pos_] == '\'' || s_[pos_] == '"')) {
      v.kind = HeaderValue::kString;
      return parse_string(v.str) ? "" : "unterminated string";
    }
    if (s_.substr(pos_, 4) == "True") {
      pos_ += 4;
      v.kind = HeaderValue::kBool;
      v.boolean = true;
      return "";
    }
    if (s_.substr(pos_, 5) == "False") {
      pos_ += 5;
      v.kind = HeaderValue::kBool;
      return "";
    }
    if (eat('(')) {
      v.kind = HeaderValue::kTuple;
      while (true) {
        skip_ws();
        if (eat(')')) return "";
        int64_t x;
        if (!parse_int(x)) return "expected an integer in the tuple";
        v.ints.push_back(x);
        skip_ws();
        if (eat(',')) continue;
        skip_ws();
        if (eat(')')) return "";
        return "expected ',' or ')' in the tuple";
      }
    }
    // Anything else (a list: structured dtype) is recognised only to give a precise error.
    if (pos_ < s_.size() && s_[pos_] == '[') {
      v.kind = HeaderValue::kOther;
      int depth = 0;
      for (; pos_ < s_.size(); ++pos_) {
        if (s_[pos_] == '[') ++depth;
        if (s_[pos_] == ']' && --depth == 0) {
          ++pos_;
          return "";
        }
      }
      return "unterminated list";
    }
    return "unexpected value";
  }

  std::string_view s_;
  size_t pos_ = 0;
};

Expected<DType> dtype_from_descr(const std::string& descr, const std::string& name, bool& swap) {
  swap = false;
  if (descr.size() >= 2) {
    char order = descr[0];
    char kind = descr[1];
    int size = 0;
    bool digits = descr.size() > 2;
    for (size_t i = 2; i < descr.size(); ++i) {
      if (!std::isdigit(static_cast<unsigned char>(descr[i])) || size > 1000) {
        digits = false;
        break;
      }
      size = size * 10 + (descr[i] - '0');
    }
    if (digits && (order == '<' || order == '>' || order == '|' || order == '=')) {
      for (const auto& e : kDescrs) {
        if (e.kind == kind && e.size == size) {
          swap = order == '>' && size > 1;
          return e.dtype;
        }
      }
    }
  }
  return unsupported("'{}': numpy dtype '{}' is not supported (supported: {}; bfloat16 has no numpy "
                     "dtype, save it as float32)",
                     name, descr, kSupported);
}

std::string descr_of(DType t) {
  for (const auto& e : kDescrs)
    if (e.dtype == t) return fmt::format("{}{}{}", e.size == 1 ? '|' : '<', e.kind, e.size);
  return "";
}

void byteswap_elements(char* p, size_t count, size_t size) {
  for (size_t i = 0; i < count; ++i, p += size) std::reverse(p, p + size);
}

}  // namespace

bool looks_like_npy(std::string_view bytes) { return bytes.substr(0, kMagic.size()) == kMagic; }

Expected<Tensor> parse_npy(std::string_view bytes, const std::string& name) {
  if (!looks_like_npy(bytes)) return invalid_argument("'{}' is not a .npy file (no \\x93NUMPY magic)", name);
  if (bytes.size() < 10) return invalid_argument("'{}': truncated .npy header", name);
  const auto* u = reinterpret_cast<const unsigned char*>(bytes.data());
  int major = u[6], minor = u[7];
  size_t header_len = 0, header_start = 0;
  if (major == 1) {
    header_len = u[8] | (static_cast<size_t>(u[9]) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return invalid_argument("'{}': truncated .npy header", name);
    header_len = u[8] | (static_cast<size_t>(u[9]) << 8) | (static_cast<size_t>(u[10]) << 16) |
                 (static_cast<size_t>(u[11]) << 24);
    header_start = 12;
  } else {
    return unsupported("'{}': .npy format version {}.{} is not supported (1.0, 2.0 and 3.0 are)", name,
                       major, minor);
  }
  if (bytes.size() - header_start < header_len)
    return invalid_argument("'{}': truncated .npy header ({} bytes declared, {} present)", name,
                            header_len, bytes.size() - header_start);
  std::string_view header = bytes.substr(header_start, header_len);

  std::vector<std::pair<std::string, HeaderValue>> entries;
  std::string err = HeaderParser(header).parse(entries);
  if (!err.empty()) return invalid_argument("'{}': malformed .npy header: {}", name, err);
  const HeaderValue *descr = nullptr, *fortran = nullptr, *shape = nullptr;
  for (const auto& [k, v] : entries) {
    if (k == "descr") descr = &v;
    else if (k == "fortran_order") fortran = &v;
    else if (k == "shape") shape = &v;
  }
  if (!descr || !fortran || !shape)
    return invalid_argument("'{}': malformed .npy header: it needs 'descr', 'fortran_order' and 'shape'", name);
  if (descr->kind != HeaderValue::kString)
    return unsupported("'{}': structured numpy arrays are not supported (a plain dtype is needed)", name);
  if (fortran->kind != HeaderValue::kBool)
    return invalid_argument("'{}': malformed .npy header: 'fortran_order' is not True/False", name);
  if (shape->kind != HeaderValue::kTuple)
    return invalid_argument("'{}': malformed .npy header: 'shape' is not a tuple", name);

  bool swap = false;
  KILN_ASSIGN_OR_RETURN(DType dtype, dtype_from_descr(descr->str, name, swap));
  if (fortran->boolean)
    return unsupported("'{}': Fortran-order arrays are not supported; save a C-order array "
                       "(numpy.ascontiguousarray)",
                       name);
  Dims dims = shape->ints;
  size_t numel = 1;
  for (int64_t d : dims) {
    if (d < 0) return invalid_argument("'{}': malformed .npy header: negative dimension {}", name, d);
    // Guards the byte count against overflow; any real file is far below this.
    if (d > 0 && numel > (size_t{1} << 48) / static_cast<size_t>(d))
      return invalid_argument("'{}': shape {} is too large", name, dims_to_string(dims));
    numel *= static_cast<size_t>(d);
  }
  size_t elem = dtype_size(dtype);
  size_t data_start = header_start + header_len;
  size_t have = bytes.size() - data_start;
  if (have != numel * elem)
    return invalid_argument("'{}': {} data holds {} bytes, expected {} ({} file)", name,
                            fmt::format("{}[{}]", dtype_name(dtype), dims_to_string(dims)), have,
                            numel * elem, have < numel * elem ? "truncated" : "corrupt");
  Tensor t = Tensor::from_bytes(dtype, dims, bytes.data() + data_start);
  if (swap) byteswap_elements(static_cast<char*>(t.raw_data()), numel, elem);
  if (dtype == DType::kBool) {
    // numpy bools are one byte 0/1; other byte values would be undefined behaviour as C++ bool.
    auto* p = static_cast<unsigned char*>(t.raw_data());
    for (size_t i = 0; i < numel; ++i) p[i] = p[i] != 0;
  }
  return t;
}

Expected<Tensor> load_npy(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
  return parse_npy(bytes, path);
}

Expected<std::string> encode_npy(const Tensor& t) {
  std::string descr = descr_of(t.dtype());
  if (descr.empty())
    return unsupported("a {} tensor cannot be saved as .npy: numpy has no {} dtype (supported: {})",
                       dtype_name(t.dtype()), dtype_name(t.dtype()), kSupported);
  std::string shape = "(";
  for (size_t i = 0; i < t.dims().size(); ++i) shape += (i ? ", " : "") + std::to_string(t.dims()[i]);
  if (t.dims().size() == 1) shape += ",";
  shape += ")";
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", descr, shape);
  // numpy pads the header with spaces and a newline so the data starts 64-byte aligned.
  size_t prefix = 10;
  int major = 1;
  if (header.size() + 1 + 64 > 65535) {
    prefix = 12;
    major = 2;
  }
  size_t total = (prefix + header.size() + 1 + 63) / 64 * 64;
  header.append(total - prefix - header.size() - 1, ' ');
  header += '\n';

  std::string out;
  out.reserve(total + t.nbytes());
  out += kMagic;
  out += static_cast<char>(major);
  out += '\0';
  size_t len = header.size();
  for (size_t i = 0; i < prefix - 8; ++i) out += static_cast<char>((len >> (8 * i)) & 0xff);
  out += header;
  out.append(static_cast<const char*>(t.raw_data()), t.nbytes());
  return out;
}

Status save_npy(const std::string& path, const Tensor& t) {
  auto bytes = encode_npy(t);
  if (!bytes.ok()) return Status(bytes.status()).add_context("cannot write '" + path + "'");
  return write_file_atomic(path, *bytes);
}

}  // namespace kiln
