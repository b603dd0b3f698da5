#!/usr/bin/env python3
"""Per-layer GPU profile of the benchmark models (GPU machine): where does kiln's time go?

  python3 bench/profile_layers.py --kiln .devbin/kiln --out $OUT --runs resnet50:64:fp16,vit_b16:64:fp16
  python3 bench/profile_layers.py --kiln .devbin/kiln --runs resnet50:256:int8 --work /tmp/kiln_gpu_check/resnet50 --reuse

int8/fp8 plans calibrate on random inputs as gpu_check.py does; --reuse profiles WORK/<model>_b<batch>_<prec>.kplan
when it exists (gpu_check.py's plans: --work /tmp/kiln_gpu_check/<model>) instead of building.

For each model:batch:precision, exports the model (opset 17, random weights), builds a plan and runs
`kiln bench --export-profile`; prints the time per op type and the slowest layers.
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402
from gpu_check import PRECISION_FLAGS, write_calibration_set  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--work", default="/tmp/kiln_profile")
    ap.add_argument("--runs", required=True, help="model:batch:prec,... (prec fp32|fp16|int8|fp8)")
    ap.add_argument("--reuse", action="store_true", help="profile an existing plan in --work instead of building")
    ap.add_argument("--top", type=int, default=12)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    exported = {}
    for run in args.runs.split(","):
        name, batch, prec = run.split(":")
        batch = int(batch)
        plan = os.path.join(args.work, f"{name}_b{batch}_{prec}.kplan")
        if args.reuse and os.path.exists(plan):
            profile(args, run, name, batch, prec, plan, 0.0)
            continue
        if name not in exported:
            model, input_names, make_inputs = models.make(name)
            model = models.randomize_norm_stats(model).eval()
            path = os.path.join(args.work, name + ".onnx")
            torch.onnx.export(model, tuple(make_inputs(2)), path, input_names=input_names, output_names=["output"],
                              dynamic_axes={n: {0: "batch"} for n in input_names + ["output"]}, opset_version=17,
                              dynamo=False)
            exported[name] = (path, input_names, make_inputs)
        path, input_names, make_inputs = exported[name]
        shapes = ",".join(f"{n}:{'x'.join(map(str, x.shape))}" for n, x in zip(input_names, make_inputs(batch)))
        flags = list(PRECISION_FLAGS[prec]) if prec != "fp32" else []
        if prec in ("int8", "fp8"):
            flags += ["--calib-data", write_calibration_set(make_inputs, input_names, args.work, batch)]
        t = time.time()
        p = subprocess.run([args.kiln, "build", path, "-o", plan, "--backend", "cuda", "--shapes", shapes] + flags,
                           capture_output=True, text=True)
        if p.returncode:
            print(f"[{run}] build failed: {(p.stdout + p.stderr)[-2000:]}", flush=True)
            continue
        build_s = time.time() - t
        profile(args, run, name, batch, prec, plan, build_s)


def profile(args, run, name, batch, prec, plan, build_s):
    """Runs `kiln bench` on the plan with a layer profile and prints where the time goes."""
    prof = os.path.join(args.out, f"profile_{name}_b{batch}_{prec}.json")
    times = os.path.join(args.out, f"times_{name}_b{batch}_{prec}.json")
    p = subprocess.run([args.kiln, "bench", plan, "--cuda-graph", "--no-data-transfers", "--iterations", "50",
                        "--duration", "1", "--export-profile", prof, "--export-times", times],
                       capture_output=True, text=True)
    if p.returncode:
        print(f"[{run}] bench failed: {(p.stdout + p.stderr)[-2000:]}", flush=True)
        return
    with open(times) as f:
        median = json.load(f)["summary"]["latency_ms"]["median"]
    with open(prof) as f:
        layers = json.load(f)["layers"]
    total = sum(l["mean_ms"] for l in layers)
    by_op = collections.defaultdict(lambda: [0.0, 0])
    for l in layers:
        by_op[l["op"]][0] += l["mean_ms"]
        by_op[l["op"]][1] += 1
    print(f"\n=== {run}: graph median {median:.3f} ms, sum of layers {total:.3f} ms, build {build_s:.1f} s", flush=True)
    for op, (ms, n) in sorted(by_op.items(), key=lambda kv: -kv[1][0])[:args.top]:
        print(f"  {op:24s} {n:4d} layers {ms:8.3f} ms {100 * ms / max(total, 1e-9):5.1f}%")
    print("  slowest layers:")
    for l in sorted(layers, key=lambda l: -l["mean_ms"])[:args.top]:
        print(f"    {l['mean_ms']:7.3f} ms {l['op']:14s} {l.get('precision', ''):5s} {l['name'][:40]:40s}"
              f" {str(l.get('tactic', ''))[:30]} {l.get('inputs', '')}")


if __name__ == "__main__":
    main()
