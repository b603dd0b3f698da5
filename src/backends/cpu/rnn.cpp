// CPU kernels of RNN, GRU and LSTM. Per direction: one GEMM projects the inputs of all time steps
// (plus biases), then each step does a recurrence GEMM over the batch and the cell's elementwise
// update. Half inputs are computed in float.
//
// sequence_lens: entry b runs steps 0..len-1 (the reverse direction from len-1 down to 0); Y is zero
// beyond len and Y_h/Y_c hold the state after the last valid step (the initial state if len is 0).
#include <climits>
#include <cstring>

#include "backends/cpu/rnn_common.hpp"
#include "ops/op_registry.hpp"

namespace kiln::cpu::rnn {
namespace {

// One direction's recurrence weights, state and scratch, in compute type C.
template <typename C>
struct DirState {
  const RnnAttrs* a = nullptr;
  const RnnDims* n = nullptr;
  int d = 0;
  const C* r = nullptr;     // R[d]: [gates * hidden, hidden]
  const C* p = nullptr;     // P[d]: [3 * hidden] (LSTM peepholes i, o, f), or null
  std::vector<C> rbh;       // GRU linear_before_reset: Rbh, which stays inside the reset product
  std::vector<C> h, c;      // [batch, hidden]
  std::vector<C> rec, tmp;  // scratch [batch, gates * hidden] and [batch, hidden]
};

// The batch entries that run this step, and each one's input projection row (indexed by entry).
template <typename C>
struct StepRows {
  std::vector<int64_t> active;
  std::vector<const C*> x;
};

// rec = H R^T for every batch row (inactive rows are computed and ignored: one GEMM is cheaper).
template <typename C>
void recurrence(DirState<C>& s, int64_t rows_of_r) {
  const int64_t H = s.n->hidden, gh = s.n->gates * H;
  std::fill(s.rec.begin(), s.rec.end(), C(0));
  gemm_nt(s.n->batch, rows_of_r, H, s.h.data(), H, s.r, H, s.rec.data(), gh);
}

// Ht = f(x + Ht-1 Ri^T)   (biases are in the projection x)
template <typename C>
void rnn_step(DirState<C>& s, const StepRows<C>& rows) {
  const int64_t H = s.n->hidden;
  recurrence(s, H);
  for (int64_t b : rows.active) {
    C* g = &s.rec[static_cast<size_t>(b * H)];
    const C* x = rows.x[static_cast<size_t>(b)];
    for (int64_t j = 0; j < H; ++j) g[j] += x[j];
    clip_values(s.a->clip, g, H);
    activate(s.a->activation(s.d, 0), g, H);
    std::copy(g, g + H, &s.h[static_cast<size_t>(b * H)]);
  }
}

// z, r = f(x + Ht-1 R^T); h~ = g(xh + (r . Ht-1) Rh^T) or, linear_before_reset, g(xh + r . (Ht-1 Rh^T + Rbh));
// Ht = (1 - z) . h~ + z . Ht-1
template <typename C>
void gru_step(DirState<C>& s, const StepRows<C>& rows) {
  const int64_t H = s.n->hidden, G = 3 * H;
  const bool lbr = s.a->linear_before_reset;
  const RnnActivation& f = s.a->activation(s.d, 0);
  const RnnActivation& g = s.a->activation(s.d, 1);
  recurrence(s, lbr ? G : 2 * H);
  for (int64_t b : rows.active) {
    C* zr = &s.rec[static_cast<size_t>(b * G)];
    const C* x = rows.x[static_cast<size_t>(b)];
    for (int64_t j = 0; j < 2 * H; ++j) zr[j] += x[j];
    clip_values(s.a->clip, zr, 2 * H);
    activate(f, zr, 2 * H);
  }
  if (!lbr) {
    // The h-gate recurrence needs r first: (r . Ht-1) Rh^T into the third block of rec.
    std::fill(s.tmp.begin(), s.tmp.end(), C(0));
    for (int64_t b : rows.active) {
      const C* r = &s.rec[static_cast<size_t>(b * G + H)];
      const C* h = &s.h[static_cast<size_t>(b * H)];
      C* rh = &s.tmp[static_cast<size_t>(b * H)];
      for (int64_t j = 0; j < H; ++j) rh[j] = r[j] * h[j];
    }
    gemm_nt(s.n->batch, H, H, s.tmp.data(), H, s.r + 2 * H * H, H, s.rec.data() + 2 * H, G);
  }
  for (int64_t b : rows.active) {
    C* z = &s.rec[static_cast<size_t>(b * G)];
    C* r = z + H;
    C* hh = z + 2 * H;
    const C* x = rows.x[static_cast<size_t>(b)] + 2 * H;
    if (lbr) {
      for (int64_t j = 0; j < H; ++j) hh[j] = x[j] + r[j] * (hh[j] + s.rbh[static_cast<size_t>(j)]);
    } else {
      for (int64_t j = 0; j < H; ++j) hh[j] += x[j];
    }
    clip_values(s.a->clip, hh, H);
    activate(g, hh, H);
    C* h = &s.h[static_cast<size_t>(b * H)];
    for (int64_t j = 0; j < H; ++j) h[j] = (C(1) - z[j]) * hh[j] + z[j] * h[j];
  }
}

// i = f(xi + Ht-1 Ri^T + Pi . Ct-1), f likewise (or 1 - i with input_forget), c~ = g(xc + Ht-1 Rc^T),
// Ct = f . Ct-1 + i . c~, o = f(xo + Ht-1 Ro^T + Po . Ct), Ht = o . h(Ct)
template <typename C>
void lstm_step(DirState<C>& s, const StepRows<C>& rows) {
  const int64_t H = s.n->hidden, G = 4 * H;
  const RnnActivation& f = s.a->activation(s.d, 0);
  const RnnActivation& g = s.a->activation(s.d, 1);
  const RnnActivation& h_act = s.a->activation(s.d, 2);
  const auto& clip = s.a->clip;
  recurrence(s, G);
  for (int64_t b : rows.active) {
    C* gi = &s.rec[static_cast<size_t>(b * G)];  // gate order i, o, f, c
    C* go = gi + H;
    C* gf = gi + 2 * H;
    C* gc = gi + 3 * H;
    const C* x = rows.x[static_cast<size_t>(b)];
    for (int64_t j = 0; j < G; ++j) gi[j] += x[j];
    C* cell = &s.c[static_cast<size_t>(b * H)];
    if (s.p) {
      for (int64_t j = 0; j < H; ++j) {
        gi[j] += s.p[j] * cell[j];
        gf[j] += s.p[2 * H + j] * cell[j];
      }
    }
    clip_values(clip, gi, H);
    activate(f, gi, H);
    clip_values(clip, gc, H);
    activate(g, gc, H);
    if (s.a->input_forget) {
      for (int64_t j = 0; j < H; ++j) gf[j] = C(1) - gi[j];
    } else {
      clip_values(clip, gf, H);
      activate(f, gf, H);
    }
    for (int64_t j = 0; j < H; ++j) cell[j] = gf[j] * cell[j] + gi[j] * gc[j];
    if (s.p)
      for (int64_t j = 0; j < H; ++j) go[j] += s.p[H + j] * cell[j];
    clip_values(clip, go, H);
    activate(f, go, H);
    std::copy(cell, cell + H, gc);  // c~ is used up: its block holds h(Ct)
    activate(h_act, gc, H);
    C* h = &s.h[static_cast<size_t>(b * H)];
    for (int64_t j = 0; j < H; ++j) h[j] = go[j] * gc[j];
  }
}

template <typename T>
Status run(KernelContext& ctx, const RnnAttrs& a) {
  using C = compute_t<T>;
  const Tensor& X = ctx.input(0);
  RnnDims n;
  n.layout = a.layout;
  n.seq = X.dim(a.layout == 0 ? 0 : 1);
  n.batch = X.dim(a.layout == 0 ? 1 : 0);
  n.input = X.dim(2);
  n.hidden = ctx.input(2).dim(2);  // inference checked it against hidden_size and W
  n.dirs = a.num_directions;
  n.gates = a.gates;
  const int64_t GH = n.gates * n.hidden, rows = n.seq * n.batch;
  for (int64_t v : {rows, GH, n.input})
    if (v >= INT_MAX) return ctx.error("sizes beyond {} are not supported (BLAS takes int)", INT_MAX - 1);

  std::vector<int64_t> lens(static_cast<size_t>(n.batch), n.seq);
  if (ctx.has_input(4)) {
    KILN_ASSIGN_OR_RETURN(lens, ctx.input(4).to_int64_vector());
    for (size_t b = 0; b < lens.size(); ++b)
      if (lens[b] < 0 || lens[b] > n.seq)
        return ctx.error("sequence_lens[{}] = {} is outside [0, {}] (the sequence length)", b, lens[b], n.seq);
  }

  const bool lstm = a.kind == RnnKind::kLstm;
  std::vector<C> xb, wb, rb, bb, pb, h0b, c0b;
  const C* x = compute_view<C, T>(X, xb);
  const C* w = compute_view<C, T>(ctx.input(1), wb);
  const C* r = compute_view<C, T>(ctx.input(2), rb);
  const C* bias = ctx.has_input(3) ? compute_view<C, T>(ctx.input(3), bb) : nullptr;
  const C* h0 = ctx.has_input(5) ? compute_view<C, T>(ctx.input(5), h0b) : nullptr;
  const C* c0 = lstm && ctx.has_input(6) ? compute_view<C, T>(ctx.input(6), c0b) : nullptr;
  const C* peep = lstm && ctx.has_input(7) ? compute_view<C, T>(ctx.input(7), pb) : nullptr;

  auto out = [&](size_t i) -> T* {
    if (!ctx.node().has_output(i)) return nullptr;
    Tensor& t = ctx.output(i);
    std::memset(t.raw_data(), 0, t.nbytes());  // zero is all-bits-zero for every float type
    return t.data<T>();
  };
  T* y = out(0);
  T* yh = out(1);
  T* yc = lstm ? out(2) : nullptr;

  const int64_t H = n.hidden;
  const bool gru_lbr = a.kind == RnnKind::kGru && a.linear_before_reset;
  StepRows<C> step;
  step.x.resize(static_cast<size_t>(n.batch));
  std::vector<int64_t> t_of(static_cast<size_t>(n.batch));
  std::vector<C> proj;
  for (int d = 0; d < a.num_directions; ++d) {
    DirState<C> s;
    s.a = &a, s.n = &n, s.d = d;
    s.r = r + d * GH * H;
    s.p = peep ? peep + d * 3 * H : nullptr;
    // Input projection of every step: proj = X W^T + Wb + Rb (GRU linear_before_reset keeps Rbh apart).
    proj.assign(static_cast<size_t>(rows * GH), C(0));
    if (bias) {
      const C* wbias = bias + d * 2 * GH;
      const C* rbias = wbias + GH;
      std::vector<C> row(static_cast<size_t>(GH));
      for (int64_t j = 0; j < GH; ++j)
        row[static_cast<size_t>(j)] = wbias[j] + (gru_lbr && j >= 2 * H ? C(0) : rbias[j]);
      for (int64_t i = 0; i < rows; ++i) std::copy(row.begin(), row.end(), proj.begin() + i * GH);
      if (gru_lbr) s.rbh.assign(rbias + 2 * H, rbias + 3 * H);
    }
    if (gru_lbr && s.rbh.empty()) s.rbh.assign(static_cast<size_t>(H), C(0));
    gemm_nt(rows, GH, n.input, x, n.input, w + d * GH * n.input, n.input, proj.data(), GH);

    s.h.assign(static_cast<size_t>(n.batch * H), C(0));
    s.c.assign(static_cast<size_t>(n.batch * H), C(0));
    for (int64_t b = 0; b < n.batch; ++b) {
      const auto off = static_cast<size_t>(b * H);
      if (h0) std::copy(h0 + n.state_offset(d, b), h0 + n.state_offset(d, b) + H, s.h.begin() + off);
      if (c0) std::copy(c0 + n.state_offset(d, b), c0 + n.state_offset(d, b) + H, s.c.begin() + off);
    }
    s.rec.resize(static_cast<size_t>(n.batch * GH));
    s.tmp.resize(static_cast<size_t>(n.batch * H));

    for (int64_t k = 0; k < n.seq; ++k) {
      step.active.clear();
      for (int64_t b = 0; b < n.batch; ++b) {
        const int64_t len = lens[static_cast<size_t>(b)];
        if (k >= len) continue;
        const int64_t t = a.reversed(d) ? len - 1 - k : k;
        step.active.push_back(b);
        t_of[static_cast<size_t>(b)] = t;
        step.x[static_cast<size_t>(b)] = &proj[static_cast<size_t>(n.x_row(t, b) * GH)];
      }
      if (step.active.empty()) break;  // no entry is longer than k
      if (a.kind == RnnKind::kRnn) rnn_step(s, step);
      else if (a.kind == RnnKind::kGru) gru_step(s, step);
      else lstm_step(s, step);
      if (y) {
        for (int64_t b : step.active) {
          T* dst = y + n.y_offset(t_of[static_cast<size_t>(b)], d, b);
          const C* src = &s.h[static_cast<size_t>(b * H)];
          for (int64_t j = 0; j < H; ++j) dst[j] = store<T>(src[j]);
        }
      }
    }
    for (int64_t b = 0; b < n.batch; ++b) {
      for (int64_t j = 0; j < H; ++j) {
        const auto i = static_cast<size_t>(b * H + j);
        if (yh) yh[n.state_offset(d, b) + j] = store<T>(s.h[i]);
        if (yc) yc[n.state_offset(d, b) + j] = store<T>(s.c[i]);
      }
    }
  }
  return Status::Ok();
}

Status recurrent_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(RnnAttrs a, parse_rnn_attrs(ctx.node()));
  const DType dt = ctx.input(0).dtype();
  switch (dt) {
    case DType::kFloat32: return run<float>(ctx, a);
    case DType::kFloat64: return run<double>(ctx, a);
    case DType::kFloat16: return run<Half>(ctx, a);
    default: return ctx.unsupported_dtype(dt, 0);
  }
}

}  // namespace
}  // namespace kiln::cpu::rnn

KILN_REGISTER_CPU_KERNEL("RNN", kiln::cpu::rnn::recurrent_kernel);
KILN_REGISTER_CPU_KERNEL("GRU", kiln::cpu::rnn::recurrent_kernel);
KILN_REGISTER_CPU_KERNEL("LSTM", kiln::cpu::rnn::recurrent_kernel);
