"""Tests of the mixed-precision flags of `kiln build`: --layer-precision, --precision-constraints,
the fp32 guard (--no-fp32-guard), --best and --accuracy-budget with --calib-data."""
import os
import unittest

from cli_helpers import KilnTestCase, TensorProto, helper, np, numpy_helper


def layer_precision(stdout, name):
    """The precision column of a layer in `kiln build -v`'s layer list."""
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) > 3 and parts[0].isdigit() and parts[1] == name:
            return parts[3]
    raise AssertionError(f"no layer {name} in:\n{stdout}")


class Precision(KilnTestCase):
    def mlp(self):
        rng = np.random.default_rng(0)
        w1 = rng.uniform(-0.5, 0.5, (16, 16)).astype(np.float32)
        w2 = rng.uniform(-0.5, 0.5, (16, 8)).astype(np.float32)
        return self.save_model("mlp.onnx", [helper.make_node("MatMul", ["x", "w1"], ["a"], name="mm1"),
                                            helper.make_node("Relu", ["a"], ["r"], name="relu"),
                                            helper.make_node("MatMul", ["r", "w2"], ["y"], name="mm2")],
                               [helper.make_tensor_value_info("x", TensorProto.FLOAT, (4, 16))],
                               [helper.make_tensor_value_info("y", TensorProto.FLOAT, (4, 8))],
                               [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])

    def build(self, model, *flags):
        return self.ok("build", model, "--backend", "cpu", "-o", "m.plan", "-v", *flags)

    def test_layer_precision_keeps_a_node_in_fp32(self):
        r = self.build(self.mlp(), "--fp16", "--layer-precision", "mm2:fp32")
        self.assertEqual(layer_precision(r.stdout, "mm1"), "fp16")
        self.assertEqual(layer_precision(r.stdout, "mm2"), "fp32")
        self.assertIn("layer precision: 'mm2' (MatMul) fp32", r.stdout)
        self.ok("run", "m.plan")

    def test_glob_sets_fp16_in_a_float32_build(self):
        r = self.build(self.mlp(), "--layer-precision", "mm*:fp16")
        self.assertEqual(layer_precision(r.stdout, "mm1"), "fp16")
        self.assertEqual(layer_precision(r.stdout, "relu"), "fp32")
        self.assertEqual(layer_precision(r.stdout, "mm2"), "fp16")

    def test_obey_fails_naming_the_layer(self):
        self.fails("build", self.mlp(), "--backend", "cpu", "--fp16", "-o", "m.plan", "--layer-precision",
                   "relu:int8", "--precision-constraints", "obey",
                   naming=("node 'relu'", "Conv, MatMul and Gemm only", "obey"))
        self.fails("build", self.mlp(), "--backend", "cpu", "--fp16", "-o", "m.plan", "--layer-precision",
                   "conv9:fp32", "--precision-constraints", "obey", naming=("conv9:fp32 matches no node",))
        self.assertFalse(os.path.exists(self.path("m.plan")))

    def test_prefer_warns_and_builds(self):
        r = self.build(self.mlp(), "--fp16", "--layer-precision", "relu:int8,conv9:fp32")
        self.assertIn("warning: --layer-precision relu:int8: node 'relu'", r.stdout)
        self.assertIn("warning: --layer-precision conv9:fp32 matches no node", r.stdout)
        self.assertEqual(layer_precision(r.stdout, "relu"), "fp16")

    def test_flag_errors(self):
        m = self.mlp()
        self.fails("build", m, "-o", "m.plan", "--layer-precision", "mm1:fp64", naming=("unknown precision 'fp64'",))
        self.fails("build", m, "-o", "m.plan", "--layer-precision", "mm1", naming=("NAME:PRECISION",))
        self.fails("build", m, "-o", "m.plan", "--precision-constraints", "maybe", naming=("--precision-constraints",))
        self.fails("build", m, "-o", "m.plan", "--fp16", "--accuracy-budget", "0.01", naming=("--calib-data",))
        os.mkdir(self.path("calib"))
        self.fails("build", m, "-o", "m.plan", "--accuracy-budget", "0.01", "--calib-data", "calib",
                   naming=("--fp16, --bf16 or --best",))
        self.fails("build", m, "--backend", "cpu", "-o", "m.plan", "--fp16", "--accuracy-budget", "0.01",
                   "--calib-data", "calib", naming=("holds no .npy files",))
        self.fails("build", m, "-o", "m.plan", "--fp16", "--accuracy-budget", "-1", "--calib-data", "calib",
                   naming=("--accuracy-budget",))

    def reduce_sum(self):
        return self.save_model("sum.onnx", [helper.make_node("ReduceSum", ["x", "axes"], ["y"], name="sum")],
                               [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 8192))],
                               [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, 1))],
                               [numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")], opset=13)

    def test_guard_keeps_a_large_reduction_in_fp32(self):
        r = self.build(self.reduce_sum(), "--fp16")
        self.assertIn("fp32 guard: 'sum' (ReduceSum) kept in fp32: ReduceSum over 8192 elements", r.stdout)
        self.assertEqual(layer_precision(r.stdout, "sum"), "fp32")
        np.save(self.path("x.npy"), np.full((1, 8192), 10, dtype=np.float32))
        self.ok("run", "m.plan", "--input", "x=x.npy", "-o", "out")
        self.assertEqual(float(np.load(self.path("out", "output_0.npy")).ravel()[0]), 81920.0)
        r = self.build(self.reduce_sum(), "--fp16", "--no-fp32-guard")
        self.assertNotIn("fp32 guard", r.stdout)
        self.assertEqual(layer_precision(r.stdout, "sum"), "fp16")

    def test_best_without_calibration_data(self):
        r = self.build(self.mlp(), "--best")
        self.assertIn("--best without calibration data: fp16 + tf32", r.stdout)
        self.assertEqual(layer_precision(r.stdout, "mm1"), "fp16")

    def sensitive_cnn(self):
        rng = np.random.default_rng(1)
        w1 = rng.uniform(-0.5, 0.5, (8, 4, 3, 3)).astype(np.float32)
        w2 = rng.uniform(-1e5, 1e5, (8, 8, 3, 3)).astype(np.float32)  # beyond float16's 65504
        w3 = rng.uniform(-1e-3, 1e-3, (4, 8, 3, 3)).astype(np.float32)
        convs = [helper.make_node("Conv", [i, w], [o], name=n, pads=[1, 1, 1, 1])
                 for i, w, o, n in (("x", "w1", "a", "conv1"), ("a", "w2", "b", "conv2"), ("b", "w3", "y", "conv3"))]
        return self.save_model("cnn.onnx", convs, [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 4, 8, 8))],
                               [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, 4, 8, 8))],
                               [numpy_helper.from_array(w, n) for w, n in ((w1, "w1"), (w2, "w2"), (w3, "w3"))])

    def test_accuracy_budget_keeps_the_sensitive_layer(self):
        model = self.sensitive_cnn()
        os.mkdir(self.path("calib"))
        rng = np.random.default_rng(2)
        for i in range(3):
            np.save(self.path("calib", f"b{i}.npy"), rng.uniform(1e-3, 2e-3, (1, 4, 8, 8)).astype(np.float32))
        r = self.build(model, "--fp16", "--accuracy-budget", "0.01", "--calib-data", "calib")
        self.assertIn("kept fp32: 'conv2' (Conv) sensitivity inf", r.stdout)
        self.assertIn("with 1 unit(s) kept in fp32", r.stdout)
        self.assertEqual(layer_precision(r.stdout, "conv1"), "fp16")
        self.assertEqual(layer_precision(r.stdout, "conv2"), "fp32")
        self.assertEqual(layer_precision(r.stdout, "conv3"), "fp16")
        np.save(self.path("x.npy"), np.load(self.path("calib", "b0.npy")))
        self.ok("run", "m.plan", "--input", "x=x.npy", "-o", "out")
        self.assertTrue(np.all(np.isfinite(np.load(self.path("out", "output_0.npy")))))
        # Without the budget the fp16 plan overflows.
        self.build(model, "--fp16")
        self.ok("run", "m.plan", "--input", "x=x.npy", "-o", "out16")
        self.assertFalse(np.all(np.isfinite(np.load(self.path("out16", "output_0.npy")))))


if __name__ == "__main__":
    unittest.main()
