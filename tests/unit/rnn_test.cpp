// RNN, GRU, LSTM against a naive implementation of the ONNX equations: scalar loops in double, one
// batch entry and one time step at a time, inputs located by explicit layout arithmetic.
#include <optional>

#include "elementwise_test_util.hpp"

namespace kiln::test {
namespace {

struct Act {
  std::string name;
  double alpha = 0, beta = 0;
};

bool takes_alpha(const std::string& n) {
  return n == "Affine" || n == "LeakyRelu" || n == "ThresholdedRelu" || n == "ScaledTanh" || n == "HardSigmoid" ||
         n == "Elu";
}
bool takes_beta(const std::string& n) { return n == "Affine" || n == "ScaledTanh" || n == "HardSigmoid"; }

// The activation table of the ONNX RNN/GRU/LSTM spec.
double act(const Act& a, double x) {
  const std::string& n = a.name;
  if (n == "Relu") return std::max(x, 0.0);
  if (n == "Tanh") return std::tanh(x);
  if (n == "Sigmoid") return 1 / (1 + std::exp(-x));
  if (n == "Affine") return a.alpha * x + a.beta;
  if (n == "LeakyRelu") return x >= 0 ? x : a.alpha * x;
  if (n == "ThresholdedRelu") return x >= a.alpha ? x : 0;
  if (n == "ScaledTanh") return a.alpha * std::tanh(a.beta * x);
  if (n == "HardSigmoid") return std::min(std::max(a.alpha * x + a.beta, 0.0), 1.0);
  if (n == "Elu") return x >= 0 ? x : a.alpha * (std::exp(x) - 1);
  if (n == "Softsign") return x / (1 + std::fabs(x));
  if (n == "Softplus") return std::log(1 + std::exp(x));
  ADD_FAILURE() << "unknown activation " << n;
  return 0;
}

struct Case {
  std::string op = "LSTM";
  std::string direction = "forward";
  int64_t layout = 0;
  int64_t seq = 4, batch = 3, input = 5, hidden = 4;
  bool bias = true, init_h = true, init_c = true, peepholes = false;
  std::optional<std::vector<int32_t>> lens;
  std::optional<float> clip;
  int64_t linear_before_reset = 0, input_forget = 0;
  std::vector<Act> acts;         // empty: the op's defaults (no attribute)
  bool alpha_beta_attrs = true;  // false: leave activation_alpha/beta out (the acts hold the defaults)
  bool hidden_size_attr = true;
  DType dtype = DType::kFloat32;
  double weight_scale = 0.6;
  uint32_t seed = 1;

  int dirs() const { return direction == "bidirectional" ? 2 : 1; }
  int64_t gates() const { return op == "RNN" ? 1 : op == "GRU" ? 3 : 4; }
  bool lstm() const { return op == "LSTM"; }
  std::vector<Act> activations() const {
    if (!acts.empty()) return acts;
    std::vector<Act> per = op == "RNN" ? std::vector<Act>{{"Tanh"}}
                         : op == "GRU" ? std::vector<Act>{{"Sigmoid"}, {"Tanh"}}
                                       : std::vector<Act>{{"Sigmoid"}, {"Tanh"}, {"Tanh"}};
    std::vector<Act> all;
    for (int d = 0; d < dirs(); ++d) all.insert(all.end(), per.begin(), per.end());
    return all;
  }
};

Dims state_dims(const Case& c) {
  return c.layout == 0 ? Dims{c.dirs(), c.batch, c.hidden} : Dims{c.batch, c.dirs(), c.hidden};
}

// X, W, R, B, sequence_lens, initial_h (, initial_c, P); absent optional inputs are undefined.
std::vector<Tensor> make_inputs(const Case& c) {
  const int64_t gh = c.gates() * c.hidden;
  const double s = c.weight_scale;
  uint32_t seed = c.seed * 100;
  std::vector<Tensor> in(c.lstm() ? 8 : 6);
  in[0] = random_tensor(c.dtype, c.layout == 0 ? Dims{c.seq, c.batch, c.input} : Dims{c.batch, c.seq, c.input},
                        seed++, -1, 1);
  in[1] = random_tensor(c.dtype, {c.dirs(), gh, c.input}, seed++, -s, s);
  in[2] = random_tensor(c.dtype, {c.dirs(), gh, c.hidden}, seed++, -s, s);
  if (c.bias) in[3] = random_tensor(c.dtype, {c.dirs(), 2 * gh}, seed++, -s, s);
  if (c.lens) in[4] = Tensor::from_vector<int32_t>({c.batch}, *c.lens);
  if (c.init_h) in[5] = random_tensor(c.dtype, state_dims(c), seed++, -1, 1);
  if (c.lstm() && c.init_c) in[6] = random_tensor(c.dtype, state_dims(c), seed++, -1, 1);
  if (c.lstm() && c.peepholes) in[7] = random_tensor(c.dtype, {c.dirs(), 3 * c.hidden}, seed++, -s, s);
  while (!in.back().defined()) in.pop_back();
  return in;
}

Attributes make_attrs(const Case& c) {
  Attributes a;
  if (c.direction != "forward" || c.seed % 2) a.set("direction", c.direction);  // also test the default
  if (c.hidden_size_attr) a.set("hidden_size", c.hidden);
  if (c.layout) a.set("layout", c.layout);
  if (c.clip) a.set("clip", *c.clip);
  if (c.op == "GRU" && c.linear_before_reset) a.set("linear_before_reset", c.linear_before_reset);
  if (c.lstm() && c.input_forget) a.set("input_forget", c.input_forget);
  if (!c.acts.empty()) {
    std::vector<std::string> names;
    std::vector<float> alphas, betas;
    for (const Act& x : c.acts) {
      names.push_back(x.name);
      if (takes_alpha(x.name)) alphas.push_back(static_cast<float>(x.alpha));
      if (takes_beta(x.name)) betas.push_back(static_cast<float>(x.beta));
    }
    a.set("activations", names);
    if (c.alpha_beta_attrs && !alphas.empty()) a.set("activation_alpha", alphas);
    if (c.alpha_beta_attrs && !betas.empty()) a.set("activation_beta", betas);
  }
  return a;
}

struct Outputs {
  Tensor y, yh, yc;
};

// The naive reference, from the (possibly rounded) input values.
Outputs reference(const Case& c, const std::vector<Tensor>& in) {
  const int64_t S = c.seq, N = c.batch, I = c.input, H = c.hidden, D = c.dirs(), GH = c.gates() * H;
  auto vals = [&](size_t i) {
    return i < in.size() && in[i].defined() ? in[i].to_double_vector() : std::vector<double>();
  };
  const auto X = vals(0), W = vals(1), R = vals(2), B = vals(3), H0 = vals(5), C0 = vals(6), P = vals(7);
  const std::vector<Act> acts = c.activations();
  const size_t per_dir = acts.size() / static_cast<size_t>(D);

  auto x_at = [&](int64_t t, int64_t b, int64_t i) {
    return X[static_cast<size_t>((c.layout == 0 ? t * N + b : b * S + t) * I + i)];
  };
  auto st = [&](int64_t d, int64_t b, int64_t j) {
    return static_cast<size_t>((c.layout == 0 ? d * N + b : b * D + d) * H + j);
  };
  auto yi = [&](int64_t t, int64_t d, int64_t b, int64_t j) {
    return static_cast<size_t>((c.layout == 0 ? (t * D + d) * N + b : (b * S + t) * D + d) * H + j);
  };
  auto clipped = [&](double v) { return c.clip ? std::clamp(v, -double(*c.clip), double(*c.clip)) : v; };

  std::vector<double> y(static_cast<size_t>(S * D * N * H), 0.0), yh(static_cast<size_t>(D * N * H)), yc(yh.size());
  for (int64_t d = 0; d < D; ++d) {
    const bool reverse = c.direction == "reverse" || d == 1;
    const Act& f = acts[static_cast<size_t>(d) * per_dir];
    const Act& g = acts[std::min(static_cast<size_t>(d) * per_dir + 1, acts.size() - 1)];
    const Act& h_act = acts[std::min(static_cast<size_t>(d) * per_dir + 2, acts.size() - 1)];
    auto w = [&](int64_t row, int64_t i) { return W[static_cast<size_t>((d * GH + row) * I + i)]; };
    auto r = [&](int64_t row, int64_t k) { return R[static_cast<size_t>((d * GH + row) * H + k)]; };
    auto wb = [&](int64_t row) { return B.empty() ? 0.0 : B[static_cast<size_t>(d * 2 * GH + row)]; };
    auto rb = [&](int64_t row) { return B.empty() ? 0.0 : B[static_cast<size_t>(d * 2 * GH + GH + row)]; };
    auto p = [&](int64_t k, int64_t j) { return P.empty() ? 0.0 : P[static_cast<size_t>(d * 3 * H + k * H + j)]; };
    for (int64_t b = 0; b < N; ++b) {
      std::vector<double> h(static_cast<size_t>(H)), cell(static_cast<size_t>(H));
      for (int64_t j = 0; j < H; ++j) {
        h[static_cast<size_t>(j)] = H0.empty() ? 0.0 : H0[st(d, b, j)];
        cell[static_cast<size_t>(j)] = C0.empty() ? 0.0 : C0[st(d, b, j)];
      }
      const int64_t len = c.lens ? (*c.lens)[static_cast<size_t>(b)] : S;
      for (int64_t k = 0; k < len; ++k) {
        const int64_t t = reverse ? len - 1 - k : k;
        auto xw = [&](int64_t row) {
          double s = 0;
          for (int64_t i = 0; i < I; ++i) s += x_at(t, b, i) * w(row, i);
          return s;
        };
        auto hr = [&](int64_t row, const std::vector<double>& hv) {
          double s = 0;
          for (int64_t q = 0; q < H; ++q) s += hv[static_cast<size_t>(q)] * r(row, q);
          return s;
        };
        // Xt W^T + Ht-1 R^T + Wb + Rb of gate block `gate`, unit j.
        auto pre = [&](int64_t gate, int64_t j) {
          const int64_t row = gate * H + j;
          return xw(row) + hr(row, h) + wb(row) + rb(row);
        };
        std::vector<double> hn(static_cast<size_t>(H));
        if (c.op == "RNN") {
          for (int64_t j = 0; j < H; ++j) hn[static_cast<size_t>(j)] = act(f, clipped(pre(0, j)));
        } else if (c.op == "GRU") {
          std::vector<double> z(hn.size()), rr(hn.size()), rh(hn.size());
          for (int64_t j = 0; j < H; ++j) {
            z[static_cast<size_t>(j)] = act(f, clipped(pre(0, j)));
            rr[static_cast<size_t>(j)] = act(f, clipped(pre(1, j)));
            rh[static_cast<size_t>(j)] = rr[static_cast<size_t>(j)] * h[static_cast<size_t>(j)];
          }
          for (int64_t j = 0; j < H; ++j) {
            const int64_t row = 2 * H + j;
            const auto u = static_cast<size_t>(j);
            const double v = c.linear_before_reset ? xw(row) + wb(row) + rr[u] * (hr(row, h) + rb(row))
                                                   : xw(row) + hr(row, rh) + wb(row) + rb(row);
            hn[u] = (1 - z[u]) * act(g, clipped(v)) + z[u] * h[u];
          }
        } else {
          for (int64_t j = 0; j < H; ++j) {
            const auto u = static_cast<size_t>(j);
            const double i_g = act(f, clipped(pre(0, j) + p(0, j) * cell[u]));
            const double f_g = c.input_forget ? 1 - i_g : act(f, clipped(pre(2, j) + p(2, j) * cell[u]));
            const double c_g = act(g, clipped(pre(3, j)));
            const double c_new = f_g * cell[u] + i_g * c_g;
            const double o_g = act(f, clipped(pre(1, j) + p(1, j) * c_new));
            hn[u] = o_g * act(h_act, c_new);
            cell[u] = c_new;
          }
        }
        h = hn;
        for (int64_t j = 0; j < H; ++j) y[yi(t, d, b, j)] = h[static_cast<size_t>(j)];
      }
      for (int64_t j = 0; j < H; ++j) {
        yh[st(d, b, j)] = h[static_cast<size_t>(j)];
        yc[st(d, b, j)] = cell[static_cast<size_t>(j)];
      }
    }
  }
  const Dims ydims = c.layout == 0 ? Dims{S, D, N, H} : Dims{N, S, D, H};
  return {Tensor::from_vector<double>(ydims, y).cast(c.dtype),
          Tensor::from_vector<double>(state_dims(c), yh).cast(c.dtype),
          Tensor::from_vector<double>(state_dims(c), yc).cast(c.dtype)};
}

double tol(DType t) { return t == DType::kFloat64 ? 1e-11 : t == DType::kFloat16 ? 3e-3 : 2e-5; }

Expected<std::vector<Tensor>> run_case(const Case& c) {
  return run_op({c.op, make_inputs(c), {}, make_attrs(c), c.lstm() ? 3 : 2});
}

// Runs the case and compares every output with the reference; returns the outputs.
std::vector<Tensor> check(const Case& c, const std::string& what) {
  SCOPED_TRACE(what);
  auto got = run_case(c);
  EXPECT_TRUE(got.ok()) << got.status().message();
  if (!got.ok()) return {};
  const Outputs want = reference(c, make_inputs(c));
  const double t = tol(c.dtype);
  EXPECT_TRUE(tensors_close(got->at(0), want.y, t, t)) << "Y";
  EXPECT_TRUE(tensors_close(got->at(1), want.yh, t, t)) << "Y_h";
  if (c.lstm()) { EXPECT_TRUE(tensors_close(got->at(2), want.yc, t, t)) << "Y_c"; }
  return *got;
}

std::string describe(const Case& c) {
  return fmt::format("{} {} layout {} {}", c.op, c.direction, c.layout, dtype_name(c.dtype));
}

const char* const kOps[] = {"RNN", "GRU", "LSTM"};
const char* const kDirections[] = {"forward", "reverse", "bidirectional"};

TEST(RnnOps, EveryDirectionAndLayout) {
  uint32_t seed = 1;
  for (const char* op : kOps)
    for (const char* dir : kDirections)
      for (int64_t layout : {0, 1}) {
        Case c;
        c.op = op, c.direction = dir, c.layout = layout, c.seed = seed++;
        check(c, describe(c));
      }
}

// Also checks the padding rule directly: Y is zero beyond an entry's length, and Y_h is the Y of
// the last valid step (t = len-1 forward, t = 0 reverse), or initial_h for length 0.
TEST(RnnOps, SequenceLens) {
  uint32_t seed = 40;
  for (const char* op : kOps)
    for (const char* dir : kDirections)
      for (int64_t layout : {0, 1}) {
        Case c;
        c.op = op, c.direction = dir, c.layout = layout, c.seed = seed++;
        c.seq = 5, c.batch = 4, c.lens = std::vector<int32_t>{5, 2, 0, 3};
        auto out = check(c, describe(c));
        if (out.empty()) continue;
        const auto y = out[0].to_double_vector(), yh = out[1].to_double_vector();
        const auto h0 = make_inputs(c)[5].to_double_vector();
        const int64_t D = c.dirs(), N = c.batch, H = c.hidden, S = c.seq;
        for (int64_t d = 0; d < D; ++d)
          for (int64_t b = 0; b < N; ++b) {
            const int64_t len = (*c.lens)[static_cast<size_t>(b)];
            const int64_t last = (c.direction == "reverse" || d == 1) ? 0 : len - 1;
            for (int64_t j = 0; j < H; ++j) {
              const auto s_i = static_cast<size_t>((layout == 0 ? d * N + b : b * D + d) * H + j);
              for (int64_t t = 0; t < S; ++t) {
                const auto y_i = static_cast<size_t>((layout == 0 ? (t * D + d) * N + b : (b * S + t) * D + d) * H + j);
                if (t >= len) { EXPECT_EQ(y[y_i], 0.0) << describe(c) << " b=" << b << " t=" << t; }
                if (len > 0 && t == last) { EXPECT_EQ(yh[s_i], y[y_i]) << describe(c) << " b=" << b; }
              }
              if (len == 0) { EXPECT_EQ(yh[s_i], h0[s_i]) << describe(c); }
            }
          }
      }
}

TEST(RnnOps, WithoutOptionalInputsOrHiddenSizeAttribute) {
  uint32_t seed = 80;
  for (const char* op : kOps)
    for (const char* dir : kDirections) {
      Case c;
      c.op = op, c.direction = dir, c.seed = seed++;
      c.bias = c.init_h = c.init_c = false;
      c.hidden_size_attr = false;  // taken from R's shape
      check(c, describe(c));
    }
}

TEST(RnnOps, LstmPeepholes) {
  for (const char* dir : kDirections)
    for (int64_t layout : {0, 1}) {
      Case c;
      c.direction = dir, c.layout = layout, c.peepholes = true, c.seed = 90 + static_cast<uint32_t>(layout);
      c.lens = std::vector<int32_t>{4, 1, 3};
      auto with = check(c, describe(c) + " peepholes");
      c.peepholes = false;
      auto without = run_case(c);
      ASSERT_TRUE(without.ok());
      if (!with.empty()) { EXPECT_GT(rel_l2(with[0], without->at(0)), 1e-3) << "P has no effect"; }
    }
}

TEST(RnnOps, LstmInputForget) {
  for (const char* dir : {"forward", "bidirectional"}) {
    Case c;
    c.direction = dir, c.input_forget = 1, c.peepholes = true, c.seed = 95;
    check(c, describe(c) + " input_forget");
  }
}

TEST(RnnOps, GruLinearBeforeReset) {
  for (const char* dir : kDirections)
    for (int64_t layout : {0, 1}) {
      Case c;
      c.op = "GRU", c.direction = dir, c.layout = layout, c.seed = 100 + static_cast<uint32_t>(layout);
      c.linear_before_reset = 1;
      auto lbr = check(c, describe(c) + " linear_before_reset");
      c.linear_before_reset = 0;
      auto plain = check(c, describe(c));
      if (!lbr.empty() && !plain.empty()) { EXPECT_GT(rel_l2(lbr[0], plain[0]), 1e-4) << "no effect"; }
    }
}

TEST(RnnOps, Clip) {
  uint32_t seed = 110;
  for (const char* op : kOps)
    for (const char* dir : {"forward", "bidirectional"}) {
      Case c;
      c.op = op, c.direction = dir, c.seed = seed++, c.weight_scale = 2.0, c.peepholes = true;
      c.clip = 0.4f;
      c.acts = {};
      // Affine passes the clipped value through, so clipping is visible in every output.
      for (int d = 0; d < c.dirs(); ++d)
        for (int k = 0; k < (op == std::string("RNN") ? 1 : op == std::string("GRU") ? 2 : 3); ++k)
          c.acts.push_back(k == 0 && op != std::string("RNN") ? Act{"Sigmoid"} : Act{"Affine", 1.5, 0.1});
      auto clipped = check(c, describe(c) + " clip");
      c.clip.reset();
      auto free = check(c, describe(c));
      if (!clipped.empty() && !free.empty()) { EXPECT_GT(rel_l2(clipped[0], free[0]), 1e-2) << "clip has no effect"; }
    }
}

TEST(RnnOps, EveryActivationFunction) {
  const std::vector<Act> all = {{"Relu"},
                                {"Tanh"},
                                {"Sigmoid"},
                                {"Affine", 0.7, -0.2},
                                {"LeakyRelu", 0.3},
                                {"ThresholdedRelu", 0.1},
                                {"ScaledTanh", 1.3, 0.8},
                                {"HardSigmoid", 0.3, 0.4},
                                {"Elu", 0.8},
                                {"Softsign"},
                                {"Softplus"}};
  uint32_t seed = 120;
  for (size_t k = 0; k < all.size(); ++k) {
    // RNN: f = each function (bidirectional: the backward direction uses the next one).
    Case r;
    r.op = "RNN", r.direction = "bidirectional", r.seed = seed++, r.weight_scale = 0.4;
    r.acts = {all[k], all[(k + 1) % all.size()]};
    check(r, "RNN " + all[k].name);
    // GRU: g = each function; LSTM: g and h (f stays a gate function so the cell stays bounded).
    Case g;
    g.op = "GRU", g.seed = seed++, g.acts = {{"HardSigmoid", 0.25, 0.45}, all[k]};
    check(g, "GRU " + all[k].name);
    Case l;
    l.op = "LSTM", l.direction = "bidirectional", l.seed = seed++, l.weight_scale = 0.4;
    l.acts = {{"Sigmoid"}, all[k], all[(k + 3) % all.size()], {"HardSigmoid", 0.3, 0.5}, {"Tanh"}, all[k]};
    check(l, "LSTM " + all[k].name);
  }
}

// Without activation_alpha/beta each function takes the defaults of the ONNX op of its name.
TEST(RnnOps, ActivationAlphaBetaDefaults) {
  Case c;
  c.op = "LSTM", c.alpha_beta_attrs = false, c.seed = 130;
  c.acts = {{"HardSigmoid", 0.2, 0.5}, {"LeakyRelu", 0.01}, {"Elu", 1.0}};
  check(c, "LSTM defaults");
  c.op = "GRU";
  c.acts = {{"Sigmoid"}, {"ThresholdedRelu", 1.0}};
  check(c, "GRU ThresholdedRelu default");
  // Lower-case names are accepted too.
  Case r;
  r.op = "RNN", r.seed = 131;
  r.acts = {{"Relu"}};
  auto want = run_case(r);
  Attributes a = make_attrs(r);
  a.set("activations", std::vector<std::string>{"relu"});
  auto got = run_op({"RNN", make_inputs(r), {}, a, 2});
  ASSERT_TRUE(want.ok() && got.ok());
  EXPECT_TRUE(tensors_close(got->at(0), want->at(0), 0, 0));
}

TEST(RnnOps, Float64AndFloat16) {
  uint32_t seed = 140;
  for (DType dt : {DType::kFloat64, DType::kFloat16})
    for (const char* op : kOps) {
      Case c;
      c.op = op, c.direction = "bidirectional", c.dtype = dt, c.seed = seed++, c.peepholes = true, c.layout = seed % 2;
      c.lens = std::vector<int32_t>{3, 4, 1};
      check(c, describe(c));
    }
}

// Outputs may be absent (empty names): the present ones are still right.
TEST(RnnOps, OptionalOutputs) {
  Case c;
  c.direction = "bidirectional", c.seed = 150;
  const std::vector<Tensor> in = make_inputs(c);
  const Outputs want = reference(c, in);
  for (int absent : {0, 1, 2}) {
    GraphPtr g = make_op_graph({"LSTM", in, {}, make_attrs(c), 3});
    Node* n = g->nodes()[0].get();
    n->outputs[static_cast<size_t>(absent)] = nullptr;
    g->outputs.erase(g->outputs.begin() + absent);
    ASSERT_TRUE(infer_shapes(*g).ok());
    auto exec = CpuExecutor::create(g);
    ASSERT_TRUE(exec.ok());
    std::map<std::string, Tensor> feeds;
    for (size_t i = 0; i < in.size(); ++i)
      if (in[i].defined()) feeds["in" + std::to_string(i)] = in[i];
    auto out = (*exec)->run(feeds);
    ASSERT_TRUE(out.ok()) << out.status().message();
    std::vector<const Tensor*> expect = {&want.y, &want.yh, &want.yc};
    expect.erase(expect.begin() + absent);
    for (size_t i = 0; i < 2; ++i) EXPECT_TRUE(tensors_close(out->at(i), *expect[i], 2e-5, 2e-5)) << absent << " " << i;
  }
}

TEST(RnnShapes, SymbolicDimsAtImport) {
  for (int64_t layout : {0, 1}) {
    auto g = std::make_shared<Graph>();
    const Dim seq = Dim::symbolic("seq"), batch = Dim::symbolic("batch");
    Value* x = g->add_value("x", {DType::kFloat32, Shape(layout == 0 ? std::vector<Dim>{seq, batch, 5}
                                                                       : std::vector<Dim>{batch, seq, 5})});
    g->inputs.push_back(x);
    Value* w = g->add_constant("w", random_tensor(DType::kFloat32, {2, 9, 5}));
    Value* r = g->add_constant("r", random_tensor(DType::kFloat32, {2, 9, 3}));
    std::vector<Value*> outs = {g->add_value("y"), g->add_value("y_h")};
    Node* n = g->add_node("GRU", {x, w, r}, outs, "gru", "", 21);
    n->attrs.set("direction", std::string("bidirectional"));
    n->attrs.set("layout", layout);
    Status st = infer_shapes(*g);
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_EQ(outs[0]->type.to_string(), layout == 0 ? "float32[seq,2,batch,3]" : "float32[batch,seq,2,3]");
    EXPECT_EQ(outs[1]->type.to_string(), layout == 0 ? "float32[2,batch,3]" : "float32[batch,2,3]");
  }
}

// Runs a case with an attribute (or input) changed; expects an error with code and text naming the node.
void expect_error(const Case& c, const std::function<void(Attributes&, std::vector<Tensor>&)>& edit,
                  StatusCode code, const std::string& text) {
  Attributes a = make_attrs(c);
  std::vector<Tensor> in = make_inputs(c);
  edit(a, in);
  auto r = run_op({c.op, in, {}, a, c.lstm() ? 3 : 2});
  ASSERT_FALSE(r.ok()) << text;
  EXPECT_EQ(r.status().code(), code) << r.status().message();
  EXPECT_TRUE(contains(r.status().message(), c.op + "_node")) << r.status().message();
  EXPECT_TRUE(contains(r.status().message(), text)) << r.status().message() << " (wanted: " << text << ")";
}

TEST(RnnErrors, NameTheNode) {
  using A = Attributes;
  using V = std::vector<Tensor>;
  const StatusCode bad = StatusCode::kInvalidModel;
  Case lstm;
  expect_error(lstm, [](A& a, V&) { a.set("hidden_size", int64_t{5}); }, bad, "W (input 1) has shape [1,16,5]");
  expect_error(lstm, [](A& a, V&) { a.set("direction", std::string("sideways")); }, bad, "direction");
  expect_error(lstm, [](A& a, V&) { a.set("direction", std::string("bidirectional")); }, bad, "W (input 1)");
  expect_error(lstm, [](A& a, V&) { a.set("layout", int64_t{2}); }, bad, "layout");
  expect_error(lstm, [](A& a, V&) { a.set("hidden_size", int64_t{0}); }, bad, "hidden_size");
  expect_error(lstm, [](A& a, V&) { a.set("clip", -1.f); }, bad, "clip");
  expect_error(lstm, [](A& a, V&) { a.set("input_forget", int64_t{3}); }, bad, "input_forget");
  expect_error(lstm, [](A& a, V&) { a.set("hidden_size", 4.f); }, bad, "hidden_size must be an int");
  expect_error(lstm, [](A& a, V&) { a.set("activations", std::vector<std::string>{"Sigmoid", "Tanh"}); }, bad,
               "activations has 2 entries, expected 3");
  expect_error(lstm, [](A& a, V&) { a.set("activations", std::vector<std::string>{"Sigmoid", "Gelu", "Tanh"}); },
               StatusCode::kUnsupported, "Gelu");
  expect_error(lstm, [](A& a, V&) { a.set("activation_alpha", std::vector<float>{0.5f}); }, bad, "activation_alpha");
  expect_error(lstm, [](A&, V& in) { in[2] = random_tensor(DType::kFloat32, {1, 16, 3}); }, bad, "R (input 2)");
  expect_error(lstm, [](A&, V& in) { in[3] = random_tensor(DType::kFloat32, {1, 16}); }, bad, "B (input 3)");
  expect_error(lstm, [](A&, V& in) { in[5] = random_tensor(DType::kFloat32, {1, 2, 4}); }, bad, "initial_h (input 5)");
  expect_error(lstm, [](A&, V& in) { in.resize(8), in[7] = random_tensor(DType::kFloat32, {1, 4}); }, bad,
               "P (input 7)");
  expect_error(lstm, [](A&, V& in) { in[1] = random_tensor(DType::kFloat64, {1, 16, 5}); }, bad, "float64");
  expect_error(lstm, [](A&, V& in) { in[0] = random_tensor(DType::kInt32, {4, 3, 5}); }, bad, "int32");
  expect_error(lstm, [](A&, V& in) { in[4] = random_tensor(DType::kFloat32, {3}); }, bad, "sequence_lens");
  expect_error(lstm, [](A&, V& in) { in[4] = Tensor::from_vector<int32_t>({3}, {1, 5, 2}); },
               StatusCode::kInvalidArgument, "sequence_lens[1] = 5");
  Case gru;
  gru.op = "GRU";
  expect_error(gru, [](A& a, V&) { a.set("hidden_size", int64_t{3}); }, bad,
               "W (input 1) has shape [1,12,5], expected [1,9,5] ([num_directions, 3 x hidden_size 3, input_size])");
  Case rnn;
  rnn.op = "RNN", rnn.direction = "bidirectional";
  expect_error(rnn, [](A& a, V&) { a.set("activations", std::vector<std::string>{"Relu"}); }, bad,
               "activations has 1 entries, expected 2");
}

}  // namespace
}  // namespace kiln::test
