"""CLI tests of `kiln build --int8` (post-training quantization) on the CPU backend: calibration
from .npy files and images, the calibrators, the cache, and the errors."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cli_helpers import KilnTestCase, cuda_state, TensorProto, helper, np, numpy_helper  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RESNET = os.path.join(HERE, "..", "models", "data", "resnet_small")


def cosine(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


class Int8Cli(KilnTestCase):
    def setUp(self):
        super().setUp()
        self.model = os.path.join(RESNET, "model.onnx")
        self.input = os.path.join(RESNET, "input_0.npy")
        self.expected = np.load(os.path.join(RESNET, "expected_0.npy"))

    def calib_dir(self, name="calib", samples=8):
        """Calibration samples near the test input: files of one sample and of a batch of three."""
        d = self.path(name)
        os.makedirs(d, exist_ok=True)
        x = np.load(self.input)
        rng = np.random.default_rng(0)
        for i in range(samples - 3):
            np.save(os.path.join(d, f"s{i:02d}.npy"),
                    (x[i % x.shape[0]] + 0.3 * rng.standard_normal(x.shape[1:])).astype(np.float32))
        np.save(os.path.join(d, "zbatch.npy"), rng.standard_normal((3,) + x.shape[1:]).astype(np.float32))
        return d

    def run_plan(self, plan, out):
        self.ok("run", plan, "-i", f"input={self.input}", "-o", self.path(out))
        return np.load(self.path(out, "output_0.npy"))

    def test_build_and_run_each_calibrator(self):
        d = self.calib_dir()
        for algo in ("minmax", "entropy", "percentile=99.99"):
            plan = self.path(f"{algo}.plan")
            r = self.ok("build", self.model, "-o", plan, "--backend", "cpu", "--int8", "--calib-data", d,
                        "--calib-algo", algo, "--calib-batch", "2")
            self.assertIn("calibration: batch 4/4", r.stdout)
            self.assertIn(f"algorithm {algo}", r.stdout)
            # The 8-channel stride-1 convs and the 1x1 stride-2 downsample stay float (the INT8
            # kernels need 16 channels, or a window of 64-512 values at a stride >= 2); the
            # 3-channel stem and the 8-channel 3x3 stride-2 conv are quantized (space-to-depth).
            self.assertIn("int8: 10 layers quantized, 5 kept float", r.stdout)
            self.assertIn("kept float: node '/stages/stages.0/stages.0.0/conv1/Conv' (Conv", r.stdout)
            self.assertIn("8 input channels x 9 window taps, stride 1: the INT8 kernels need >= 16 channels", r.stdout)
            self.assertNotIn("kept float: node '/conv1/Conv'", r.stdout)
            self.assertRegex(r.stdout, r"layers +\d+ \(.*int8 \d+")
            self.assertRegex(r.stdout, r"\n  int8 +10 layers quantized, 5 kept float")
            got = self.run_plan(plan, algo)
            self.assertEqual(got.shape, self.expected.shape)
            self.assertGreater(cosine(got, self.expected), 0.99, algo)
            self.assertFalse(np.array_equal(got, self.expected))

    def test_report_names_layers_kept_float(self):
        # Two MatMuls; the second reads a value that is always 0 in calibration: no range, kept float.
        w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32), "w")
        zero = numpy_helper.from_array(np.zeros((4, 4), np.float32), "zero")
        model = self.save_model(
            "two.onnx",
            [helper.make_node("MatMul", ["x", "w"], ["a"], name="mm1"),
             helper.make_node("MatMul", ["x", "zero"], ["z"], name="mm_zero"),
             helper.make_node("MatMul", ["z", "w"], ["y"], name="mm2"),
             helper.make_node("Add", ["a", "y"], ["out"], name="add")],
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ("n", 4))],
            [helper.make_tensor_value_info("out", TensorProto.FLOAT, ("n", 4))], initializers=[w, zero])
        d = self.path("calib")
        os.makedirs(d)
        np.save(os.path.join(d, "x.npy"), np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32))
        r = self.ok("build", model, "-o", self.path("p.plan"), "--backend", "cpu", "--int8", "--calib-data", d,
                    "--calib-batch", "3", "--calib-algo", "minmax")
        self.assertIn("int8: 2 layers quantized, 1 kept float", r.stdout)
        self.assertIn("kept float: node 'mm2' (MatMul", r.stdout)
        self.assertIn("no calibrated range for input 'z'", r.stdout)
        self.assertIn("2 layers quantized, 1 kept float (reasons above)", r.stdout)
        self.ok("run", self.path("p.plan"), "--shapes", "x:2x4")

    def test_calib_batches_caps_the_batches(self):
        d = self.calib_dir()
        r = self.ok("build", self.model, "-o", self.path("p.plan"), "--backend", "cpu", "--int8", "--calib-data", d,
                    "--calib-batch", "3", "--calib-batches", "1", "--calib-algo", "minmax")
        self.assertIn("calibration: batch 1/1", r.stdout)
        self.assertIn("using 3 of 8 samples", r.stdout)

    def test_cache_is_written_then_used(self):
        d = self.calib_dir()
        cache = self.path("model.cache")
        args = ["--backend", "cpu", "--int8", "--calib-data", d, "--calib-batch", "4", "--calib-cache", cache]
        r1 = self.ok("build", self.model, "-o", self.path("a.plan"), *args)
        self.assertIn("wrote cache", r1.stdout)
        with open(cache) as f:
            lines = f.read().splitlines()
        self.assertEqual(lines[0], "kiln-calibration-cache 1 entropy")
        self.assertTrue(all(": 0x" in l for l in lines[1:]), lines[:3])
        # The cache alone suffices: the data folder is not read.
        r2 = self.ok("build", self.model, "-o", self.path("b.plan"), "--backend", "cpu", "--int8",
                     "--calib-cache", cache)
        self.assertIn("using cache", r2.stdout)
        self.assertNotIn("calibration: batch", r2.stdout)
        a, b = self.run_plan(self.path("a.plan"), "a"), self.run_plan(self.path("b.plan"), "b")
        self.assertTrue(np.array_equal(a, b))
        # Another algorithm: warned about and recalibrated, the cache replaced.
        r3 = self.ok("build", self.model, "-o", self.path("c.plan"), *args, "--calib-algo", "minmax")
        self.assertIn("warning: calibration cache", r3.stdout)
        self.assertIn("calibration: batch", r3.stdout)
        with open(cache) as f:
            self.assertEqual(f.readline().strip(), "kiln-calibration-cache 1 minmax")

    def test_images_with_preprocessing(self):
        d = self.path("images")
        os.makedirs(d)
        rng = np.random.default_rng(1)
        for i in range(4):  # binary PPMs of another size: resized to the input's 64x64
            px = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
            with open(os.path.join(d, f"img{i}.ppm"), "wb") as f:
                f.write(b"P6\n40 48\n255\n" + px.tobytes())
        r = self.ok("build", self.model, "-o", self.path("p.plan"), "--backend", "cpu", "--int8", "--calib-data", d,
                    "--calib-preprocess", "order=RGB,mean=0.485:0.456:0.406,std=0.229:0.224:0.225,scale=1/255",
                    "--calib-batch", "2")
        self.assertIn("calibration: batch 2/2", r.stdout)
        self.run_plan(self.path("p.plan"), "out")
        with open(os.path.join(d, "img1.ppm"), "wb") as f:
            f.write(b"P6\n40 48\n255\nshort")
        self.fails("build", self.model, "-o", self.path("q.plan"), "--backend", "cpu", "--int8", "--calib-data", d,
                   "--calib-preprocess", "scale=1/255", naming=("img1.ppm",))

    def test_calib_backend(self):
        d = self.calib_dir()
        args = ["--backend", "cpu", "--int8", "--calib-data", d, "--calib-batch", "4", "--calib-algo", "minmax"]
        r1 = self.ok("build", self.model, "-o", self.path("a.plan"), *args)
        self.assertIn("calibration: batch 2/2 (cpu)", r1.stdout)  # a CPU build calibrates on the CPU
        r2 = self.ok("build", self.model, "-o", self.path("b.plan"), *args, "--calib-backend", "cpu")
        self.assertIn("calibration: batch 2/2 (cpu)", r2.stdout)
        a, b = self.run_plan(self.path("a.plan"), "a"), self.run_plan(self.path("b.plan"), "b")
        self.assertTrue(np.array_equal(a, b))
        build = ["build", self.model, "-o", self.path("c.plan")]
        self.fails(*build, *args, "--calib-backend", "gpu", naming=("--calib-backend",))
        self.fails(*build, "--backend", "cpu", "--calib-backend", "cpu", naming=("--calib-backend apply to --int8",))
        if cuda_state() != "available":
            self.fails(*build, *args, "--calib-backend", "cuda", naming=("--calib-backend cuda",))

    def test_errors(self):
        build = ["build", self.model, "-o", self.path("p.plan"), "--backend", "cpu"]
        empty = self.path("empty")
        os.makedirs(empty)
        self.fails(*build, "--int8", naming=("--int8 needs calibration",))
        self.fails(*build, "--calib-data", empty, naming=("apply to --int8, --fp8, --best",))
        self.fails(*build, "--int8", "--calib-data", empty, naming=("is empty", empty))
        self.fails(*build, "--int8", "--calib-data", self.path("nope"), naming=("does not exist",))
        self.fails(*build, "--int8", "--calib-data", empty, "--calib-algo", "kl", naming=("unknown calibration",))
        self.fails(*build, "--int8", "--calib-data", empty, "--calib-algo", "percentile=120", naming=("(0, 100]",))
        self.fails(*build, "--int8", "--calib-data", empty, "--calib-preprocess", "resize=12",
                   naming=("resize=12",))
        bad = self.path("bad")
        os.makedirs(bad)
        np.save(os.path.join(bad, "a.npy"), np.zeros((3, 32, 32), np.float32))
        self.fails(*build, "--int8", "--calib-data", bad, naming=("a.npy", "input 'input'", "got [3,32,32]"))
        np.save(os.path.join(bad, "a.npy"), np.zeros((3, 64, 64), np.float64))
        self.fails(*build, "--int8", "--calib-data", bad, naming=("a.npy", "expected dtype float32, got float64"))
        with open(os.path.join(bad, "a.npy"), "wb") as f:
            f.write(b"garbage")
        self.fails(*build, "--int8", "--calib-data", bad, naming=("a.npy",))
        cache = self.path("broken.cache")
        with open(cache, "w") as f:
            f.write("hello\n")
        self.fails(*build, "--int8", "--calib-cache", cache, naming=("not a kiln calibration cache", cache))


if __name__ == "__main__":
    unittest.main()
