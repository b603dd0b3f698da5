#!/usr/bin/env python3
"""INT8 accuracy checks on the GPU machine (issue "Low precision"), one call:

  python3 bench/int8_check.py --kiln .devbin/kiln --out $OUT

1. Digits: trains a small CNN on scikit-learn's digits (real 8x8 handwritten digits, shipped inside
   scikit-learn), exports it, and builds kiln plans: FP32 and INT8 calibrated with each calibrator
   (minmax, entropy, percentile=99.99) on 512 training images. Top-1 accuracy on 497 held-out digits,
   which must stay within 1 point of FP32 for every calibrator.
2. ResNet-50: torchvision's ResNet-50 (random weights, random BatchNorm statistics), calibrated on
   real photographs (scikit-image's sample images, as PNG files with --calib-preprocess), output
   cosine to PyTorch FP32 on those images must be >= 0.99.
Prints a table last; writes int8_results.json.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402

ALGOS = ["minmax", "entropy", "percentile=99.99"]
IMAGENET = "resize=224x224,order=RGB,mean=0.485:0.456:0.406,std=0.229:0.224:0.225,scale=1/255,layout=NCHW"


def log(*a):
    print(*a, flush=True)


def sh(cmd, timeout=900):
    t = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr, time.time() - t


def last_line(out):
    lines = [l for l in out.strip().splitlines() if l.strip()]
    return lines[-1] if lines else ""


def export(model, args, path):
    """torch.onnx.export at opset 17 with a dynamic batch; the TorchScript exporter on torch 2.x."""
    kw = {"dynamo": False} if int(torch.__version__.split(".")[0]) >= 2 else {}
    torch.onnx.export(model, args, path, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "n"}, "output": {0: "n"}}, opset_version=17, **kw)


def cosine(a, b):
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-30))


class DigitsNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(64 * 4 * 4, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x):
        return self.head(self.features(x))


def build_and_run(args, onnx_path, plan, shapes, feeds, outdir, flags, backend):
    rc, out, build_s = sh([args.kiln, "build", onnx_path, "-o", plan, "--backend", backend, "--shapes", shapes] + flags)
    if rc != 0:
        return None, f"build failed: {last_line(out)}", build_s, out
    rc, run_out, _ = sh([args.kiln, "run", plan, "--output-dir", outdir] + feeds)
    if rc != 0:
        return None, f"run failed: {last_line(run_out)}", build_s, out
    return np.load(os.path.join(outdir, "output_0.npy")), None, build_s, out


def digits(args, rows):
    from sklearn.datasets import load_digits
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    perm = np.random.default_rng(0).permutation(len(x))
    train, test = perm[:1300], perm[1300:]
    torch.manual_seed(0)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    net = DigitsNet().to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    xt, yt = torch.from_numpy(x[train]).to(dev), torch.from_numpy(y[train]).long().to(dev)
    for epoch in range(40):
        order = torch.randperm(len(xt), device=dev)
        for i in range(0, len(xt), 64):
            idx = order[i:i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(net(xt[idx]), yt[idx]).backward()
            opt.step()
    net.eval().cpu()
    with torch.no_grad():
        ref_acc = float((net(torch.from_numpy(x[test])).argmax(1).numpy() == y[test]).mean() * 100)
    log(f"[digits] PyTorch FP32 top-1 on {len(test)} held-out digits: {ref_acc:.2f}%")
    work = os.path.join(args.work, "digits")
    os.makedirs(work, exist_ok=True)
    onnx_path = os.path.join(work, "digits.onnx")
    export(net, (torch.from_numpy(x[:2]),), onnx_path)
    calib = os.path.join(work, "calib")
    os.makedirs(calib, exist_ok=True)
    for i in range(8):  # 512 training digits, 64 per file
        np.save(os.path.join(calib, f"digits_{i}.npy"), x[train[i * 64:(i + 1) * 64]])
    test_npy = os.path.join(work, "test.npy")
    np.save(test_npy, x[test])
    shapes = f"input:{len(test)}x1x8x8"
    for backend in args.backends.split(","):
        for algo in ["fp32"] + ALGOS:
            tag = algo.replace("=", "")
            plan = os.path.join(work, f"digits_{backend}_{tag}.kplan")
            flags = [] if algo == "fp32" else ["--int8", "--calib-data", calib, "--calib-algo", algo, "--calib-batch",
                                                "64", "--calib-cache", os.path.join(work, f"{backend}_{tag}.cache")]
            got, err, build_s, _ = build_and_run(args, onnx_path, plan, shapes, ["--input", f"input={test_npy}"],
                                                 os.path.join(work, f"out_{backend}_{tag}"), flags, backend)
            row = {"check": "digits", "backend": backend, "precision": "fp32" if algo == "fp32" else "int8",
                   "algo": algo, "ref_top1": ref_acc, "build_s": round(build_s, 2)}
            if err:
                row["error"] = err
            else:
                row["top1"] = float((got.argmax(1) == y[test]).mean() * 100)
                row["ok"] = abs(row["top1"] - ref_acc) <= 1.0
            rows.append(row)
            log(f"[digits {backend} {algo}] {row.get('top1', err)}")


def sample_images(dirname):
    import skimage.data as data
    from PIL import Image
    os.makedirs(dirname, exist_ok=True)
    names = []
    for n in ["astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "colorwheel",
              "camera", "coins", "moon", "page", "text", "clock", "horse", "brick", "grass", "gravel", "cell"]:
        try:
            img = np.asarray(getattr(data, n)())
        except Exception:
            continue  # some samples are downloaded on first use: the GPU machine is offline
        if img.dtype == bool:
            img = img.astype(np.uint8) * 255
        if img.dtype != np.uint8:
            img = (255 * (img - img.min()) / max(float(img.max() - img.min()), 1e-6)).astype(np.uint8)
        if img.ndim == 2:
            img = np.stack([img] * 3, -1)
        Image.fromarray(img[..., :3]).save(os.path.join(dirname, f"{n}.png"))
        names.append(n)
    return names


def imagenet_preprocess(path):
    from PIL import Image
    img = np.asarray(Image.open(path).convert("RGB").resize((224, 224), Image.BILINEAR)).astype(np.float32) / 255
    img = (img - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    return img.transpose(2, 0, 1)


def resnet(args, rows):
    work = os.path.join(args.work, "resnet50")
    imgs = os.path.join(work, "images")
    names = sample_images(imgs)
    log(f"[resnet50] {len(names)} sample photographs: {', '.join(names)}")
    model, _, _ = models.make("resnet50")
    model = models.randomize_norm_stats(model).eval()
    batch = np.stack([imagenet_preprocess(os.path.join(imgs, n + ".png")) for n in names])
    with torch.no_grad():
        ref = model(torch.from_numpy(batch)).numpy()
    onnx_path = os.path.join(work, "resnet50.onnx")
    export(model, (torch.from_numpy(batch[:2]),), onnx_path)
    npy = os.path.join(work, "photos.npy")
    np.save(npy, batch)
    shapes = f"input:{len(names)}x3x224x224"
    for algo in ALGOS:
        tag = algo.replace("=", "")
        flags = ["--int8", "--fp16", "--calib-data", imgs, "--calib-preprocess", IMAGENET, "--calib-algo", algo,
                 "--calib-batch", "6", "--calib-cache", os.path.join(work, f"{tag}.cache")]
        got, err, build_s, _ = build_and_run(args, onnx_path, os.path.join(work, f"r50_{tag}.kplan"), shapes,
                                             ["--input", f"input={npy}"], os.path.join(work, f"out_{tag}"), flags,
                                             args.resnet_backend)
        row = {"check": "resnet50-photos", "backend": args.resnet_backend, "precision": "int8", "algo": algo,
               "build_s": round(build_s, 2)}
        if err:
            row["error"] = err
        else:
            row["cosine"] = min(cosine(g, r) for g, r in zip(got, ref))
            row["top1_agree"] = float((got.argmax(1) == ref.argmax(1)).mean() * 100)
            row["ok"] = row["cosine"] >= 0.99
        rows.append(row)
        log(f"[resnet50 {algo}] {row.get('cosine', err)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--work", default="/tmp/kiln_int8_check")
    ap.add_argument("--checks", default="digits,resnet50")
    ap.add_argument("--backends", default="cuda,cpu", help="backends for the digits plans")
    ap.add_argument("--resnet-backend", default="cuda", help="backend for the calibrated ResNet-50")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    rows = []
    for check, fn in (("digits", digits), ("resnet50", resnet)):
        if check in args.checks.split(","):
            try:
                fn(args, rows)
            except Exception as e:  # one check's failure must not hide the other
                log(f"[{check}] failed: {type(e).__name__}: {e}")
                rows.append({"check": check, "error": f"{type(e).__name__}: {e}"})
    with open(os.path.join(args.out, "int8_results.json"), "w") as f:
        json.dump({"gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else "none", "rows": rows}, f,
                  indent=1)
    log("")
    log(f"{'check':<16}{'backend':<8}{'prec':<6}{'calibrator':<18}{'result':<34}{'ok':>4}{'build s':>8}")
    for r in rows:
        if "error" in r:
            res = r["error"][:60]
        elif r["check"] == "digits":
            res = f"top-1 {r['top1']:.2f}% (PyTorch FP32 {r['ref_top1']:.2f}%)"
        else:
            res = f"min cosine {r['cosine']:.4f}, top-1 agree {r['top1_agree']:.0f}%"
        log(f"{r['check']:<16}{r.get('backend', ''):<8}{r.get('precision', ''):<6}{r.get('algo', ''):<18}{res:<34}"
            f"{('yes' if r.get('ok') else 'NO'):>4}{r.get('build_s', 0):>8.1f}")


if __name__ == "__main__":
    main()
