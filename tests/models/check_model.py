#!/usr/bin/python3
"""Runs one model dir (see make_models.py) with `kiln run` and compares the outputs with the expected ones.

    check_model.py --kiln build/kiln --model-dir tests/models/data/resnet_small --work-dir /tmp/x

Passes when every output has the expected shape and a relative L2 error ||got - expected|| / ||expected||
of at most --tolerance (1e-4); integer and bool outputs must match exactly. Prints one line per output
with the relative L2 and max abs errors, and the time `kiln run` took. Needs only numpy.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np


def compare(got, expected, tolerance):
    """Returns (ok, rel_l2, max_abs, reason) for one output."""
    if got.shape != expected.shape:
        return False, float("inf"), float("inf"), f"shape {list(got.shape)}, expected {list(expected.shape)}"
    if got.dtype != expected.dtype:
        return False, float("inf"), float("inf"), f"dtype {got.dtype}, expected {expected.dtype}"
    if got.size == 0:
        return True, 0.0, 0.0, ""
    g, e = got.astype(np.float64), expected.astype(np.float64)
    if not np.array_equal(np.isnan(g), np.isnan(e)):  # NaN must match NaN
        return False, float("inf"), float("inf"), f"{int(np.isnan(g).sum())} NaN, expected {int(np.isnan(e).sum())}"
    finite = ~np.isnan(e)
    diff = np.abs(g[finite] - e[finite])
    max_abs = float(diff.max()) if diff.size else 0.0
    norm = float(np.linalg.norm(e[finite]))
    rel = float(np.linalg.norm(diff)) / norm if norm > 0 else float(np.linalg.norm(diff))
    if expected.dtype.kind in "biu":
        return max_abs == 0, rel, max_abs, "" if max_abs == 0 else "integer output differs"
    return rel <= tolerance, rel, max_abs, "" if rel <= tolerance else f"rel L2 above {tolerance:g}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", required=True, help="path of the kiln executable")
    ap.add_argument("--model-dir", help="a dir made by make_models.py (model.onnx, io.json, .npy files)")
    ap.add_argument("--model", help="instead of --model-dir: the .onnx file ...")
    ap.add_argument("--input", action="append", default=[], metavar="NAME=FILE", help="... its inputs ...")
    ap.add_argument("--expected", action="append", default=[], metavar="FILE",
                    help="... and its expected outputs in graph-output order")
    ap.add_argument("--work-dir", help="where kiln writes its outputs (default: a temp dir, removed after)")
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--tolerance", type=float, default=1e-4)
    args = ap.parse_args()

    if args.model_dir:
        with open(os.path.join(args.model_dir, "io.json")) as f:
            io = json.load(f)
        model = os.path.join(args.model_dir, "model.onnx")
        inputs = [(x["name"], os.path.join(args.model_dir, x["file"])) for x in io["inputs"]]
        outputs = [(x["name"], os.path.join(args.model_dir, x["file"])) for x in io["outputs"]]
    elif args.model and args.expected:
        model = args.model
        inputs = [tuple(x.rsplit("=", 1)) for x in args.input]
        outputs = [(os.path.basename(f), f) for f in args.expected]
    else:
        ap.error("give --model-dir, or --model with --input and --expected")
    work = args.work_dir or tempfile.mkdtemp(prefix="kiln_model_")
    try:
        return run_and_compare(args, model, inputs, outputs, work)
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)


def run_and_compare(args, model, inputs, outputs, work):
    out_dir = os.path.join(work, "outputs")
    shutil.rmtree(out_dir, ignore_errors=True)  # stale outputs of an earlier run must not pass this one
    cmd = [args.kiln, "run", "--backend", args.backend, model]
    for name, file in inputs:
        cmd += ["--input", f"{name}={file}"]
    cmd += ["--output-dir", out_dir]
    print("$ " + " ".join(cmd), flush=True)
    start = time.monotonic()
    r = subprocess.run(cmd)
    seconds = time.monotonic() - start
    print(f"kiln run: exit code {r.returncode}, {seconds:.2f} s", flush=True)
    if r.returncode != 0:
        return 1

    ok = True
    listing = os.path.join(out_dir, "outputs.json")
    if not os.path.exists(listing):  # kiln writes it last: without it the outputs are incomplete
        print(f"FAIL kiln wrote no {listing}")
        return 1
    with open(listing) as f:
        listed = json.load(f)
    # kiln's list of what it wrote must match the graph's outputs.
    listed = listed.get("outputs", []) if isinstance(listed, dict) else listed
    written = [o.get("name") for o in listed]
    if len(written) != len(outputs) or (args.model_dir and written != [n for n, _ in outputs]):
        print(f"FAIL outputs.json lists {written}, expected {[n for n, _ in outputs]}")
        ok = False
    for i, (name, expected) in enumerate(outputs):
        path = os.path.join(out_dir, f"output_{i}.npy")
        if not os.path.exists(path):
            print(f"FAIL {name}: kiln wrote no {path}")
            ok = False
            continue
        good, rel, max_abs, why = compare(np.load(path), np.load(expected), args.tolerance)
        print(f"{'ok  ' if good else 'FAIL'} {name}: rel L2 {rel:.3e}, max abs {max_abs:.3e}"
              + (f" ({why})" if why else ""))
        ok = ok and good
    print(f"{os.path.basename(os.path.normpath(args.model_dir or model))}: {'PASS' if ok else 'FAIL'} "
          f"({seconds:.2f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
