"""Tests of the graph-pass options: `kiln passes`, --disable-pass, --dump-ir-after, --outputs,
--fold-random, per-pass timings with -v, and `kiln inspect` (--json, --before, FLOPs, fused ops)."""
import json
import math
import unittest

from cli_helpers import KilnTestCase, TensorProto, helper, np, numpy_helper


class PassesTestCase(KilnTestCase):
    def gelu_model(self, name="g.onnx"):
        """y = Gelu(x @ W) written out as Div/Erf/Add/Mul/Mul, and z = Identity(y) * 2; x float32[2, 4]."""
        rng = np.random.RandomState(1)
        inits = [numpy_helper.from_array(rng.randn(4, 3).astype(np.float32), "W"),
                 numpy_helper.from_array(np.array(math.sqrt(2), np.float32), "sqrt2"),
                 numpy_helper.from_array(np.array(1, np.float32), "one"),
                 numpy_helper.from_array(np.array(0.5, np.float32), "half"),
                 numpy_helper.from_array(np.array(2, np.float32), "two")]
        nodes = [helper.make_node("MatMul", ["x", "W"], ["m"], name="mm"),
                 helper.make_node("Div", ["m", "sqrt2"], ["d"], name="div"),
                 helper.make_node("Erf", ["d"], ["e"], name="erf"),
                 helper.make_node("Add", ["e", "one"], ["a"], name="add"),
                 helper.make_node("Mul", ["m", "a"], ["p"], name="mul"),
                 helper.make_node("Mul", ["p", "half"], ["y"], name="gelu_out"),
                 helper.make_node("Identity", ["y"], ["i"], name="id"),
                 helper.make_node("Mul", ["i", "two"], ["z"], name="double")]
        self.save_model(name, nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
                        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3]),
                         helper.make_tensor_value_info("z", TensorProto.FLOAT, [2, 3])], inits)
        return name

    def build(self, *extra):
        return self.ok("build", "g.onnx", "-o", "g.kplan", "--backend", "cpu", *extra)

    def layers(self, *extra):
        doc = json.loads(self.ok("inspect", "g.onnx", "--backend", "cpu", "--json", *extra).stdout)
        return doc, [l["op"] for l in doc["layers"]]


class Passes(PassesTestCase):
    def test_passes_lists_every_pass(self):
        out = self.ok("passes").stdout
        for name in ("constant-folding", "dead-code", "identity-elimination", "cast-chain", "batchnorm-folding",
                     "gelu-fusion", "layernorm-fusion", "precision"):
            self.assertRegex(out, rf"(?m)^{name}\s+\S")

    def test_fusion_and_inspect_json(self):
        self.gelu_model()
        doc, ops = self.layers()
        self.assertEqual(ops, ["MatMul", "Gelu", "Mul"])
        mm, gelu = doc["layers"][0], doc["layers"][1]
        self.assertEqual(mm["flops"], 2 * 2 * 4 * 3)
        self.assertEqual(mm["bytes"], (2 * 4 + 4 * 3 + 2 * 3) * 4)
        self.assertEqual(gelu["flops"], 6)
        self.assertEqual(gelu["fused"], ["div:Div", "erf:Erf", "add:Add", "mul:Mul", "gelu_out:Mul"])
        self.assertEqual(gelu["outputs"][0]["name"], "y")
        self.assertEqual(doc["total_flops"], 48 + 6 + 6)
        text = self.ok("inspect", "g.onnx", "--backend", "cpu").stdout
        self.assertIn("[fused: div:Div,erf:Erf", text)
        self.assertIn("48 FLOP", text)

    def test_inspect_before_shows_the_imported_graph(self):
        self.gelu_model()
        doc = json.loads(self.ok("inspect", "g.onnx", "--before", "--json").stdout)
        self.assertEqual(len(doc["layers"]), 8)
        self.assertIn("graph    g.onnx (before passes)", self.ok("inspect", "g.onnx", "--before").stdout)
        self.build()
        self.fails("inspect", "g.kplan", "--before", naming=["--before", "plan"])

    def test_disable_pass(self):
        self.gelu_model()
        _, ops = self.layers("--disable-pass", "gelu-fusion,identity-elimination")
        self.assertEqual(ops, ["MatMul", "Div", "Erf", "Add", "Mul", "Mul", "Identity", "Mul"])
        _, ops = self.layers("--disable-pass", "gelu-fusion", "--disable-pass", "identity-elimination")
        self.assertEqual(len(ops), 8)
        err = self.fails("build", "g.onnx", "-o", "g.kplan", "--backend", "cpu", "--disable-pass", "gelu",
                         naming=["--disable-pass", "unknown pass 'gelu'", "gelu-fusion", "dead-code"])
        self.assertNotIn("'all'", err)

    def test_dump_ir_after(self):
        self.gelu_model()
        out = self.build("--dump-ir-after", "gelu-fusion").stdout
        self.assertIn("--- IR after gelu-fusion (round 1) ---", out)
        self.assertRegex(out, r"y = Gelu\(m\) \{approximate=\"none\", kiln_fused=")
        self.assertNotIn("IR after dead-code", out)
        out = self.build("--dump-ir-after", "all").stdout
        for name in ("constant-folding", "dead-code", "identity-elimination"):
            self.assertIn(f"--- IR after {name}", out)
        self.fails("build", "g.onnx", "-o", "g.kplan", "--backend", "cpu", "--dump-ir-after", "nope",
                   naming=["--dump-ir-after", "'nope'", "all"])

    def test_verbose_prints_pass_timings(self):
        self.gelu_model()
        out = self.build("-v").stdout
        self.assertRegex(out, r"pass gelu-fusion\s+[0-9.]+ ms\s+\d+ runs, modified 1")
        self.assertRegex(out, r"pass dead-code\s+[0-9.]+ ms")
        self.assertNotIn("pass gelu-fusion", self.build().stdout)

    def test_outputs_keeps_the_chosen_ones(self):
        self.gelu_model()
        doc, ops = self.layers("--outputs", "y")
        self.assertEqual([o["name"] for o in doc["outputs"]], ["y"])
        self.assertEqual(ops, ["MatMul", "Gelu"])
        x = np.random.RandomState(2).randn(2, 4).astype(np.float32)
        np.save(self.path("x.npy"), x)
        self.build("--outputs", "z")
        r = self.ok("run", "g.kplan", "--input", "x=x.npy")
        self.assertIn("output 'z'", r.stdout)
        self.assertNotIn("output 'y'", r.stdout)
        self.fails("build", "g.onnx", "-o", "g.kplan", "--backend", "cpu", "--outputs", "w",
                   naming=["--outputs", "'w'", "'y'", "'z'"])

    def test_fold_random(self):
        self.save_model("r.onnx", [helper.make_node("RandomUniform", [], ["r"], name="rand", shape=[3], seed=1.0),
                                   helper.make_node("Add", ["x", "r"], ["y"], name="add")],
                        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
                        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])])
        ops = lambda *extra: [l["op"] for l in json.loads(
            self.ok("inspect", "r.onnx", "--backend", "cpu", "--json", *extra).stdout)["layers"]]
        self.assertEqual(ops(), ["RandomUniform", "Add"])
        self.assertEqual(ops("--fold-random"), ["Add"])


if __name__ == "__main__":
    unittest.main()
