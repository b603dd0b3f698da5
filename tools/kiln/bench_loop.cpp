#include "bench_loop.hpp"

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <mutex>
#include <thread>

#include "util/error.hpp"

namespace kiln::cli {

namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

class StreamWorker {
 public:
  StreamWorker(int stream, ExecutionContext& ctx, const std::map<std::string, Tensor>& inputs,
               const BenchSettings& s, Clock::time_point origin)
      : stream_(stream), ctx_(ctx), inputs_(inputs), s_(s), origin_(origin) {}

  // One inference; with `record`, its times are appended.
  Status once(bool record) {
    auto t0 = Clock::now();
    if (s_.data_transfers) KILN_RETURN_IF_ERROR(ctx_.set_inputs(inputs_));
    auto e0 = Clock::now();
    KILN_RETURN_IF_ERROR(ctx_.enqueue());
    auto e1 = Clock::now();
    if (s_.data_transfers) {
      KILN_ASSIGN_OR_RETURN(auto outs, ctx_.outputs());
      (void)outs;
    } else {
      KILN_RETURN_IF_ERROR(ctx_.synchronize());
    }
    auto t1 = Clock::now();
    if (!record) return Status::Ok();
    RunTimings rt = ctx_.last_timings();
    IterationTime it;
    it.stream = stream_;
    it.iteration = static_cast<int64_t>(times.size());
    it.start_ms = ms_between(origin_, t0);
    it.latency_ms = ms_between(t0, t1);
    it.enqueue_ms = ms_between(e0, e1);
    it.compute_ms = rt.compute_ms;
    if (s_.data_transfers) {
      it.h2d_ms = rt.h2d_ms;
      it.d2h_ms = rt.d2h_ms;
    }
    times.push_back(it);
    return Status::Ok();
  }

  std::vector<IterationTime> times;
  int64_t warmup_queries = 0;

 private:
  int stream_;
  ExecutionContext& ctx_;
  const std::map<std::string, Tensor>& inputs_;
  const BenchSettings& s_;
  Clock::time_point origin_;
};

}  // namespace

Expected<BenchResult> run_bench(const Engine& engine, const std::map<std::string, Tensor>& inputs,
                                const BenchSettings& s) {
  if (s.streams < 1) return invalid_argument("--streams must be at least 1");
  // Contexts are made up front: their memory is part of what the bench measures, and a failure
  // (out of device memory) is reported before any thread starts.
  std::vector<std::unique_ptr<ExecutionContext>> contexts;
  for (int i = 0; i < s.streams; ++i) {
    auto ctx = engine.create_context(ContextOptions{.cuda_graph = s.cuda_graph});
    if (!ctx.ok()) return Status(ctx.status()).add_context(fmt::format("context {}", i));
    // Without per-inference transfers the inputs are copied in once.
    if (!s.data_transfers) {
      KILN_RETURN_IF_ERROR((*ctx)->set_inputs(inputs));
      KILN_RETURN_IF_ERROR((*ctx)->synchronize());
    }
    contexts.push_back(std::move(ctx).value());
  }

  const auto origin = Clock::now();
  std::vector<StreamWorker> workers;
  workers.reserve(contexts.size());
  for (int i = 0; i < s.streams; ++i) workers.emplace_back(i, *contexts[i], inputs, s, origin);

  std::mutex error_mu;
  Status first_error;
  std::atomic<bool> stop{false};
  auto fail = [&](Status st, int stream) {
    std::lock_guard<std::mutex> lock(error_mu);
    if (first_error.ok()) first_error = st.add_context(fmt::format("stream {}", stream));
    stop = true;
  };
  // Timing starts for every stream at once, after every stream has warmed up.
  Clock::time_point timed_start;
  std::barrier warm(s.streams, [&]() noexcept { timed_start = Clock::now(); });

  auto body = [&](int i) {
    StreamWorker& w = workers[static_cast<size_t>(i)];
    try {
      do {
        if (Status st = w.once(false); !st.ok()) {
          fail(st, i);
          warm.arrive_and_drop();
          return;
        }
        ++w.warmup_queries;
      } while (!stop && ms_between(origin, Clock::now()) < s.warmup_ms);
      warm.arrive_and_wait();
      while (!stop) {
        int64_t done = static_cast<int64_t>(w.times.size());
        if (done >= s.iterations && ms_between(timed_start, Clock::now()) >= s.duration_s * 1e3) break;
        if (Status st = w.once(true); !st.ok()) {
          fail(st, i);
          return;
        }
      }
    } catch (const std::exception& e) {  // never let an exception escape a thread (std::terminate)
      fail(internal_error("{}", e.what()), i);
    }
  };
  if (s.streams == 1) {
    body(0);
  } else {
    std::vector<std::thread> threads;
    for (int i = 0; i < s.streams; ++i) threads.emplace_back(body, i);
    for (auto& t : threads) t.join();
  }
  if (!first_error.ok()) return first_error;

  BenchResult r;
  double first = 0, last = 0;
  for (StreamWorker& w : workers) {
    r.warmup_queries += w.warmup_queries;
    for (const IterationTime& it : w.times) {
      if (r.times.empty() || it.start_ms < first) first = it.start_ms;
      last = std::max(last, it.start_ms + it.latency_ms);
      r.times.push_back(it);
    }
  }
  std::sort(r.times.begin(), r.times.end(),
            [](const IterationTime& a, const IterationTime& b) { return a.start_ms < b.start_ms; });
  r.walltime_ms = r.times.empty() ? 0 : last - first;
  return r;
}

Expected<LayerProfile> profile_layers(const Engine& engine, const std::map<std::string, Tensor>& inputs,
                                      int64_t iterations) {
  KILN_ASSIGN_OR_RETURN(auto ctx, engine.create_context(ContextOptions{.layer_timing = true}));
  KILN_RETURN_IF_ERROR(ctx->set_inputs(inputs));
  LayerProfile p;
  p.times.resize(engine.plan().graph->nodes().size());
  // One untimed inference first: the first run pays for lazy initialization in the libraries.
  for (int64_t i = -1; i < iterations; ++i) {
    KILN_RETURN_IF_ERROR(ctx->enqueue());
    KILN_RETURN_IF_ERROR(ctx->synchronize());
    if (i < 0) continue;
    KILN_ASSIGN_OR_RETURN(std::vector<double> ms, ctx->layer_times_ms());
    if (ms.size() != p.times.size())
      return internal_error("the backend timed {} layers of {}", ms.size(), p.times.size());
    for (size_t l = 0; l < ms.size(); ++l) p.times[l].push_back(ms[l]);
  }
  p.iterations = iterations;
  return p;
}

}  // namespace kiln::cli
