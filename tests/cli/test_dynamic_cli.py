"""Tests of optimization profiles on the command line: `kiln build --min-shapes/--opt-shapes/
--max-shapes`, `kiln run PLAN --shapes` within and outside the profile, flag errors, and the two
dynamic models of tests/data/dynamic at 3 sizes x 2 batches from one plan (CPU; CUDA too when this
machine has a GPU)."""
import os
import unittest

from cli_helpers import KilnTestCase, TensorProto, cuda_state, helper, np

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "dynamic")


def rel_l2(a, b):
    a = a.astype(np.float64).ravel()
    b = b.astype(np.float64).ravel()
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)


class Profiles(KilnTestCase):
    def relu_model(self):
        return self.save_model("m.onnx", [helper.make_node("Relu", ["x"], ["y"], name="relu")],
                               [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
                               [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])])

    def test_profile_plan_runs_within_and_refuses_outside(self):
        self.relu_model()
        r = self.ok("build", "m.onnx", "-o", "m.kplan", "--backend", "cpu", "--min-shapes", "x:1x4",
                    "--opt-shapes", "x:2x4", "--max-shapes", "x:8x4")
        self.assertIn("profile 0", r.stdout)
        self.assertIn("x: 1x4 .. 8x4 (opt 2x4)", r.stdout)
        for n in (1, 5, 8):
            self.ok("run", "m.kplan", "--shapes", f"x:{n}x4", "-o", f"out{n}")
            self.assertEqual(np.load(self.path(f"out{n}", "output_0.npy")).shape, (n, 4))
        self.fails("run", "m.kplan", "--shapes", "x:9x4", naming=("input 'x'", "9x4", "1x4 .. 8x4"))
        r = self.ok("inspect", "m.kplan")
        self.assertIn("profile  0: x: 1x4 .. 8x4", r.stdout)

    def test_two_profiles(self):
        self.relu_model()
        self.ok("build", "m.onnx", "-o", "m.kplan", "--backend", "cpu",
                "--min-shapes", "x:1x4", "--opt-shapes", "x:2x4", "--max-shapes", "x:4x4",
                "--min-shapes", "x:16x4", "--opt-shapes", "x:16x4", "--max-shapes", "x:32x4")
        r = self.ok("inspect", "m.kplan", "--json")
        self.assertIn('"profiles"', r.stdout)
        self.assertIn("16", r.stdout)

    def test_flag_errors(self):
        self.relu_model()
        self.fails("build", "m.onnx", "-o", "m.kplan", "--backend", "cpu", "--min-shapes", "x:1x4",
                   "--opt-shapes", "x:2x4", naming=("--min-shapes, --opt-shapes and --max-shapes",))
        self.fails("build", "m.onnx", "-o", "m.kplan", "--backend", "cpu", "--min-shapes", "x1x4",
                   "--opt-shapes", "x:2x4", "--max-shapes", "x:4x4", naming=("--min-shapes", "x1x4"))
        self.fails("build", "m.onnx", "-o", "m.kplan", "--backend", "cpu", "--min-shapes", "x:4x4",
                   "--opt-shapes", "x:2x4", "--max-shapes", "x:8x4", naming=("'x'", "min <= opt <= max"))
        self.fails("build", "m.onnx", "-o", "m.kplan", "--backend", "cpu", "--min-shapes", "z:1x4",
                   "--opt-shapes", "z:2x4", "--max-shapes", "z:8x4", naming=("'z'", "'x'"))
        self.fails("build", "m.onnx", "-o", "m.kplan", "--backend", "cpu", "--min-shapes", "x:1x3",
                   "--opt-shapes", "x:2x3", "--max-shapes", "x:8x3", naming=("'x'", "fixed to 4"))


class DynamicModels(KilnTestCase):
    PROFILES = {"detector": ("x:1x3x32x32", "x:1x3x48x64", "x:3x3x64x96"),
                "recognizer": ("x:1x3x32x32", "x:1x3x32x64", "x:2x3x32x100")}

    def check(self, name, backend):
        lo, opt, hi = self.PROFILES[name]
        extra = ["--no-tf32"] if backend == "cuda" else []
        self.ok("build", os.path.join(DATA, name + ".onnx"), "-o", "p.kplan", "--backend", backend,
                "--min-shapes", lo, "--opt-shapes", opt, "--max-shapes", hi, *extra)
        for i in range(6):
            x = os.path.join(DATA, f"{name}_{i}_input.npy")
            self.ok("run", "p.kplan", "--input", f"x={x}", "-o", f"out{i}")
            got = np.load(self.path(f"out{i}", "output_0.npy"))
            want = np.load(os.path.join(DATA, f"{name}_{i}_output.npy"))
            self.assertEqual(got.shape, want.shape, f"{name} case {i}")
            self.assertLessEqual(rel_l2(got, want), 1e-4, f"{name} case {i} {want.shape}")

    def test_detector_cpu(self):
        self.check("detector", "cpu")

    def test_recognizer_cpu(self):
        self.check("recognizer", "cpu")

    @unittest.skipUnless(cuda_state() == "available", "no usable GPU")
    def test_detector_cuda(self):
        self.check("detector", "cuda")

    @unittest.skipUnless(cuda_state() == "available", "no usable GPU")
    def test_recognizer_cuda(self):
        self.check("recognizer", "cuda")


class DataDependent(KilnTestCase):
    """NonZero -> Transpose and TopK with K an input (docs/dynamic-shapes.md): the CUDA plan's outputs
    at two inputs with different counts equal the CPU's (CUDA part only with a GPU)."""

    def model(self):
        return self.save_model(
            "dd.onnx",
            [helper.make_node("NonZero", ["m"], ["nz"], name="nonzero"),
             helper.make_node("Transpose", ["nz"], ["nzt"], perm=[1, 0], name="transpose"),
             helper.make_node("TopK", ["x", "k"], ["vals", "idx"], axis=-1, name="topk")],
            [helper.make_tensor_value_info("m", TensorProto.FLOAT, [40]),
             helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 50]),
             helper.make_tensor_value_info("k", TensorProto.INT64, [1])],
            [helper.make_tensor_value_info("nzt", TensorProto.INT64, ["n", 1]),
             helper.make_tensor_value_info("vals", TensorProto.FLOAT, [3, "k"]),
             helper.make_tensor_value_info("idx", TensorProto.INT64, [3, "k"])])

    def inputs(self, case):
        rng = np.random.default_rng(case)
        m = rng.uniform(-1, 1, 40).astype(np.float32)
        m[rng.uniform(0, 1, 40) < (0.3 if case == 0 else 0.8)] = 0
        np.save(self.path(f"m{case}.npy"), m)
        np.save(self.path(f"x{case}.npy"), rng.standard_normal((3, 50)).astype(np.float32))
        np.save(self.path(f"k{case}.npy"), np.array([4 if case == 0 else 11], np.int64))
        return ["-i", f"m=m{case}.npy", "-i", f"x=x{case}.npy", "-i", f"k=k{case}.npy"], int((m != 0).sum())

    def outputs(self, folder):
        return [np.load(self.path(folder, f"output_{i}.npy")) for i in range(3)]

    def test_cpu_model_counts(self):
        self.model()
        for case in (0, 1):
            args, count = self.inputs(case)
            self.ok("run", "dd.onnx", *args, "-o", f"cpu{case}")
            nzt, vals, idx = self.outputs(f"cpu{case}")
            self.assertEqual(nzt.shape, (count, 1))
            self.assertEqual(vals.shape, (3, 4 if case == 0 else 11))

    @unittest.skipUnless(cuda_state() == "available", "no usable GPU")
    def test_cuda_plan_matches_cpu(self):
        self.model()
        self.ok("build", "dd.onnx", "-o", "dd.kplan", "--backend", "cuda")
        for case in (0, 1):
            args, _ = self.inputs(case)
            self.ok("run", "dd.onnx", *args, "-o", f"cpu{case}")
            self.ok("run", "dd.kplan", *args, "-o", f"gpu{case}")
            for got, want in zip(self.outputs(f"gpu{case}"), self.outputs(f"cpu{case}")):
                self.assertEqual(got.shape, want.shape)
                np.testing.assert_array_equal(got, want)
        r = self.ok("bench", "dd.kplan", "--cuda-graph", "--duration", "0.2", "--warmup", "20", *self.inputs(0)[0])
        self.assertIn("synchronizes the stream after 2 layers", r.stdout)

    @unittest.skipUnless(cuda_state() == "available", "no usable GPU")
    def test_cuda_refuses_unique(self):
        self.save_model("u.onnx", [helper.make_node("Unique", ["x"], ["y"], name="uniq")],
                        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [10])],
                        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n"])])
        self.fails("build", "u.onnx", "-o", "u.kplan", "--backend", "cuda", naming=("uniq", "Unique"))


if __name__ == "__main__":
    unittest.main()
