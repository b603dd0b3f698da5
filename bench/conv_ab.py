#!/usr/bin/env python3
"""A/B timing of kiln's convolution paths on the GPU machine (batch 1 FP16), within a time budget.

  python3 bench/conv_ab.py --kiln .devbin/kiln --budget 45 --runs unet:default,unet:legacy,resnet50:default

Variants: default (graph-API and legacy tactics, nhwc-layout's rules), legacy (KILN_CONV_GRAPH_CONFIGS=0:
legacy cuDNN API only), nchw (--disable-pass nhwc-layout). Prints build seconds, `kiln bench` median
(--cuda-graph --no-data-transfers) and how many layers chose graph-API tactics.
"""
import argparse
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
sys.path.insert(0, os.path.join(os.getcwd(), "bench"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--budget", type=float, default=45)
    ap.add_argument("--runs", required=True)
    ap.add_argument("--work", default="/tmp/kiln_conv_ab")
    args = ap.parse_args()
    t0 = time.time()
    import torch
    import models
    os.makedirs(args.work, exist_ok=True)
    exported = {}
    cache = os.path.join(args.work, "timing.cache")
    for run in args.runs.split(","):
        name, variant = run.split(":")
        left = args.budget - (time.time() - t0)
        if left < 8:
            print(f"[{run}] skipped: budget", flush=True)
            continue
        if name not in exported:
            model, input_names, make_inputs = models.make(name)
            model = models.randomize_norm_stats(model).eval()
            path = os.path.join(args.work, name + ".onnx")
            torch.onnx.export(model, tuple(make_inputs(1)), path, input_names=input_names, output_names=["output"],
                              opset_version=17, dynamo=False)
            exported[name] = (path, input_names, make_inputs)
        path, input_names, make_inputs = exported[name]
        shapes = ",".join(f"{n}:{'x'.join(map(str, x.shape))}" for n, x in zip(input_names, make_inputs(1)))
        plan = os.path.join(args.work, f"{name}_{variant}.kplan")
        env = dict(os.environ)
        flags = ["--fp16", "-v", "--timing-cache", cache]
        if variant == "legacy":
            env["KILN_CONV_GRAPH_CONFIGS"] = "0"
        if variant == "nchw":
            flags += ["--disable-pass", "nhwc-layout"]
        t = time.time()
        left = args.budget - (time.time() - t0)
        try:
            p = subprocess.run([args.kiln, "build", path, "-o", plan, "--backend", "cuda", "--shapes", shapes] + flags,
                               capture_output=True, text=True, env=env, timeout=max(left - 3, 5))
        except subprocess.TimeoutExpired:
            print(f"[{run}] build timed out after {time.time() - t:.1f} s", flush=True)
            continue
        build_s = time.time() - t
        if p.returncode:
            print(f"[{run}] build failed: {(p.stdout + p.stderr)[-1500:]}", flush=True)
            continue
        log = p.stdout + p.stderr
        graph = len(re.findall(r"graphp?_e\d+", log))
        legacy = len(re.findall(r"(?:cudnn|fused)_algo\d+", log))
        notes = [l for l in log.splitlines() if l.startswith("note:")][:3]
        left = args.budget - (time.time() - t0)
        try:
            p = subprocess.run([args.kiln, "bench", plan, "--cuda-graph", "--no-data-transfers", "--iterations", "50",
                                "--duration", "1"], capture_output=True, text=True, timeout=max(left - 1, 3))
        except subprocess.TimeoutExpired:
            print(f"[{run}] built in {build_s:.1f} s; bench timed out", flush=True)
            continue
        out = p.stdout + p.stderr
        m = re.search(r"^\s*latency\s+[0-9.]+\s+[0-9.]+\s+([0-9.]+)", out, re.M)
        print(f"[{run}] build {build_s:.1f} s, median {m.group(1) if m else '?'} ms, layers with graph tactics {graph},"
              f" legacy {legacy}", flush=True)
        if not m:
            print(out[-800:], flush=True)
        for l in notes:
            print("   ", l[:300], flush=True)
        if variant == "default":
            for l in log.splitlines():
                if "graph" in l and ("Conv" in l or "NHWC" in l):
                    print("    ", l.strip()[:160], flush=True)
                    break


if __name__ == "__main__":
    main()
