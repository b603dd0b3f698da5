#!/usr/bin/env bash
# bench/lowprec_speed.sh KILN [OUT]: the speed rows of issue "Low precision" in one GPU call:
# ResNet-50 INT8 vs kiln FP16 at batch 256, BERT-base FP8 and INT8 vs kiln FP16 at batch 64, each pair
# built and timed in the same run by bench/gpu_check.py (which also checks accuracy against PyTorch).
# Calibration caches are seeded first from small random sets (ResNet: bench/precalib.py, 8 images;
# BERT: one batch of 64) so the float32 calibration run fits the device time; the accuracy checks
# on real data live in bench/int8_check.py.
set -uo pipefail
kiln=${1:?usage: bench/lowprec_speed.sh KILN [OUT]}
out=${2:-${OUT:-.}}
work=/tmp/kiln_gpu_check
here=$(cd "$(dirname "$0")" && pwd)
python3 "$here/precalib.py" "$kiln" resnet50
python3 - "$work" <<'PY'
import os, sys, numpy as np
d = os.path.join(sys.argv[1], "bert_base", "calib_b64")
if not os.path.isdir(d):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 30522, (64, 128), dtype=np.int64)
    mask = np.ones((64, 128), dtype=np.int64)
    mask[:, 112:] = 0
    for name, x in (("input_ids", ids), ("attention_mask", mask)):
        os.makedirs(os.path.join(d, name), exist_ok=True)
        np.save(os.path.join(d, name, "batch_000.npy"), x)
    print("seeded one BERT calibration batch", flush=True)
PY
python3 -u "$here/gpu_check.py" --kiln "$kiln" --out "$out" --work "$work" --models resnet50 \
  --precisions fp16,int8 --batches resnet50:256 --iters 50 2>&1 | grep --line-buffered -v -i warning
mv "$out/results.json" "$out/results_resnet50.json" 2>/dev/null
python3 -u "$here/gpu_check.py" --kiln "$kiln" --out "$out" --work "$work" --models bert_base \
  --precisions fp16,fp8,int8 --batches bert_base:64 --iters 100 2>&1 | grep --line-buffered -v -i warning
