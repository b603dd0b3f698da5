#!/usr/bin/python3
"""Writes small models in the style of third-party ONNX exporters, with inputs and expected outputs.

    /usr/bin/python3 tests/data/exporters/make_exporter_models.py

No paddle2onnx / tf2onnx here, so their graphs are rebuilt with onnx.helper the way those exporters
emit them (opsets, Constant nodes, attribute forms, layout shuffles, symbolic dim names); their expected
outputs come from an independent NumPy computation of the same network. The PyTorch-style models are
real torch.onnx.export (torch 1.13) output, with expected outputs from torch.

Layout: <model>/model.onnx and, per case c (two input sizes where dims are dynamic),
input_<c>_<i>.npy / expected_<c>_<i>.npy in graph input / output order.
tests/unit/exporter_models_test.cpp reads them.
"""
import os
import shutil

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
RNG = np.random.default_rng(20240611)


def rand(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


# ---------------------------------------------------------------- NumPy reference ops (NCHW, float64)

def np_conv(x, w, b, stride=1, pad=0, group=1):
    n, c, h, wd = x.shape
    co, ci, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh = (h + 2 * pad - kh) // stride + 1
    ow = (wd + 2 * pad - kw) // stride + 1
    y = np.zeros((n, co, oh, ow))
    cpg, opg = c // group, co // group
    for g in range(group):
        xs = xp[:, g * cpg:(g + 1) * cpg]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]
                y[:, g * opg:(g + 1) * opg] += np.einsum("nchw,oc->nohw", patch, w[g * opg:(g + 1) * opg, :, i, j])
    return y + b.reshape(1, -1, 1, 1)


def np_bn(x, scale, bias, mean, var, eps):
    r = lambda v: v.reshape(1, -1, 1, 1)  # noqa: E731
    return (x - r(mean)) / np.sqrt(r(var) + eps) * r(scale) + r(bias)


def np_maxpool2(x):
    n, c, h, w = x.shape
    return x[:, :, :h // 2 * 2, :w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def np_nearest_up(x, s):  # nearest, asymmetric, floor: an integer scale repeats pixels
    return x.repeat(s, axis=2).repeat(s, axis=3)


def np_linear_half_pixel(x, s, axis):  # Resize linear, half_pixel, one axis, integer scale
    n_in = x.shape[axis]
    o = np.arange(n_in * s)
    src = np.maximum((o + 0.5) / s - 0.5, 0.0)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, n_in - 1)
    f = src - i0
    shape = [1] * x.ndim
    shape[axis] = -1
    f = f.reshape(shape)
    return np.take(x, i0, axis=axis) * (1 - f) + np.take(x, i1, axis=axis) * f


def hardsigmoid(x, alpha, beta):
    return np.clip(alpha * x + beta, 0, 1)


# ---------------------------------------------------------------- writing

def save(name, model, cases):
    """cases: list of (inputs, expected), each a list of arrays in graph order."""
    d = os.path.join(HERE, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    if model.opset_import[0].version <= 17:  # onnx 1.12's checker knows opsets up to 17
        onnx.checker.check_model(model)
    onnx.save(model, os.path.join(d, "model.onnx"))
    for c, (ins, outs) in enumerate(cases):
        for i, a in enumerate(ins):
            np.save(os.path.join(d, f"input_{c}_{i}.npy"), np.array(a, order="C"))  # C order, 0-d kept
        for i, a in enumerate(outs):
            np.save(os.path.join(d, f"expected_{c}_{i}.npy"), np.array(a, order="C"))  # C order, 0-d kept


class Builder:
    """Collects nodes; every constant is a Constant node (paddle2onnx style) or an initializer."""

    def __init__(self, prefix, constants_as_nodes=True):
        self.nodes, self.inits, self.prefix, self.as_nodes, self.count = [], [], prefix, constants_as_nodes, 0

    def name(self, op):
        self.count += 1
        return f"{self.prefix}{op.lower()}_{self.count}"

    def const(self, value, dtype=None, node=None):
        arr = np.asarray(value, dtype=dtype)
        n = self.name("const")
        as_node = self.as_nodes if node is None else node
        if as_node:
            self.nodes.append(helper.make_node("Constant", [], [n], name=n + "_node",
                                               value=numpy_helper.from_array(arr, n)))
        else:
            self.inits.append(numpy_helper.from_array(arr, n))
        return n

    def op(self, op, inputs, n_out=1, **attrs):
        outs = [self.name(op) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=outs[0] + "_node", **attrs))
        return outs[0] if n_out == 1 else outs

    def model(self, graph_name, inputs, outputs, opset, ir_version, producer, extra_opsets=()):
        g = helper.make_graph(self.nodes, graph_name, inputs, outputs, self.inits)
        ops = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
        m = helper.make_model(g, opset_imports=ops, producer_name=producer)
        m.ir_version = ir_version
        return m


def rename_output(b, src, dst):
    for n in b.nodes:
        n.input[:] = [dst if i == src else i for i in n.input]
        n.output[:] = [dst if o == src else o for o in n.output]


# ---------------------------------------------------------------- paddle2onnx style

def paddle_model(opset):
    """Conv-BN-ReLU6 backbone, hard-swish, Pad, pool, 2x upsampling, and a pooled feature head."""
    b = Builder("p2o_", constants_as_nodes=True)
    w1, b1 = rand(8, 3, 3, 3, scale=0.4), rand(8, scale=0.1)
    bn = [rand(8, scale=0.2) + 1, rand(8, scale=0.1), rand(8, scale=0.1), np.abs(rand(8)) + 0.5]
    w2, b2 = rand(8, 1, 3, 3, scale=0.4), rand(8, scale=0.1)  # depthwise
    x = "image"
    y = b.op("Conv", [x, b.const(w1), b.const(b1)], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1],
             dilations=[1, 1], group=1)
    y = b.op("BatchNormalization", [y] + [b.const(t) for t in bn], epsilon=1e-5, momentum=0.9)
    if opset < 11:  # relu6: Clip with min/max attributes before opset 11
        y = b.op("Clip", [y], min=0.0, max=6.0)
    else:
        y = b.op("Clip", [y, b.const(np.float32(0)), b.const(np.float32(6))])
    # hard_swish as paddle2onnx emits it: x * HardSigmoid(x) and x * Clip(x + 3, 0, 6) / 6
    hs = b.op("HardSigmoid", [y], alpha=1.0 / 6, beta=0.5)
    y = b.op("Mul", [y, hs])
    if opset < 11:
        t = b.op("Clip", [b.op("Add", [y, b.const(np.float32(3))])], min=0.0, max=6.0)
    else:
        t = b.op("Clip", [b.op("Add", [y, b.const(np.float32(3))]), b.const(np.float32(0)),
                          b.const(np.float32(6))])
    y = b.op("Div", [b.op("Mul", [y, t]), b.const(np.float32(6))])
    # Pad: attributes (Pad-2) before opset 11, inputs from 11 on
    if opset < 11:
        y = b.op("Pad", [y], mode="constant", pads=[0, 0, 1, 1, 0, 0, 1, 1], value=0.5)
    else:
        y = b.op("Pad", [y, b.const(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)), b.const(np.float32(0.5))],
                 mode="constant")
    y = b.op("Conv", [y, b.const(w2), b.const(b2)], kernel_shape=[3, 3], pads=[0, 0, 0, 0], strides=[1, 1],
             group=8)
    y = b.op("MaxPool", [y], kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0])
    scales = np.array([1, 1, 2, 2], np.float32)
    if opset == 9:
        up = b.op("Upsample", [y, b.const(scales)], mode="nearest")
    elif opset == 10:
        up = b.op("Resize", [y, b.const(scales)], mode="nearest")
    else:  # bilinear, align_corners=False, align_mode=0: half_pixel; roi is an (unused) Constant
        up = b.op("Resize", [y, b.const(np.array([], np.float32)), b.const(scales)], mode="linear",
                  coordinate_transformation_mode="half_pixel")
    # Feature head: global pool, Squeeze/Unsqueeze with axes attributes, Reshape with a Constant shape
    f = b.op("GlobalAveragePool", [y])
    f = b.op("Squeeze", [f], axes=[2, 3])
    f = b.op("Unsqueeze", [f], axes=[1])
    f = b.op("Reshape", [f, b.const(np.array([0, -1, 4], np.int64))])
    rename_output(b, up, "up")
    rename_output(b, f, "feat")

    if opset == 11:  # named dims
        x_info = helper.make_tensor_value_info(x, TensorProto.FLOAT, ["N", 3, "H", "W"])
    else:  # paddle's -1 for every dynamic dim
        x_info = helper.make_tensor_value_info(x, TensorProto.FLOAT, [-1, 3, -1, -1])
    dyn = ["N", "up_h", "up_w"] if opset == 11 else [-1, -1, -1]
    outs = [helper.make_tensor_value_info("up", TensorProto.FLOAT, [dyn[0], 8, dyn[1], dyn[2]]),
            helper.make_tensor_value_info("feat", TensorProto.FLOAT, [dyn[0], 2, 4])]
    m = b.model("paddle_graph", [x_info], outs, opset, ir_version=6 if opset == 11 else 5,
                producer="PaddlePaddle")

    def reference(img):
        y = np_conv(img.astype(np.float64), w1, b1, pad=1)
        y = np.clip(np_bn(y, *bn, 1e-5), 0, 6)
        y = y * hardsigmoid(y, 1.0 / 6, 0.5)
        y = y * np.clip(y + 3, 0, 6) / 6
        y = np.pad(y, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=0.5)
        y = np_maxpool2(np_conv(y, w2, b2, group=8))
        if opset < 11:
            up = np_nearest_up(y, 2)
        else:
            up = np_linear_half_pixel(np_linear_half_pixel(y, 2, 2), 2, 3)
        f = y.mean(axis=(2, 3)).reshape(y.shape[0], 2, 4)
        return [up.astype(np.float32), f.astype(np.float32)]

    cases = []
    for shape in [(1, 3, 12, 16), (2, 3, 9, 7)]:
        img = rand(*shape)
        cases.append(([img], reference(img)))
    return m, cases


# ---------------------------------------------------------------- tf2onnx style

def tf2onnx_model(opset):
    """A Keras-like NHWC CNN: every Conv wrapped in Transposes, LeakyRelu / Max(x, alpha*x),
    a float->int64->float Cast chain, Split, ReduceMean + Squeeze, Reshape with -1."""
    b = Builder("StatefulPartitionedCall/model/", constants_as_nodes=False)
    w1, b1 = rand(8, 3, 3, 3, scale=0.4), rand(8, scale=0.1)
    w2, b2 = rand(8, 8, 3, 3, scale=0.2), rand(8, scale=0.1)
    x = "input_1"
    # tf.cast(tf.cast(x * 4, int64), float) / 4: the input quantized to quarters (exact in float32)
    q = b.op("Cast", [b.op("Mul", [x, b.const(np.float32(4))])], to=TensorProto.INT64)
    q = b.op("Mul", [b.op("Cast", [q], to=TensorProto.FLOAT), b.const(np.float32(0.25))])

    def conv_nhwc(t, w, bias, stride):
        t = b.op("Transpose", [t], perm=[0, 3, 1, 2])
        t = b.op("Conv", [t, b.const(w), b.const(bias)], kernel_shape=[3, 3], strides=[stride, stride],
                 pads=[1, 1, 1, 1], dilations=[1, 1])
        return b.op("Transpose", [t], perm=[0, 2, 3, 1])

    y = b.op("LeakyRelu", [conv_nhwc(q, w1, b1, 1)], alpha=0.2)
    y = conv_nhwc(y, w2, b2, 2)
    y = b.op("Max", [y, b.op("Mul", [y, b.const(np.float32(0.1))])])  # older tf.nn.leaky_relu lowering
    # Split the channels (split sizes as an input from opset 13 on), recombine
    s0, s1 = b.op("Split", [y, b.const(np.array([3, 5], np.int64))], n_out=2, axis=3)
    y2 = b.op("Concat", [b.op("Sigmoid", [s0]), s1], axis=-1)
    # tf.reduce_mean(keepdims=True) then tf.squeeze: axes attribute at 13, input at 18
    if opset < 18:
        m = b.op("ReduceMean", [y2], axes=[1, 2], keepdims=1)
    else:
        m = b.op("ReduceMean", [y2, b.const(np.array([1, 2], np.int64))], keepdims=1)
    m = b.op("Squeeze", [m, b.const(np.array([1, 2], np.int64))])
    flat = b.op("Reshape", [m, b.const(np.array([-1, 2, 4], np.int64))])
    rows = b.op("Reshape", [y2, b.const(np.array([0, -1, 8], np.int64))])
    rename_output(b, y2, "Identity")
    rename_output(b, flat, "Identity_1")
    rename_output(b, rows, "Identity_2")
    x_info = helper.make_tensor_value_info(x, TensorProto.FLOAT, ["unk__123", "unk__124", "unk__125", 3])
    outs = [helper.make_tensor_value_info("Identity", TensorProto.FLOAT, ["unk__126", "unk__127", "unk__128", 8]),
            helper.make_tensor_value_info("Identity_1", TensorProto.FLOAT, ["unk__129", 2, 4]),
            helper.make_tensor_value_info("Identity_2", TensorProto.FLOAT, ["unk__130", "unk__131", 8])]
    model = b.model("tf2onnx", [x_info], outs, opset, ir_version=8, producer="tf2onnx")

    def reference(img):
        q = np.trunc(img.astype(np.float64) * 4) * 0.25
        t = np_conv(q.transpose(0, 3, 1, 2), w1, b1, pad=1)
        t = np.where(t > 0, t, 0.2 * t)
        t = np_conv(t, w2, b2, stride=2, pad=1).transpose(0, 2, 3, 1)
        t = np.maximum(t, 0.1 * t)
        y2 = np.concatenate([1 / (1 + np.exp(-t[..., :3])), t[..., 3:]], axis=-1)
        m = y2.mean(axis=(1, 2))
        return [y2.astype(np.float32), m.reshape(-1, 2, 4).astype(np.float32),
                y2.reshape(y2.shape[0], -1, 8).astype(np.float32)]

    cases = []
    for shape in [(1, 10, 12, 3), (3, 7, 5, 3)]:
        img = rand(*shape)
        cases.append(([img], reference(img)))
    return model, cases


# ---------------------------------------------------------------- PyTorch (torch.onnx.export)

def torch_export(module, args, input_names, output_names, dynamic_axes, opset, path):
    import torch
    torch.onnx.export(module, args, path, input_names=input_names, output_names=output_names,
                      dynamic_axes=dynamic_axes, opset_version=opset, do_constant_folding=True)
    return onnx.load(path)


def torch_models():
    import torch
    from torch import nn
    torch.manual_seed(0)
    tmp = os.path.join(HERE, "_tmp.onnx")
    out = {}

    class Gate(nn.Module):  # data-dependent branch: torch.jit.script exports an If
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x):
            y = self.conv(x)
            if bool(x.mean() > 0.0):
                z = torch.relu(y) * 2.0 + 1.0
            else:
                z = torch.sigmoid(y) - y
            return z.flatten(1)

    gate = torch.jit.script(Gate().eval())
    m = torch_export(gate, (torch.randn(1, 3, 6, 6),), ["x"], ["y"], {"x": {0: "batch", 2: "h", 3: "w"},
                     "y": {0: "batch", 1: "features"}}, 16, tmp)
    cases = []
    # Inputs shifted so that one case takes each branch.
    for shape, shift in [((1, 3, 6, 6), 3.0), ((2, 3, 5, 4), -3.0)]:
        x = torch.randn(*shape) + shift
        cases.append(([x.numpy()], [gate(x).detach().numpy()]))
    out["torch_if"] = (m, cases)

    class LoopLSTM(nn.Module):  # an LSTM applied a data-dependent number of times: LSTM inside a Loop
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(4, 4, batch_first=False)

        def forward(self, x, steps: int):
            for _ in range(steps):
                x, _ = self.lstm(x)
            return x

    def export_loop_lstm():
        scripted = torch.jit.script(LoopLSTM().eval())
        mm = torch_export(scripted, (torch.randn(5, 1, 4), 2), ["x", "steps"], ["y"],
                          {"x": {0: "seq", 1: "batch"}, "y": {0: "seq", 1: "batch"}}, 16, tmp)
        return scripted, mm

    scripted, m = export_loop_lstm()
    assert any(n.op_type == "Loop" for n in m.graph.node), "expected the LSTM inside a Loop"
    cases = []
    for shape, steps in [((5, 1, 4), 2), ((3, 2, 4), 3)]:
        x = torch.randn(*shape)
        cases.append(([x.numpy(), np.array(steps, np.int64)], [scripted(x, steps).detach().numpy()]))
    out["torch_loop_lstm"] = (m, cases)

    class Small(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 6, 3, stride=2, padding=1)
            self.fc = nn.Linear(6, 5)

        def forward(self, x):
            y = torch.nn.functional.gelu(self.conv(x))
            return torch.softmax(self.fc(y.mean(dim=(2, 3))), dim=-1)

    small = Small().eval()
    m = torch_export(small, (torch.randn(1, 3, 8, 8),), ["x"], ["probs"], {"x": {0: "batch"},
                     "probs": {0: "batch"}}, 17, tmp)
    # Listed, unused domains (as exports with custom-op libraries registered leave them).
    m.opset_import.extend([helper.make_opsetid("ai.onnx.ml", 3), helper.make_opsetid("com.microsoft", 1)])
    cases = []
    with torch.no_grad():
        for shape in [(1, 3, 8, 8), (4, 3, 8, 8)]:
            x = torch.randn(*shape)
            cases.append(([x.numpy()], [small(x).numpy()]))
    out["torch_extra_domains"] = (m, cases)
    os.remove(tmp)
    return out


def main():
    for opset in (9, 10, 11):
        save(f"paddle_opset{opset}", *paddle_model(opset))
    for opset in (13, 18):
        save(f"tf2onnx_opset{opset}", *tf2onnx_model(opset))
    for name, (m, cases) in torch_models().items():
        save(name, m, cases)


if __name__ == "__main__":
    main()
