"""`kiln build` time with --calib-backend cuda against cpu on one benchmark model (GPU machine).

  python3 bench/calib_timing.py --kiln .devbin/kiln --model bert_base --batch 64 --flags=--fp16,--fp8 \
      --budget 120

Exports the model (bench/models.py, random weights), writes gpu_check's calibration set (4 batches
at batch 64), then builds with each --calib-backend in turn (cuda first), printing every progress
line with its time since the build started. A build still running when the budget is spent is
stopped; its last calibration line then tells how far it got.
"""
import argparse
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpu_check  # noqa: E402
import models  # noqa: E402
import torch  # noqa: E402


def timed_build(cmd, deadline):
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killer = threading.Timer(max(1.0, deadline - t0), p.kill)  # stops it even while no line arrives
    killer.start()
    stamps = []
    for line in p.stdout:
        line = line.rstrip()
        stamps.append((time.time() - t0, line))
        if "calibration" in line or "[" in line[:8] or "error" in line or "warning" in line:
            print(f"  {time.time() - t0:7.2f} s  {line}", flush=True)
    p.wait()
    killer.cancel()
    if p.returncode < 0:
        print(f"  stopped at {time.time() - t0:.1f} s (budget spent)", flush=True)
    return (time.time() - t0 if p.returncode == 0 else None), stamps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--model", default="bert_base")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--flags", default="--fp16,--fp8")
    ap.add_argument("--work", default="/tmp/kiln_calib_timing")
    ap.add_argument("--budget", type=float, default=120, help="seconds for everything, export included")
    ap.add_argument("--backends", default="cuda,cpu")
    a = ap.parse_args()
    start = time.time()
    os.makedirs(a.work, exist_ok=True)
    model, names, make_inputs = models.make(a.model)
    model = models.randomize_norm_stats(model).eval()
    onnx_path = os.path.join(a.work, a.model + ".onnx")
    torch.onnx.export(model, tuple(make_inputs(2)), onnx_path, input_names=names, output_names=["output"],
                      dynamic_axes={n: {0: "batch"} for n in names + ["output"]}, opset_version=17, dynamo=False)
    calib = gpu_check.write_calibration_set(make_inputs, names, a.work, a.batch)
    x = make_inputs(a.batch)
    shapes = ",".join(f"{n}:{'x'.join(map(str, t.shape))}" for n, t in zip(names, x))
    print(f"[{a.model} b{a.batch}] exported + calibration set in {time.time() - start:.1f} s", flush=True)
    results = {}
    for backend in a.backends.split(","):
        plan = os.path.join(a.work, f"{backend}.kplan")
        cmd = [a.kiln, "build", onnx_path, "-o", plan, "--backend", "cuda", "--shapes", shapes,
               *a.flags.split(","), "--calib-data", calib, "--calib-algo", "entropy", "--calib-backend", backend,
               "--timing-cache", os.path.join(a.work, f"timing_{backend}.cache")]
        print(f"[{a.model} b{a.batch}] --calib-backend {backend}:", flush=True)
        secs, stamps = timed_build(cmd, start + a.budget)
        results[backend] = secs
        calib_lines = [(t, l) for t, l in stamps if l.startswith("calibration: batch")]
        if calib_lines:
            first, last = calib_lines[0][0], calib_lines[-1][0]
            print(f"  calibration lines {len(calib_lines)}: first at {first:.2f} s, last at {last:.2f} s", flush=True)
        if secs is None and stamps and time.time() < start + a.budget:
            print("  build failed:\n" + "\n".join(l for _, l in stamps[-15:]), flush=True)
    print("build seconds: " + ", ".join(f"{b}: {'-' if s is None else f'{s:.1f}'}" for b, s in results.items()),
          flush=True)


if __name__ == "__main__":
    main()
