"""Writes gpu_check.py's INT8 calibration cache for a model from 8 random images (a CPU plan build), so that
gpu_check's int8 build at a large batch skips its CPU calibration run (minutes at ResNet-50 batch 256).

  python3 bench/precalib.py .devbin/kiln resnet50   # then gpu_check.py --precisions int8 ... as usual
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
import models  # noqa: E402
from gpu_check import write_calibration_set  # noqa: E402

kiln, name = sys.argv[1], sys.argv[2]
work = f"/tmp/kiln_gpu_check/{name}"
cache = os.path.join(work, "calib_int8.cache")
os.makedirs(work, exist_ok=True)
if os.path.exists(cache):
    print("calibration cache exists", flush=True)
    sys.exit(0)
model, names, make = models.make(name)
model = models.randomize_norm_stats(model).eval()
onnx_path = os.path.join(work, name + ".pre.onnx")
torch.onnx.export(model, tuple(make(2)), onnx_path, input_names=names, output_names=["output"],
                  dynamic_axes={n: {0: "batch"} for n in names + ["output"]}, opset_version=17, dynamo=False)
d = write_calibration_set(make, names, "/tmp/precalib", 8)
shapes = ",".join(f"{n}:{'x'.join(map(str, x.shape))}" for n, x in zip(names, make(8)))
p = subprocess.run([kiln, "build", onnx_path, "-o", "/tmp/precalib/p.kplan", "--backend", "cpu", "--shapes", shapes,
                    "--fp16", "--int8", "--calib-data", d, "--calib-algo", "minmax", "--calib-cache", cache],
                   capture_output=True, text=True)
print("precalib rc", p.returncode, (p.stdout + p.stderr)[-600:], flush=True)
