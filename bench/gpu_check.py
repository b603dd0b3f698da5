#!/usr/bin/env python3
"""One call on the GPU machine: GPU kernel tests, model checks against PyTorch, benchmark.

  python3 bench/gpu_check.py --kiln .devbin/kiln --gpu-tests .devbin/kiln_gpu_tests --out $OUT

For each benchmark model: export to ONNX (opset 17, random weights), build kiln FP32 (TF32 off)
and FP16 plans per batch size, check outputs against PyTorch FP32 (TF32 off), and time kiln
(`kiln bench --cuda-graph`) next to PyTorch eager FP32, eager FP16 channels_last and, with
--compile, torch.compile(mode="max-autotune"). Prints a table last; writes results.json.
"""
import argparse
import copy
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402

BATCHES = {"resnet50": (1, 64), "mobilenetv3": (1, 64), "vit_b16": (1, 64), "unet": (1, 32), "bert_base": (1, 64)}


def log(*a):
    print(*a, flush=True)


def sh(cmd, timeout=600):
    t = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr, time.time() - t


def time_torch(fn, inputs, iters=50, warmup=10, warmup_s=1.0):
    # At least `warmup` runs and `warmup_s` seconds: clocks ramp up and cuBLAS/cuDNN pick their kernels
    # (eager BERT batch 64 varied 2x between runs with 10 warm-ups alone).
    t = time.time()
    n = 0
    while n < warmup or time.time() - t < warmup_s:
        fn(*inputs)
        n += 1
        if n % 10 == 0:
            torch.cuda.synchronize()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn(*inputs)
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e))
    return float(np.median(times))


def rel_l2(a, b):
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def cosine(a, b):
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-30))


def count_flops(model, inputs):
    """FLOPs of one forward pass (PyTorch's counter: 2 per multiply-add of matmuls/convs)."""
    try:
        from torch.utils.flop_counter import FlopCounterMode
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(*inputs)
        return int(counter.get_total_flops())
    except Exception as e:  # the counter is a convenience; its failure must not stop the check
        log(f"  (FLOP count failed: {type(e).__name__}: {e})")
        return None


def parse_bytes(text):
    """'device memory 123.4 MiB: ...' -> bytes."""
    m = re.search(r"device memory ([0-9.]+) (B|KiB|MiB|GiB)", text)
    if not m:
        return None
    return float(m.group(1)) * {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[m.group(2)]


def wants(spec, name, batch):
    """--compile / --precisions style lists: 'all', or model:batch items."""
    if not spec:
        return False
    if spec == "all":
        return True
    return f"{name}:{batch}" in spec.split(",") or name in spec.split(",")


def kiln_bench_ms(args, plan, workdir):
    times = os.path.join(workdir, "times.json")
    # GPU compute only, like the PyTorch timings next to it (inputs already on the device).
    rc, out, _ = sh([args.kiln, "bench", plan, "--cuda-graph", "--no-data-transfers", "--iterations", str(args.iters),
                     "--warmup", "200", "--export-times", times])
    if rc != 0:
        return None, out
    with open(times) as f:
        summary = json.load(f)["summary"]
    return float(summary["latency_ms"]["median"]), out


def write_calibration_set(make_inputs, input_names, work, batch):
    """Random calibration batches for --int8/--fp8 plans: DIR/*.npy (one input) or DIR/<input>/*.npy.
    The plan's batch is static, so calibration batches have its size (at least 8 samples each)."""
    d = os.path.join(work, f"calib_b{batch}")
    if os.path.isdir(d):
        return d
    per_batch = max(8, batch)
    batches = max(1, min(4, 256 // per_batch))
    for i in range(batches):
        for n, x in zip(input_names, make_inputs(per_batch)):
            sub = d if len(input_names) == 1 else os.path.join(d, n)
            os.makedirs(sub, exist_ok=True)
            np.save(os.path.join(sub, f"batch_{i:03d}.npy"), x.numpy())
    return d


PRECISION_FLAGS = {"fp32": ["--no-tf32"], "fp16": ["--fp16"], "int8": ["--fp16", "--int8"], "fp8": ["--fp16", "--fp8"]}


def check_ok(prec, rel, cos):
    """FP32: rel L2 <= 1e-4; FP16: rel L2 <= 2e-2 and cosine >= 0.999; INT8/FP8 (random weights): cosine >= 0.99."""
    if prec == "fp32":
        return rel <= 1e-4
    if prec == "fp16":
        return rel <= 2e-2 and cos >= 0.999
    return cos >= 0.99


def check_model(args, name, results):
    model, input_names, make_inputs = models.make(name)
    flops_per_item = None
    model = models.randomize_norm_stats(model).eval()
    work = os.path.join(args.work, name)
    os.makedirs(work, exist_ok=True)
    onnx_path = os.path.join(work, name + ".onnx")
    example = make_inputs(2)
    t = time.time()
    torch.onnx.export(model, tuple(example), onnx_path, input_names=input_names, output_names=["output"],
                      dynamic_axes={n: {0: "batch"} for n in input_names + ["output"]}, opset_version=17,
                      dynamo=False)
    log(f"[{name}] exported in {time.time() - t:.1f} s")
    model = model.cuda()
    batches = BATCHES[name]
    for item in (args.batches or "").split(","):
        if item.startswith(name + ":"):
            batches = tuple(int(b) for b in item.split(":")[1].split("/"))
    for batch in batches:
        inputs = [x.cuda() for x in make_inputs(batch)]
        feeds = []
        for n, x in zip(input_names, inputs):
            p = os.path.join(work, f"{n}_b{batch}.npy")
            np.save(p, x.cpu().numpy())
            feeds += ["--input", f"{n}={p}"]
        shapes = ",".join(f"{n}:{'x'.join(map(str, x.shape))}" for n, x in zip(input_names, inputs))
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        with torch.no_grad():
            ref = model(*inputs).float().cpu().numpy()
            torch.cuda.reset_peak_memory_stats()
            eager32 = time_torch(model, inputs)
            mem32 = torch.cuda.max_memory_allocated()
            m16 = copy.deepcopy(model).half().to(memory_format=torch.channels_last)  # keep fp32 weights intact
            in16 = [x.half().to(memory_format=torch.channels_last) if x.is_floating_point() and x.dim() == 4
                    else (x.half() if x.is_floating_point() else x) for x in inputs]
            torch.cuda.reset_peak_memory_stats()
            eager16 = time_torch(m16, in16)
            mem16 = torch.cuda.max_memory_allocated()
            flops = count_flops(m16, in16) if batch == batches[0] else None
            compiled16, compile_s = None, None
            if wants(args.compile, name, batch):
                t = time.time()
                c = torch.compile(m16, mode="max-autotune")
                c(*in16)
                compile_s = time.time() - t
                torch.cuda.reset_peak_memory_stats()
                compiled16 = time_torch(c, in16, warmup=3)
                log(f"[{name} b{batch}] torch.compile max-autotune: compiled in {compile_s:.0f} s, {compiled16:.3f} ms")
                del c
            del m16
        if flops is not None:
            flops_per_item = flops / batch
        for prec in args.precisions.split(","):
            plan = os.path.join(work, f"{name}_b{batch}_{prec}.kplan")
            flags = list(PRECISION_FLAGS[prec])
            if prec in ("int8", "fp8"):
                flags += ["--calib-data", write_calibration_set(make_inputs, input_names, work, batch), "--calib-algo",
                          args.calib_algo, "--calib-cache", os.path.join(work, f"calib_{prec}.cache")]
            rc, out, build_s = sh([args.kiln, "build", onnx_path, "-o", plan, "--backend", "cuda", "--shapes", shapes,
                                   "--timing-cache", os.path.join(args.work, "timing.cache")] + flags)
            cached_s = None
            if rc == 0 and wants(args.rebuild_cached, name, batch) and prec in ("fp16", "fp32"):
                # The same build again, now that the timing cache holds every layer's tactic timings.
                rc, out, cached_s = sh([args.kiln, "build", onnx_path, "-o", plan, "--backend", "cuda", "--shapes",
                                        shapes, "--timing-cache", os.path.join(args.work, "timing.cache")] + flags)
                log(f"[{name} b{batch} {prec}] build {build_s:.1f} s; rebuilt with the timing cache in {cached_s:.1f} s")
            row = {"model": name, "batch": batch, "precision": prec, "build_s": round(build_s, 2),
                   "build_cached_s": round(cached_s, 2) if cached_s is not None else None,
                   "eager_fp32_ms": eager32, "eager_fp16_ms": eager16, "compile_fp16_ms": compiled16,
                   "compile_s": compile_s, "torch_mem_fp32": mem32, "torch_mem_fp16": mem16,
                   "flops": flops_per_item * batch if flops_per_item else None}
            results.append(row)
            if rc != 0:
                row["error"] = out.strip().splitlines()[-1] if out.strip() else f"build exit {rc}"
                log(f"[{name} b{batch} {prec}] build failed: {row['error']}")
                continue
            outdir = os.path.join(work, f"out_b{batch}_{prec}")
            rc, out, _ = sh([args.kiln, "run", plan, "--output-dir", outdir] + feeds)
            if rc != 0:
                row["error"] = out.strip().splitlines()[-1]
                log(f"[{name} b{batch} {prec}] run failed: {row['error']}")
                continue
            got = np.load(os.path.join(outdir, "output_0.npy"))
            row["rel_l2"], row["cosine"] = rel_l2(got, ref), cosine(got, ref)
            row["ok"] = check_ok(prec, row["rel_l2"], row["cosine"])
            ms, out = kiln_bench_ms(args, plan, work)
            row["kiln_ms"] = ms
            row["kiln_mem"] = parse_bytes(out)
            log(f"[{name} b{batch} {prec}] build {build_s:.1f} s, rel L2 {row['rel_l2']:.2e}, cos {row['cosine']:.6f},"
                f" kiln {ms} ms, eager32 {eager32:.3f} ms, eager16 {eager16:.3f} ms")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--gpu-tests")
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--work", default="/tmp/kiln_gpu_check")
    ap.add_argument("--models", default=",".join(BATCHES))
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--compile", default="",
                    help="also time torch.compile(mode='max-autotune') FP16 for these: 'all' or model[:batch],... (slow)")
    ap.add_argument("--rebuild-cached", default="",
                    help="model[:batch],...: build these fp16/fp32 plans a second time with the run's timing cache"
                         " and report that build time too")
    ap.add_argument("--precisions", default="fp32,fp16", help="kiln plans to build and check: fp32,fp16,int8,fp8")
    ap.add_argument("--batches", default="", help="batch sizes per model instead of the defaults: resnet50:1/64/256,...")
    ap.add_argument("--calib-algo", default="minmax", help="calibrator for int8/fp8 plans (random calibration inputs)")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="the GPU's dense FP16 tensor peak (H100/H200 SXM: 989)")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    summary = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}
    if args.gpu_tests:
        rc, out, secs = sh([args.gpu_tests, f"--gtest_output=json:{os.path.join(args.out, 'gpu_tests.json')}"], 900)
        tail = [l for l in out.splitlines() if l.startswith("[  PASSED") or l.startswith("[  FAILED") or "FAILED  ]" in l]
        summary["gpu_tests"] = {"rc": rc, "lines": tail}
        log(f"GPU kernel tests: exit {rc} in {secs:.0f} s")
        for l in tail:
            log("  " + l)
    results = []
    for name in args.models.split(","):
        try:
            check_model(args, name, results)
        except Exception as e:  # one model's failure must not hide the others
            log(f"[{name}] failed: {type(e).__name__}: {e}")
            results.append({"model": name, "error": f"{type(e).__name__}: {e}"})
        torch.cuda.empty_cache()
        summary["results"] = results
        with open(os.path.join(args.out, "results.json"), "w") as f:  # after each model: a cut-off run keeps its rows
            json.dump(summary, f, indent=1)
    log("")
    log(f"{summary['gpu']}, torch {summary['torch']}")
    log(f"{'model':<12}{'b':>4} {'prec':<5}{'check':>6}{'relL2':>9}{'kiln ms':>9}{'eager':>8}{'compile':>8}"
        f"{'k/eag':>6}{'k/cmp':>6}{'kiln it/s':>10}{'thr/eag':>8}{'TFLOP/s':>8}{'kiln MiB':>9}{'torch MiB':>10}{'build s':>8}")
    for r in results:
        if "batch" not in r:
            log(f"{r['model']:<12} ERROR {r.get('error', '')[:80]}")
            continue
        k = r.get("kiln_ms")
        fp16 = r["precision"] != "fp32"  # int8/fp8 plans are compared with eager FP16
        eager = r["eager_fp16_ms"] if fp16 else r["eager_fp32_ms"]
        comp = r.get("compile_fp16_ms") if fp16 else None
        chk = "ok" if r.get("ok") else ("ERR" if "error" in r else "FAIL")
        tmem = r["torch_mem_fp16"] if fp16 else r["torch_mem_fp32"]
        tflops = r["flops"] / (k / 1e3) / 1e12 if k and r.get("flops") else None
        items = f"{r['batch'] * 1e3 / k:.0f}" if k else "-"
        kmem = f"{r['kiln_mem'] / 2**20:.0f}" if r.get("kiln_mem") else "-"
        cols = [f"{r['model']:<12}{r['batch']:>4} {r['precision']:<5}{chk:>6}{r.get('rel_l2', float('nan')):>9.1e}",
                f"{(f'{k:.3f}' if k else '-'):>9}{eager:>8.3f}{(f'{comp:.3f}' if comp else '-'):>8}",
                f"{(f'{k / eager:.2f}' if k else '-'):>6}{(f'{k / comp:.2f}' if k and comp else '-'):>6}",
                f"{items:>10}",
                f"{(f'{eager / k:.2f}' if k else '-'):>8}{(f'{tflops:.0f}' if tflops else '-'):>8}",
                f"{kmem:>9}",
                f"{tmem / 2**20:>10.0f}{r['build_s']:>8.1f}"]
        log("".join(cols))
    for r in results:
        if r.get("build_cached_s") is not None:
            log(f"{r['model']} b{r['batch']} {r['precision']}: plan built in {r['build_s']:.1f} s with an empty timing"
                f" cache, {r['build_cached_s']:.1f} s with the cache filled")
        if r.get("compile_s") is not None and r["precision"] == "fp16":
            log(f"{r['model']} b{r['batch']}: torch.compile max-autotune compiled in {r['compile_s']:.0f} s")
    for r in results:  # issue "Low precision": INT8/FP8 throughput against kiln FP16 at the same batch
        if r.get("precision") in ("int8", "fp8") and r.get("kiln_ms"):
            k16 = [x.get("kiln_ms") for x in results if x.get("model") == r["model"] and x.get("batch") == r["batch"]
                   and x.get("precision") == "fp16" and x.get("kiln_ms")]
            if k16:
                log(f"{r['model']} b{r['batch']} {r['precision']}: {k16[0] / r['kiln_ms']:.2f}x kiln FP16 throughput"
                    f" ({r['kiln_ms']:.3f} vs {k16[0]:.3f} ms), cosine to FP32 {r.get('cosine', float('nan')):.4f}")
    log(f"(k/eag, k/cmp: kiln latency over PyTorch eager / torch.compile at the same precision; thr/eag: kiln"
        f" throughput over eager; TFLOP/s: kiln, against a dense FP16 peak of {args.peak_tflops:.0f})")


if __name__ == "__main__":
    main()
