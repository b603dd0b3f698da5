#!/usr/bin/python3
"""Makes examples/tiny_cnn.onnx, a small image classifier with random (seeded) weights, plus an input.

    /usr/bin/python3 examples/make_example_model.py

Graph (opset 17, batch dim symbolic "N"):
    input[N,3,32,32] -> Conv 3x3 (8) -> Relu -> MaxPool 2x2 -> Conv 3x3 (16) -> Relu
                     -> GlobalAveragePool -> Flatten -> Gemm (10) -> Softmax -> probabilities[N,10]
Writes tiny_cnn.onnx, tiny_cnn_input.npy (1x3x32x32) and tiny_cnn_expected.npy, the output computed
here by a plain numpy implementation (the ctest `models.example_tiny_cnn` checks kiln against it).
Needs only onnx and numpy.
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))


def conv2d_same(x, w, b):
    """3x3 convolution, stride 1, zero padding 1 (NCHW, OIHW)."""
    n, c, h, wd = x.shape
    k = w.shape[2]
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, w.shape[0], h, wd), dtype=np.float64)
    for i in range(k):
        for j in range(k):
            patch = xp[:, :, i:i + h, j:j + wd]  # N,C,H,W
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    return out + b[None, :, None, None]


def reference(x, p):
    y = np.maximum(conv2d_same(x.astype(np.float64), p["w1"], p["b1"]), 0)
    n, c, h, w = y.shape
    y = y.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))
    y = np.maximum(conv2d_same(y, p["w2"], p["b2"]), 0)
    y = y.mean(axis=(2, 3))
    logits = y @ p["wf"].T + p["bf"]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def main():
    rng = np.random.default_rng(2024)
    p = {
        "w1": rng.normal(0, 0.3, (8, 3, 3, 3)), "b1": rng.normal(0, 0.1, 8),
        "w2": rng.normal(0, 0.15, (16, 8, 3, 3)), "b2": rng.normal(0, 0.1, 16),
        "wf": rng.normal(0, 0.5, (10, 16)), "bf": rng.normal(0, 0.1, 10),
    }
    p = {k: v.astype(np.float32) for k, v in p.items()}
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], name="conv2", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["logits"], name="fc", transB=1),
        helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=-1),
    ]
    graph = helper.make_graph(
        nodes, "tiny_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])],
        initializer=[numpy_helper.from_array(v, k) for k, v in p.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="kiln-example")
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, os.path.join(HERE, "tiny_cnn.onnx"))

    x = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    np.save(os.path.join(HERE, "tiny_cnn_input.npy"), x)
    np.save(os.path.join(HERE, "tiny_cnn_expected.npy"), reference(x, p))
    print(f"wrote {HERE}/tiny_cnn.onnx, tiny_cnn_input.npy, tiny_cnn_expected.npy")


if __name__ == "__main__":
    main()
