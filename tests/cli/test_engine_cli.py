"""Tests of `kiln build`, `kiln run PLAN`, `kiln bench`, `kiln inspect` and the example program,
on the CPU backend (GPU plans are covered by the GPU tests)."""
import json
import math
import os
import subprocess
import unittest

from cli_helpers import KilnTestCase, TensorProto, cuda_state, helper, np, numpy_helper

IN, OUT = 16, 10


class EngineTestCase(KilnTestCase):
    def mlp(self, name="m.onnx", batch="batch"):
        """y = Relu(x @ W + B), x float32[batch, 16] -> y float32[batch, 10]; returns (W, B)."""
        rng = np.random.RandomState(3)
        w = rng.randn(IN, OUT).astype(np.float32)
        b = rng.randn(OUT).astype(np.float32)
        self.save_model(name,
                        [helper.make_node("MatMul", ["x", "W"], ["m"], name="mm"),
                         helper.make_node("Add", ["m", "B"], ["a"], name="add"),
                         helper.make_node("Relu", ["a"], ["y"], name="relu")],
                        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, IN])],
                        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, OUT])],
                        initializers=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")])
        return w, b

    def outputs(self, out_dir):
        with open(self.path(out_dir, "outputs.json")) as f:
            doc = json.load(f)
        return doc, [np.load(self.path(out_dir, o["file"])) for o in doc["outputs"]]

    def cpu_plan(self, name="m.kplan", shapes="x:4x16"):
        args = ["build", "m.onnx", "-o", name, "--backend", "cpu"] + (["--shapes", shapes] if shapes else [])
        return self.ok(*args)


class Build(EngineTestCase):
    def test_build_then_run_plan_gives_the_models_outputs(self):
        w, b = self.mlp()
        r = self.cpu_plan()
        for needle in ("building m.onnx for the cpu backend", "[1/4]", "build report", "target       cpu",
                       "layers       3 (fp32 3)", "weights      680 B (680 bytes)", "plan         m.kplan"):
            self.assertIn(needle, r.stdout)
        with open(self.path("m.kplan"), "rb") as f:
            self.assertEqual(f.read(8), b"KILNPLAN")
        x = np.random.RandomState(5).randn(4, IN).astype(np.float32)
        np.save(self.path("x.npy"), x)
        r = self.ok("run", "m.kplan", "--input", "x=x.npy", "-o", "from_plan", "-v")
        self.assertRegex(r.stdout, r"backend cpu; load [0-9.]+ ms, prepare [0-9.]+ ms, run [0-9.]+ ms")
        self.ok("run", "m.onnx", "--input", "x=x.npy", "-o", "from_model", "--backend", "cpu")
        doc, from_plan = self.outputs("from_plan")
        _, from_model = self.outputs("from_model")
        self.assertEqual(doc["backend"], "cpu")
        np.testing.assert_array_equal(from_plan[0], from_model[0])
        np.testing.assert_allclose(from_plan[0], np.maximum(x @ w + b, 0), rtol=1e-5, atol=1e-5)

    def test_dynamic_plan_runs_any_batch_and_random_inputs(self):
        self.mlp()
        self.cpu_plan(shapes=None)
        r = self.ok("run", "m.kplan", "--shapes", "x:7x16")
        self.assertIn("output 'y': float32[7x10]", r.stdout)
        self.fails("run", "m.kplan", naming=["'x'", "--shapes"])

    def test_verbose_lists_layers_and_rebuild_replaces_the_plan(self):
        self.mlp()
        r = self.ok("build", "m.onnx", "-o", "m.kplan", "--backend", "cpu", "--shapes", "x:2x16", "-v")
        self.assertRegex(r.stdout, r"0\s+mm\s+MatMul\s+fp32\s+-\s+x float32\[2,16\], W float32\[16,10\] const")
        self.assertRegex(r.stdout, r"2\s+relu\s+Relu")
        first = os.path.getmtime(self.path("m.kplan"))
        self.cpu_plan(shapes="x:3x16")
        self.assertIn("float32[3,16]", self.ok("inspect", "m.kplan").stdout)
        self.assertGreaterEqual(os.path.getmtime(self.path("m.kplan")), first)
        self.assertEqual(sorted(os.listdir(self.dir)), ["m.kplan", "m.onnx"])  # no temporary files left

    def test_fp16_plan_has_fp16_layers_and_float32_bindings(self):
        self.mlp()
        r = self.ok("build", "m.onnx", "-o", "m.kplan", "--backend", "cpu", "--fp16")
        self.assertRegex(r.stdout, r"layers\s+\d+ \(fp16 \d+")
        self.assertNotIn("note: --fp16", r.stdout)
        # The plan keeps float32 inputs/outputs (Casts at the boundary) and runs.
        self.ok("run", "m.kplan", "--shapes", "x:2x16")

    def test_build_errors(self):
        self.mlp()
        self.fails("build", "nope.onnx", "-o", "p.kplan", naming=["nope.onnx"])
        self.fails("build", "m.onnx", naming=["--output"])
        self.cpu_plan()
        self.fails("build", "m.kplan", "-o", "p.kplan", naming=["m.kplan", "plan already"])
        os.makedirs(self.path("folder"))
        self.fails("build", "m.onnx", "-o", "folder", naming=["folder"])
        self.fails("build", "m.onnx", "-o", "p.kplan", "--backend", "tpu", naming=["tpu"])
        self.fails("build", "m.onnx", "-o", "p.kplan", "--backend", "cpu", "--shapes", "z:1x16",
                   naming=["'z'", "'x'"])
        self.fails("build", "m.onnx", "-o", "p.kplan", "--backend", "cpu", "--shapes", "x:1x17",
                   naming=["'x'", "does not fit"])
        self.fails("build", "m.onnx", "-o", "p.kplan", "--workspace", "-3", naming=["--workspace"])
        self.save_model("u.onnx", [helper.make_node("NoSuchOpAbc", ["x"], ["y"], name="weird")],
                        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
        self.fails("build", "u.onnx", "-o", "p.kplan", "--backend", "cpu", naming=["NoSuchOpAbc", "'weird'"])
        self.assertFalse(os.path.exists(self.path("p.kplan")))
        if cuda_state() == "absent":
            self.fails("build", "m.onnx", "-o", "p.kplan", "--backend", "cuda", naming=["no CUDA backend"])


class PlanFiles(EngineTestCase):
    def plan_bytes(self):
        self.mlp()
        self.cpu_plan()
        with open(self.path("m.kplan"), "rb") as f:
            return f.read()

    def test_truncated_plan_is_a_clear_error(self):
        data = self.plan_bytes()
        for size, why in ((len(data) // 2, "truncated"), (40, "truncated")):
            with open(self.path("cut.kplan"), "wb") as f:
                f.write(data[:size])
            for cmd in ("run", "inspect", "bench"):
                self.fails(cmd, "cut.kplan", naming=["cut.kplan", why])

    def test_corrupt_plan_is_a_clear_error(self):
        data = bytearray(self.plan_bytes())
        data[len(data) // 2] ^= 0x5A
        with open(self.path("bad.kplan"), "wb") as f:
            f.write(data)
        self.fails("run", "bad.kplan", naming=["bad.kplan", "corrupt"])
        self.fails("inspect", "bad.kplan", naming=["bad.kplan", "corrupt"])

    def test_build_options_do_not_apply_to_plans(self):
        self.plan_bytes()
        self.fails("bench", "m.kplan", "--fp16", naming=["--fp16", "m.kplan", "built already"])
        self.fails("inspect", "m.kplan", "--shapes", "x:1x16", naming=["--shapes", "m.kplan"])
        r = self.kiln("run", "m.kplan", "--backend", "cuda")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("cuda", r.stderr.lower())
        if cuda_state() == "available":
            self.assertIn("does not apply", r.stderr)


class Bench(EngineTestCase):
    def test_cpu_summary_and_exports(self):
        self.mlp()
        self.cpu_plan()
        r = self.ok("bench", "m.kplan", "--warmup", "0", "--iterations", "25", "--duration", "0",
                    "--export-times", "t.json", "--export-profile", "p.json", "--export-layer-info", "l.json")
        for needle in ("=== performance summary: m.kplan on cpu ===", "1 stream,", "queries/s",
                       "items/s (batch 4)", "median", "p99", "latency", "enqueue", "compute",
                       "total host walltime", "host memory  weights 680 B", "slowest layers"):
            self.assertIn(needle, r.stdout)
        self.assertNotIn("H2D", r.stdout)  # the CPU copies nothing
        with open(self.path("t.json")) as f:
            times = json.load(f)
        summary, rows = times["summary"], times["times"]
        self.assertGreaterEqual(summary["queries"], 25)
        self.assertEqual(len(rows), summary["queries"])
        self.assertEqual(summary["batch"], 4)
        lat = np.array([t["latency_ms"] for t in rows])
        s = summary["latency_ms"]
        self.assertAlmostEqual(s["min"], lat.min())
        self.assertAlmostEqual(s["max"], lat.max())
        self.assertAlmostEqual(s["mean"], lat.mean())
        self.assertAlmostEqual(s["median"], float(np.median(lat)))
        srt = np.sort(lat)
        for p in (90, 95, 99):  # nearest rank
            self.assertAlmostEqual(s[f"p{p}"], srt[max(1, math.ceil(p / 100 * len(srt))) - 1])
        self.assertAlmostEqual(summary["items_per_second"], 4 * summary["queries_per_second"])
        with open(self.path("p.json")) as f:
            profile = json.load(f)
        self.assertEqual([l["name"] for l in profile["layers"]], ["mm", "add", "relu"])
        self.assertEqual([l["op"] for l in profile["layers"]], ["MatMul", "Add", "Relu"])
        self.assertAlmostEqual(sum(l["percent"] for l in profile["layers"]), 100, places=3)
        self.assertEqual(profile["iterations"], 25)
        with open(self.path("l.json")) as f:
            info = json.load(f)
        self.assertEqual(info["layers"][0]["precision"], "fp32")
        self.assertEqual(info["layers"][0]["inputs"][0]["shape"], [4, 16])

    def test_model_with_streams_and_no_transfers(self):
        self.mlp()
        r = self.ok("bench", "m.onnx", "--backend", "cpu", "--shapes", "x:2x16", "--streams", "3", "--warmup", "0",
                    "--iterations", "5", "--duration", "0", "--no-data-transfers", "--export-times", "t.json")
        self.assertIn("3 streams", r.stdout)
        self.assertIn("data transfers off", r.stdout)
        self.assertIn("items/s (batch 2)", r.stdout)
        with open(self.path("t.json")) as f:
            rows = json.load(f)["times"]
        for stream in range(3):
            self.assertGreaterEqual(sum(1 for t in rows if t["stream"] == stream), 5)
        self.assertEqual([t["start_ms"] for t in rows], sorted(t["start_ms"] for t in rows))

    def test_bench_errors(self):
        self.mlp()
        self.cpu_plan()
        self.fails("bench", "m.kplan", "--cuda-graph", naming=["--cuda-graph"])
        self.fails("bench", "m.kplan", "--streams", "0", naming=["--streams"])
        self.fails("bench", "m.kplan", "--iterations", "0", naming=["--iterations"])
        self.fails("bench", "missing.kplan", naming=["missing.kplan"])
        self.fails("bench", "m.onnx", "--backend", "cpu", naming=["'x'", "--shapes"])
        self.fails("bench", "m.kplan", "--export-times", self.path("nodir", "t.json"), "--duration", "0",
                   "--warmup", "0", naming=["t.json"])


class Inspect(EngineTestCase):
    def test_plan_as_text_and_json(self):
        self.mlp()
        self.cpu_plan()
        r = self.ok("inspect", "m.kplan")
        for needle in ("plan     m.kplan (kiln ", "plan format 1", "target   cpu", "input    x float32[4,16]",
                       "output   y float32[4,10]", "memory   weights 680 B", "layers   3 (fp32 3)"):
            self.assertIn(needle, r.stdout)
        self.assertRegex(r.stdout, r"1\s+add\s+Add\s+fp32\s+-\s+m float32\[4,10\], B float32\[10\] const -> a")
        doc = json.loads(self.ok("inspect", "m.kplan", "--json").stdout)
        self.assertEqual(doc["target"], {"backend": "cpu"})
        self.assertEqual(doc["plan_format_version"], 1)
        self.assertEqual(doc["inputs"], [{"name": "x", "dtype": "float32", "shape": [4, 16]}])
        self.assertEqual(doc["memory"]["weights_bytes"], (IN * OUT + OUT) * 4)
        self.assertEqual([l["op"] for l in doc["layers"]], ["MatMul", "Add", "Relu"])
        self.assertEqual(doc["layers"][0]["inputs"][1], {"name": "W", "dtype": "float32", "shape": [16, 10],
                                                         "constant": True})
        self.assertEqual(doc["build_options"]["shapes"], {"x": [4, 16]})

    def test_model_is_built_in_memory(self):
        self.mlp()
        r = self.ok("inspect", "m.onnx", "--backend", "cpu")
        self.assertIn("m.onnx (built in memory)", r.stdout)
        self.assertIn("input    x float32[batch,16]", r.stdout)
        doc = json.loads(self.ok("inspect", "m.onnx", "--backend", "cpu", "--json").stdout)  # JSON only
        self.assertEqual(doc["layers"][2]["outputs"][0]["shape"], ["batch", 10])
        self.fails("inspect", "nope.kplan", naming=["nope.kplan"])


class Example(EngineTestCase):
    def test_classify_compiles_loads_and_ranks(self):
        exe = os.environ.get("KILN_EXAMPLE") or os.path.join(os.path.dirname(os.environ.get("KILN", "")),
                                                              "examples", "kiln_example_classify")
        if not os.path.isfile(exe):
            self.skipTest(f"example program not built ({exe})")
        w, b = self.mlp(batch=1)
        x = (0.5 * np.sin(0.01 * np.arange(IN))).astype(np.float32).reshape(1, IN)
        r = subprocess.run([exe, "m.onnx", "--backend", "cpu", "--top", "3"], cwd=self.dir, capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(os.path.isfile(self.path("m.kplan")))
        y = np.maximum(x @ w + b, 0)[0]
        top = np.argsort(-y, kind="stable")[:3]
        classes = [int(line.split()[1]) for line in r.stdout.splitlines() if line.strip().startswith("class")]
        self.assertEqual(len(classes), 3)
        self.assertEqual(classes[0], top[0])
        raw = self.path("x.raw")
        np.ones((1, IN), dtype=np.float32).tofile(raw)
        r = subprocess.run([exe, "m.kplan", "--input", raw], cwd=self.dir, capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        np.ones(3, dtype=np.float32).tofile(raw)  # wrong size: a clear error
        r = subprocess.run([exe, "m.kplan", "--input", raw], cwd=self.dir, capture_output=True, text=True,
                           timeout=120)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("64 bytes, given 12", r.stderr)


if __name__ == "__main__":
    unittest.main()
