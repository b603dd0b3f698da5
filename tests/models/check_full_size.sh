#!/bin/bash
# Full-size model check (not in CI: minutes of CPU time and ~1.5 GB of models). Exports torchvision
# resnet50, mobilenet_v3_large, vit_b_16, a UNet (base 64, depth 4, 256x256) and a BERT-base-sized
# encoder (12 layers, hidden 768, seq 128) with random weights into a scratch dir, runs each with
# `kiln run --backend cpu` and compares with PyTorch (relative L2 <= 1e-4), printing the time per model.
#
#   tests/models/check_full_size.sh [SCRATCH_DIR]       (default: /tmp/kiln_full_size)
#   KILN=path/to/kiln  REUSE=1 (keep models exported by an earlier run)  ONLY="resnet50 unet"
#
# Needs python3-torch and python3-torchvision (Debian) besides a built kiln.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
kiln=${KILN:-$root/build/kiln}
scratch=${1:-/tmp/kiln_full_size}
models=${ONLY:-resnet50 mobilenet_v3_large vit_b_16 unet bert_base}
python=/usr/bin/python3

if [ ! -x "$kiln" ]; then
  echo "check_full_size: no kiln executable at $kiln (build first, or set KILN)" >&2
  exit 2
fi
export_args=(--full --out "$scratch" --only $models)
[ -n "${REUSE:-}" ] && export_args+=(--reuse)
echo "== exporting to $scratch"
if ! "$python" "$root/tests/models/make_models.py" "${export_args[@]}"; then
  echo "check_full_size: export failed" >&2
  exit 2
fi

failed=0
summary=()
for m in $models; do
  echo "== $m"
  log=$("$python" "$root/tests/models/check_model.py" --kiln "$kiln" --model-dir "$scratch/$m" 2>&1)
  rc=$?
  echo "$log"
  [ $rc -ne 0 ] && failed=$((failed + 1))
  ref=$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("pytorch_seconds", "?"))' \
        "$scratch/$m/io.json")
  # The checker's last line reads "<model>: PASS|FAIL (<seconds> s)".
  summary+=("$(printf '%-20s %-4s kiln %8s s   pytorch %8s s' "$m" \
               "$([ $rc -eq 0 ] && echo PASS || echo FAIL)" \
               "$(echo "$log" | sed -n 's/.*(\([0-9.]*\) s)$/\1/p' | tail -1)" "$ref")")
done

echo "== summary (kiln run wall time incl. import; PyTorch: one eager forward, first call)"
printf '%s\n' "${summary[@]}"
echo "$failed of $(echo $models | wc -w) models failed"
[ $failed -eq 0 ]
