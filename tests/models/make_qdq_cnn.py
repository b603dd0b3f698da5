#!/usr/bin/python3
"""Exports tests/models/data/qdq_cnn: a small CNN with fake quantization in its forward (what a QAT
model looks like after training), as explicit QuantizeLinear/DequantizeLinear pairs (opset 13).

    /usr/bin/python3 tests/models/make_qdq_cnn.py

INT8 symmetric (zero points 0): activations per tensor, weights per output channel. The scales are
powers of two, so PyTorch's x * (1 / scale) and ONNX's x / scale round alike and the fake-quant
output is the Q/DQ graph's exactly (up to float summation order). The graph covers what the CUDA
backend's qdq-fusion turns into INT8 layers: a 3-channel stem conv (+Relu, requantized), MaxPool
between Q/DQ pairs, a strided conv, a residual block (int8 identity added before the Relu),
global pooling and two Linear layers (Gemm, the first with Relu and requantized).
"""
import json
import math
import os

import numpy as np
import onnx
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))


def pow2_scale(amax):
    return 2.0 ** math.ceil(math.log2(max(float(amax), 1e-8) / 127.0))


class QdqCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.down = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.b1 = nn.Conv2d(32, 32, 3, padding=1)
        self.b2 = nn.Conv2d(32, 32, 3, padding=1)
        self.fc1 = nn.Linear(32, 16)
        self.fc2 = nn.Linear(16, 12)
        self.act_scales = {}  # name -> scale, set by calibrate()
        self.calibrating = False

    def fq(self, name, x):
        if self.calibrating:
            self.act_scales[name] = max(self.act_scales.get(name, 0.0), float(x.abs().max()))
            return x
        return torch.fake_quantize_per_tensor_affine(x, self.act_scales[name], 0, -128, 127)

    def wq(self, layer):
        w = layer.weight
        amax = w.detach().abs().reshape(w.shape[0], -1).max(dim=1).values
        scales = torch.tensor([pow2_scale(a) for a in amax], dtype=torch.float32)
        zps = torch.zeros(w.shape[0], dtype=torch.int32)
        return torch.fake_quantize_per_channel_affine(w, scales, zps, 0, -128, 127)

    def conv(self, layer, x):
        return nn.functional.conv2d(x, self.wq(layer), layer.bias, layer.stride, layer.padding)

    def forward(self, x):
        h = torch.relu(self.conv(self.stem, self.fq("x", x)))
        h = self.fq("pool_in", nn.functional.max_pool2d(self.fq("stem", h), 2))
        h = self.fq("block_in", torch.relu(self.conv(self.down, h)))
        a = self.fq("b1", torch.relu(self.conv(self.b1, h)))
        h = torch.relu(self.conv(self.b2, a) + h)
        h = torch.flatten(nn.functional.adaptive_avg_pool2d(self.fq("block_out", h), 1), 1)
        h = torch.relu(nn.functional.linear(self.fq("fc1_in", h), self.wq(self.fc1), self.fc1.bias))
        return nn.functional.linear(self.fq("fc2_in", h), self.wq(self.fc2), self.fc2.bias)

    def calibrate(self, x):
        self.calibrating = True
        with torch.no_grad():
            self.forward(x)
        self.calibrating = False
        self.act_scales = {k: pow2_scale(v) for k, v in self.act_scales.items()}


def main():
    torch.manual_seed(0)
    model = QdqCnn().eval()
    x = torch.randn(2, 3, 32, 32)
    model.calibrate(torch.cat([x, torch.randn(6, 3, 32, 32)]))
    with torch.no_grad():
        expected = model(x)
    d = os.path.join(HERE, "data", "qdq_cnn")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "model.onnx")
    torch.onnx.export(model, (x,), path, input_names=["input"], output_names=["output"], opset_version=13,
                      do_constant_folding=True)
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    ops = {}
    for n in m.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    print("ops:", ops)
    np.save(os.path.join(d, "input_0.npy"), x.numpy())
    np.save(os.path.join(d, "expected_0.npy"), expected.numpy())
    io = {"opset": 13, "note": "fake-quant CNN (torch.fake_quantize_*) exported as Q/DQ: int8 symmetric, "
          "per-channel weights, power-of-two scales (make_qdq_cnn.py)",
          "inputs": [{"name": "input", "file": "input_0.npy"}],
          "outputs": [{"name": "output", "file": "expected_0.npy"}]}
    with open(os.path.join(d, "io.json"), "w") as f:
        json.dump(io, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
