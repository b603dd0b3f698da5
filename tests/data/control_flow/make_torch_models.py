#!/usr/bin/python3
"""Writes the PyTorch-exported control-flow models the unit tests import (run with Debian's
/usr/bin/python3: torch 1.13, onnx 1.12). The models are committed; rerun only to change them.

torch_if_opset{13,17}.onnx: a torch.jit.script function with data-dependent, nested `if`s whose
branches read the graph inputs from the outer scope:
    s = x.sum()
    if s > 0:  z = (x * 2 + y) if s > 10 else (x + y)
    else:      z = x - y
    return z, s
with a dynamic first dim on x, y and z.

torch_loop_opset{13,17}.onnx: a for loop over the rows of x, then a while loop whose condition
is computed in an If inside the loop body (reading a body value from the enclosing scope):
    acc = zeros(3); for i in range(x.size(0)): acc = acc + x[i] * i
    k = 0; while acc.sum() < 100 and k < 20: acc = acc * 2 + 1; k += 1
    return acc, k

torch_shape_if_opset13.onnx: an `if` on a shape, which becomes constant once the input shape is
fixed (then the builder inlines the chosen branch):
    y = relu(x[1:] - x[:-1] if x.size(0) > 1 else x * 2)
"""
import os

import torch


class NestedIf(torch.nn.Module):
    def forward(self, x, y):
        s = x.sum()
        if bool(s > 0):
            if bool(s > 10):
                z = x * 2.0 + y
            else:
                z = x + y
        else:
            z = x - y
        return z, s


class Loops(torch.nn.Module):
    def forward(self, x):
        acc = torch.zeros_like(x[0])
        for i in range(x.size(0)):
            acc = acc + x[i] * float(i)
        k = 0
        while bool(acc.sum() < 100.0) and k < 20:
            acc = acc * 2.0 + 1.0
            k += 1
        return acc, torch.tensor(k)


class ShapeIf(torch.nn.Module):
    def forward(self, x):
        if x.size(0) > 1:
            y = x[1:] - x[:-1]
        else:
            y = x * 2.0
        return torch.relu(y)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    model = torch.jit.script(NestedIf())
    x, y = torch.randn(2, 3), torch.randn(2, 3)
    for opset in (13, 17):
        path = os.path.join(here, f"torch_if_opset{opset}.onnx")
        torch.onnx.export(model, (x, y), path, opset_version=opset, input_names=["x", "y"],
                          output_names=["z", "s"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}, "z": {0: "n"}})
        print("wrote", path, os.path.getsize(path), "bytes")
    model = torch.jit.script(Loops())
    for opset in (13, 17):
        path = os.path.join(here, f"torch_loop_opset{opset}.onnx")
        torch.onnx.export(model, (torch.randn(4, 3),), path, opset_version=opset, input_names=["x"],
                          output_names=["acc", "k"], dynamic_axes={"x": {0: "n"}})
        print("wrote", path, os.path.getsize(path), "bytes")
    path = os.path.join(here, "torch_shape_if_opset13.onnx")
    torch.onnx.export(torch.jit.script(ShapeIf()), (torch.randn(4, 3),), path, opset_version=13,
                      input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "m"}})
    print("wrote", path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
