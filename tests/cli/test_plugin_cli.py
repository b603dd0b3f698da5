"""Tests of `--plugin`: the HSwish example library (examples/plugins/hswish) with kiln run, build,
inspect and bench, and the errors without it or with a bad library."""
import os
import unittest

from cli_helpers import KilnTestCase, cuda_state, kiln_binary, np

EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "plugins", "hswish")
MODELS = ("hswish_plugin_op.onnx", "hswish_domain_op.onnx")


def plugin_library():
    """$KILN_HSWISH_PLUGIN, else next to the kiln binary: the build tree, or a scripts/pack-device bundle."""
    kiln_dir = os.path.dirname(kiln_binary())
    candidates = [os.environ.get("KILN_HSWISH_PLUGIN"),
                  os.path.join(kiln_dir, "examples", "plugins", "libkiln_hswish.so"),
                  os.path.join(kiln_dir, "lib", "libkiln_hswish.so")]
    for path in candidates:
        if path and os.path.isfile(path):
            return os.path.abspath(path)
    raise AssertionError(f"HSwish plugin library not found (tried {candidates}): build target kiln_hswish")


def example(name):
    return os.path.abspath(os.path.join(EXAMPLE, name))


class PluginCli(KilnTestCase):
    def setUp(self):
        super().setUp()
        self.lib = plugin_library()
        self.expected = np.load(example("hswish_expected.npy"))

    def check_output(self, out_dir, tol=1e-5):
        y = np.load(self.path(out_dir, "output_0.npy"))
        self.assertEqual(y.shape, self.expected.shape)
        self.assertLess(float(np.max(np.abs(y - self.expected))), tol)

    def test_run_model_matches_pytorch_on_cpu(self):
        for model in MODELS:
            with self.subTest(model=model):
                self.ok("run", "--plugin", self.lib, example(model), "--backend", "cpu",
                        "--input", "x=" + example("hswish_input.npy"), "-o", "out_" + model)
                self.check_output("out_" + model)

    def test_build_plan_then_run_it(self):
        for model in MODELS:
            with self.subTest(model=model):
                plan = model + ".kplan"
                self.ok("build", example(model), "-o", plan, "--backend", "cpu", "--plugin", self.lib)
                r = self.ok("inspect", plan, "--plugin", self.lib)
                self.assertIn("HSwish", r.stdout)
                self.ok("run", plan, "--plugin", self.lib, "--input", "x=" + example("hswish_input.npy"),
                        "-o", "plan_" + model)
                self.check_output("plan_" + model)
                # The plan needs the plugin at load time too.
                self.fails("run", plan, "--input", "x=" + example("hswish_input.npy"),
                           naming=("plugin 'HSwish' (version 1)", "--plugin"))
                self.ok("bench", plan, "--plugin", self.lib, "--shapes", "x:2x3x8x8", "--iterations", "3",
                        "--warmup", "0", "--duration", "0")

    def test_without_plugin_is_a_clear_error(self):
        self.fails("run", example("hswish_domain_op.onnx"), "--backend", "cpu",
                   naming=("kiln.example.HSwish", "--plugin"))
        self.fails("run", example("hswish_plugin_op.onnx"), "--backend", "cpu",
                   naming=("Plugin 'HSwish'", "--plugin"))
        self.fails("build", example("hswish_domain_op.onnx"), "-o", "p.kplan", "--backend", "cpu",
                   naming=("kiln.example.HSwish", "--plugin"))

    def test_bad_plugin_libraries(self):
        self.fails("run", "--plugin", "missing_lib.so", example("hswish_plugin_op.onnx"),
                   naming=("cannot load plugin library 'missing_lib.so'",))
        with open(self.path("fake.so"), "w") as f:
            f.write("not a library\n")
        self.fails("run", "--plugin", "fake.so", example("hswish_plugin_op.onnx"), naming=("'fake.so'",))

    @unittest.skipUnless(cuda_state() == "available", "no usable GPU")
    def test_run_on_cuda_matches_pytorch(self):
        for model in MODELS:
            with self.subTest(model=model):
                self.ok("run", "--plugin", self.lib, example(model), "--backend", "cuda",
                        "--input", "x=" + example("hswish_input.npy"), "-o", "cuda_" + model)
                self.check_output("cuda_" + model, tol=1e-4)


if __name__ == "__main__":
    unittest.main()
