#include "run_inputs.hpp"

#include <filesystem>
#include <map>
#include <random>

#include "cli_util.hpp"
#include "util/error.hpp"

namespace kiln::cli {

namespace {

const Value* find_input(const Graph& g, const std::string& name) {
  for (const Value* v : g.inputs)
    if (v->name == name) return v;
  return nullptr;
}

std::string input_list(const Graph& g) {
  std::vector<std::string> names;
  for (const Value* v : g.inputs) names.push_back("'" + v->name + "'");
  return names.empty() ? "it has none" : fmt::format("its inputs: {}", fmt::join(names, ", "));
}

bool is_file(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

std::string shape_text(DType dtype, const Dims& dims) {
  return TensorType{dtype, Shape::from_dims(dims)}.to_string();
}

// Checks `dims` against the declared shape of `in`, recording symbolic dims in `symbols`.
// Returns "" or what is wrong.
std::string match_declared(const Value* in, const Dims& dims, std::map<std::string, int64_t>& symbols,
                           std::map<std::string, std::string>& symbol_owner) {
  const Shape& want = in->type.shape;
  if (!want.has_rank()) return "";
  if (want.rank() != dims.size())
    return fmt::format("expected rank {} ({})", want.rank(), want.to_string());
  for (size_t d = 0; d < dims.size(); ++d) {
    const Dim& w = want[d];
    if (w.known() && w.value != dims[d])
      return fmt::format("dim {} must be {} (expected {})", d, w.value, want.to_string());
    if (!w.known() && !w.symbol.empty()) {
      auto [it, fresh] = symbols.emplace(w.symbol, dims[d]);
      if (fresh) symbol_owner[w.symbol] = in->name;
      else if (it->second != dims[d])
        return fmt::format("dim {} ('{}') is {}, but input '{}' set '{}' = {}", d, w.symbol, dims[d],
                           symbol_owner[w.symbol], w.symbol, it->second);
    }
  }
  return "";
}

Tensor random_tensor(DType dtype, const Dims& dims, std::mt19937_64& rng) {
  Tensor t(dtype, dims);
  std::uniform_real_distribution<double> real(-1.0, 1.0);
  std::uniform_int_distribution<int> small(0, 9);  // valid as an index or count in most models
  std::bernoulli_distribution coin(0.5);
  dispatch_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      if constexpr (std::is_same_v<T, bool>) p[i] = coin(rng);
      else if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) p[i] = T(static_cast<float>(real(rng)));
      else if constexpr (std::is_floating_point_v<T>) p[i] = static_cast<T>(real(rng));
      else p[i] = static_cast<T>(small(rng));
    }
  });
  return t;
}

Expected<Dims> parse_dims(const std::string& text, const std::string& arg) {
  Dims dims;
  if (text.empty() || text == "scalar") return dims;
  size_t pos = 0;
  while (true) {
    size_t end = text.find_first_of("xX*", pos);
    std::string part = text.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    bool digits = !part.empty() && part.size() <= 15 && part.find_first_not_of("0123456789") == std::string::npos;
    if (!digits)
      return invalid_argument("--shapes '{}': '{}' is not a list of sizes like 1x3x224x224", arg, text);
    dims.push_back(std::stoll(part));
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  return dims;
}

}  // namespace

Expected<std::pair<std::string, std::string>> split_input_binding(const Graph& g, const std::string& arg) {
  std::vector<size_t> eqs;
  for (size_t i = arg.size(); i-- > 0;)
    if (arg[i] == '=') eqs.push_back(i);  // last first
  for (size_t i : eqs)
    if (find_input(g, arg.substr(0, i)) && is_file(arg.substr(i + 1))) return std::pair{arg.substr(0, i), arg.substr(i + 1)};
  for (size_t i : eqs)
    if (find_input(g, arg.substr(0, i))) return std::pair{arg.substr(0, i), arg.substr(i + 1)};
  if (g.inputs.size() == 1 && is_file(arg)) return std::pair{g.inputs[0]->name, arg};
  for (size_t i : eqs)
    if (is_file(arg.substr(i + 1)))
      return not_found("--input '{}': the model has no input named '{}' ({})", arg, arg.substr(0, i), input_list(g));
  if (eqs.empty())
    return invalid_argument("--input '{}': expected NAME=FILE ({})", arg, input_list(g));
  return not_found("--input '{}': the model has no input named '{}' ({})", arg, arg.substr(0, eqs.back()),
                   input_list(g));
}

Expected<std::vector<std::pair<std::string, Dims>>> parse_shapes(const std::vector<std::string>& args) {
  std::vector<std::pair<std::string, Dims>> out;
  for (const std::string& arg : args) {
    std::vector<std::string> pieces;
    std::string pending;
    size_t pos = 0;
    while (pos <= arg.size()) {
      size_t comma = arg.find(',', pos);
      std::string piece = arg.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      pending = pending.empty() ? piece : pending + "," + piece;
      // A piece without ':' is part of a name that contains ','.
      if (pending.find(':') != std::string::npos) {
        pieces.push_back(pending);
        pending.clear();
      }
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
    if (!pending.empty() || pieces.empty())
      return invalid_argument("--shapes '{}': expected NAME:DIMS, e.g. input:1x3x224x224 (several separated by ',')",
                              arg);
    for (const std::string& p : pieces) {
      size_t colon = p.rfind(':');
      std::string name = p.substr(0, colon);
      if (name.empty()) return invalid_argument("--shapes '{}': missing input name before ':'", arg);
      KILN_ASSIGN_OR_RETURN(Dims dims, parse_dims(p.substr(colon + 1), arg));
      for (const auto& [n, d] : out)
        if (n == name) return invalid_argument("--shapes: input '{}' is given twice", name);
      out.emplace_back(name, std::move(dims));
    }
  }
  return out;
}

Expected<std::vector<BoundInput>> prepare_inputs(const Graph& g, const InputOptions& options) {
  std::map<std::string, std::string> files;  // input name -> file
  for (const std::string& arg : options.inputs) {
    KILN_ASSIGN_OR_RETURN(auto binding, split_input_binding(g, arg));
    if (!files.emplace(binding.first, binding.second).second)
      return invalid_argument("--input: input '{}' is given twice", binding.first);
  }
  KILN_ASSIGN_OR_RETURN(auto shape_list, parse_shapes(options.shapes));
  std::map<std::string, Dims> shapes;
  for (auto& [name, dims] : shape_list) {
    if (!find_input(g, name))
      return not_found("--shapes: the model has no input named '{}' ({})", name, input_list(g));
    shapes[name] = dims;
  }

  std::map<std::string, int64_t> symbols;
  std::map<std::string, std::string> symbol_owner;
  std::map<std::string, BoundInput> bound;
  // Files first, then --shapes: both fix symbolic dims that random inputs may share.
  for (const Value* in : g.inputs) {
    auto f = files.find(in->name);
    if (f == files.end()) continue;
    auto t = load_tensor_file(f->second);
    if (!t.ok()) return Status(t.status()).add_context(fmt::format("input '{}'", in->name));
    std::string what = fmt::format("input '{}' (file '{}')", in->name, f->second);
    if (in->type.dtype != DType::kUndefined && t->dtype() != in->type.dtype)
      return invalid_argument("{}: expected {}, got {}", what, in->type.to_string(), shape_text(t->dtype(), t->dims()));
    std::string err = match_declared(in, t->dims(), symbols, symbol_owner);
    if (!err.empty())
      return invalid_argument("{}: {}, got {}", what, err, shape_text(t->dtype(), t->dims()));
    auto s = shapes.find(in->name);
    if (s != shapes.end() && s->second != t->dims())
      return invalid_argument("{}: its shape {} differs from --shapes {}", what, dims_to_string(t->dims()),
                              dims_to_string(s->second));
    bound[in->name] = BoundInput{in->name, std::move(t).value(), f->second};
  }
  for (const Value* in : g.inputs) {
    auto s = shapes.find(in->name);
    if (s == shapes.end() || bound.count(in->name)) continue;
    std::string err = match_declared(in, s->second, symbols, symbol_owner);
    if (!err.empty())
      return invalid_argument("--shapes for input '{}': {}, got {}", in->name, err, dims_to_string(s->second));
  }

  std::mt19937_64 rng(options.seed);
  std::vector<BoundInput> out;
  for (const Value* in : g.inputs) {
    if (auto b = bound.find(in->name); b != bound.end()) {
      out.push_back(std::move(b->second));
      continue;
    }
    Dims dims;
    if (auto s = shapes.find(in->name); s != shapes.end()) {
      dims = s->second;
    } else {
      const Shape& shape = in->type.shape;
      bool ok = shape.has_rank();
      for (size_t d = 0; ok && d < shape.rank(); ++d) {
        const Dim& dim = shape[d];
        if (dim.known()) dims.push_back(dim.value);
        else if (auto it = symbols.find(dim.symbol); !dim.symbol.empty() && it != symbols.end()) dims.push_back(it->second);
        else ok = false;
      }
      if (!ok) {
        // Suggest the declared shape with every unknown dim set to 1.
        std::string example = "DIMS";
        if (shape.has_rank()) {
          Dims ex;
          for (const Dim& dim : shape.dims()) ex.push_back(dim.known() ? dim.value : 1);
          example = ex.empty() ? "scalar" : dims_to_string(ex);
        }
        return invalid_argument(
            "input '{}' has dynamic shape {} and no data: give its shape with --shapes '{}:{}' or a file with "
            "--input '{}=FILE'",
            in->name, shape.to_string(), in->name, example, in->name);
      }
    }
    DType dt = in->type.dtype;
    if (dt == DType::kUndefined || dt == DType::kString || dtype_size(dt) == 0)
      return unsupported("input '{}' has type {}: no random data can be generated for it; give a file with --input",
                         in->name, in->type.to_string());
    int64_t numel = 1;
    for (int64_t d : dims) numel = d == 0 || numel <= (int64_t{1} << 40) / d ? numel * d : (int64_t{1} << 41);
    if (numel > (int64_t{1} << 32))
      return invalid_argument("input '{}': shape {} is too large", in->name, dims_to_string(dims));
    out.push_back(BoundInput{in->name, random_tensor(dt, dims, rng), ""});
  }
  return out;
}

}  // namespace kiln::cli
