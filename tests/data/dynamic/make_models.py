#!/usr/bin/python3
"""Makes the two small dynamic-shape models of the "dynamic shapes" done check, with PyTorch's
outputs at three input sizes x two batch sizes:

  detector.onnx    OCR-style text detector, input images N x 3 x H x W (N, H, W dynamic):
                   Conv/BatchNorm/HardSigmoid (hard-swish) encoder, Resize up, skip Concat,
                   ConvTranspose head giving a 1 x H x W probability map.
  recognizer.onnx  text-line recognizer, input N x 3 x 32 x W (N, W dynamic): conv/pool features,
                   height averaged away, then a per-column sequence head (MatMul/Relu/LogSoftmax).

Cases are saved as <model>_<i>_input.npy / <model>_<i>_output.npy (float32). Run with Debian's
/usr/bin/python3 (torch 1.13): /usr/bin/python3 tests/data/dynamic/make_models.py
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


class Detector(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
        self.b1 = nn.BatchNorm2d(8)
        self.hs = nn.Hardsigmoid()
        self.c2 = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False)
        self.b2 = nn.BatchNorm2d(16)
        self.c3 = nn.Conv2d(24, 8, 3, padding=1)
        self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.out = nn.Conv2d(4, 1, 1)

    def forward(self, x):
        a = self.b1(self.c1(x))
        a = a * self.hs(a)  # hard-swish through HardSigmoid
        b = F.relu(self.b2(self.c2(a)))
        b = F.interpolate(b, scale_factor=2.0, mode="nearest")
        c = F.relu(self.c3(torch.cat([a, b], dim=1)))
        return torch.sigmoid(self.out(F.relu(self.up(c))))


class Recognizer(nn.Module):
    def __init__(self, classes=12):
        super().__init__()
        self.c1 = nn.Conv2d(3, 16, 3, padding=1)
        self.b1 = nn.BatchNorm2d(16)
        self.c2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(32, 32)
        self.fc2 = nn.Linear(32, classes)

    def forward(self, x):
        y = F.max_pool2d(F.relu(self.b1(self.c1(x))), 2)         # N,16,16,W/2
        y = F.max_pool2d(F.relu(self.c2(y)), (2, 1))             # N,32,8,W/2
        y = y.mean(dim=2)                                         # N,32,T
        y = y.permute(0, 2, 1)                                    # N,T,32
        y = F.relu(self.fc1(y))
        return F.log_softmax(self.fc2(y), dim=-1)                 # N,T,classes


def randomize_bn(m, g):
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.2)
            mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
            mod.weight.data.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
            mod.bias.data.copy_(torch.randn(mod.num_features, generator=g) * 0.1)


def export(model, name, example, dynamic_axes, cases, g):
    model.eval()
    randomize_bn(model, g)
    path = os.path.join(HERE, name + ".onnx")
    torch.onnx.export(model, example, path, input_names=["x"], output_names=["y"], opset_version=13,
                      training=torch.onnx.TrainingMode.PRESERVE,  # keep BatchNormalization (no fusing)
                      dynamic_axes={"x": dynamic_axes, "y": {0: "N"}})
    with torch.no_grad():
        for i, shape in enumerate(cases):
            x = torch.randn(*shape, generator=g)
            y = model(x)
            np.save(os.path.join(HERE, f"{name}_{i}_input.npy"), x.numpy().astype(np.float32))
            np.save(os.path.join(HERE, f"{name}_{i}_output.npy"), y.numpy().astype(np.float32))


def main():
    g = torch.Generator().manual_seed(7)
    torch.manual_seed(7)
    det_cases = [(b, 3, h, w) for (h, w) in [(32, 32), (48, 64), (64, 96)] for b in (1, 3)]
    export(Detector(), "detector", torch.randn(1, 3, 32, 32), {0: "N", 2: "H", 3: "W"}, det_cases, g)
    rec_cases = [(b, 3, 32, w) for w in (32, 64, 100) for b in (1, 2)]
    export(Recognizer(), "recognizer", torch.randn(1, 3, 32, 64), {0: "N", 3: "W"}, rec_cases, g)


if __name__ == "__main__":
    main()
