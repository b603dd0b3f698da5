"""Tests of `kiln run` on small models made with onnx.helper."""
import json
import os
import unittest

from cli_helpers import KilnTestCase, TensorProto, cuda_state, helper, np


def read_outputs(test, out_dir):
    with open(os.path.join(out_dir, "outputs.json")) as f:
        doc = json.load(f)
    arrays = [np.load(os.path.join(out_dir, o["file"])) for o in doc["outputs"]]
    return doc, arrays


class RunInputs(KilnTestCase):
    def test_npy_input_values_and_summary(self):
        self.identity_model()
        x = np.array([[1.5, -2, 3], [4, 5, -6.25]], dtype=np.float32)
        np.save(self.path("x.npy"), x)
        r = self.ok("run", "id.onnx", "--input", "x=x.npy", "--output-dir", "out")
        self.assertIn("input  'x': float32[2x3]  from x.npy", r.stdout)
        self.assertIn("output 'y': float32[2x3]  min -6.25 max 5 mean 0.875", r.stdout)
        doc, arrays = read_outputs(self, self.path("out"))
        self.assertEqual(doc["outputs"], [{"name": "y", "dtype": "float32", "shape": [2, 3], "file": "output_0.npy"}])
        self.assertEqual(arrays[0].dtype, np.float32)
        np.testing.assert_array_equal(arrays[0], x)

    def test_pb_input(self):
        self.identity_model(dtype=TensorProto.INT64, shape=(2, 2))
        x = np.array([[7, -8], [2**40, 0]], dtype=np.int64)
        self.save_pb("x.pb", x, "x")
        self.ok("run", "id.onnx", "--input", "x=x.pb", "-o", "out")
        _, arrays = read_outputs(self, self.path("out"))
        np.testing.assert_array_equal(arrays[0], x)
        self.assertEqual(arrays[0].dtype, np.int64)

    def test_npy_without_extension_and_bare_file_for_one_input(self):
        self.identity_model(shape=(3,))
        np.save(self.path("x.npy"), np.array([1, 2, 3], dtype=np.float32))
        os.rename(self.path("x.npy"), self.path("data.bin"))
        self.ok("run", "id.onnx", "--input", "data.bin", "-o", "out")
        _, arrays = read_outputs(self, self.path("out"))
        np.testing.assert_array_equal(arrays[0], [1, 2, 3])

    def test_names_with_colon_dot_slash_and_equals(self):
        name = "blk.0/in=put:0"
        self.identity_model(input_name=name, shape=(2,), output_name="out:0/y.z")
        os.makedirs(self.path("d=1"))
        np.save(self.path("d=1", "f=2.npy"), np.array([3, 4], dtype=np.float32))
        self.ok("run", "id.onnx", "--input", f"{name}=d=1/f=2.npy", "-o", "o")
        doc, arrays = read_outputs(self, self.path("o"))
        self.assertEqual(doc["outputs"][0]["name"], "out:0/y.z")
        np.testing.assert_array_equal(arrays[0], [3, 4])
        # --shapes splits at the last ':' and keeps ',' that belong to a name.
        self.ok("run", "id.onnx", "--shapes", f"{name}:2")
        comma = "a,b:c"
        self.identity_model("c.onnx", input_name=comma, shape=("n",))
        r = self.ok("run", "c.onnx", "--shapes", f"{comma}:5")
        self.assertIn(f"input  '{comma}': float32[5]", r.stdout)

    def test_scalar_input(self):
        self.identity_model(shape=())
        np.save(self.path("s.npy"), np.array(2.5, dtype=np.float32))
        r = self.ok("run", "id.onnx", "--input", "x=s.npy", "-o", "out")
        self.assertIn("float32[scalar]", r.stdout)
        doc, arrays = read_outputs(self, self.path("out"))
        self.assertEqual(doc["outputs"][0]["shape"], [])
        self.assertEqual(arrays[0].shape, ())
        self.assertEqual(float(arrays[0]), 2.5)
        self.save_pb("s.pb", np.array(-1.0, dtype=np.float32))
        self.ok("run", "id.onnx", "--input", "x=s.pb", "-o", "out2")
        self.assertEqual(float(read_outputs(self, self.path("out2"))[1][0]), -1.0)


class RunValues(KilnTestCase):
    def test_two_inputs_computed_values_and_output_order(self):
        # Outputs declared in the order (r, s): r = Relu(a + b), s = a * b, with b broadcast.
        self.save_model(
            "m.onnx",
            [helper.make_node("Mul", ["a", "b"], ["s"]), helper.make_node("Add", ["a", "b"], ["t"]),
             helper.make_node("Relu", ["t"], ["r"])],
            [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["n", 3]),
             helper.make_tensor_value_info("b", TensorProto.FLOAT, [3])],
            [helper.make_tensor_value_info("r", TensorProto.FLOAT, ["n", 3]),
             helper.make_tensor_value_info("s", TensorProto.FLOAT, ["n", 3])])
        rng = np.random.default_rng(0)
        a = rng.uniform(-2, 2, (4, 3)).astype(np.float32)
        b = rng.uniform(-2, 2, (3,)).astype(np.float32)
        np.save(self.path("a.npy"), a)
        self.save_pb("b.pb", b)
        self.ok("run", "m.onnx", "--input", "a=a.npy", "--input", "b=b.pb", "-o", "out")
        doc, (r, s) = read_outputs(self, self.path("out"))
        self.assertEqual([o["name"] for o in doc["outputs"]], ["r", "s"])
        np.testing.assert_allclose(r, np.maximum(a + b, 0), rtol=1e-6)
        np.testing.assert_allclose(s, a * b, rtol=1e-6)
        # With --shapes, b's random values and a's shape come from the options; n is free.
        self.ok("run", "m.onnx", "--shapes", "a:5x3", "-o", "rand")
        doc, (r, s) = read_outputs(self, self.path("rand"))
        self.assertEqual(r.shape, (5, 3))
        self.assertTrue(np.all(r >= 0))


class RunRandom(KilnTestCase):
    def model(self):
        # f: float [batch, 3], i: int32 [batch], b: bool [k] -> three outputs, in this order.
        return self.save_model(
            "m.onnx",
            [helper.make_node("Identity", ["f"], ["of"]), helper.make_node("Identity", ["i"], ["oi"]),
             helper.make_node("Identity", ["b"], ["ob"])],
            [helper.make_tensor_value_info("f", TensorProto.FLOAT, ["batch", 3]),
             helper.make_tensor_value_info("i", TensorProto.INT32, ["batch"]),
             helper.make_tensor_value_info("b", TensorProto.BOOL, ["k"])],
            [helper.make_tensor_value_info("of", TensorProto.FLOAT, ["batch", 3]),
             helper.make_tensor_value_info("oi", TensorProto.INT32, ["batch"]),
             helper.make_tensor_value_info("ob", TensorProto.BOOL, ["k"])])

    def test_shapes_and_seeded_random_inputs(self):
        self.model()
        # Comma-separated, and repeated; 'batch' of i follows from f.
        r = self.ok("run", "m.onnx", "--shapes", "f:64x3", "--shapes=b:100", "-o", "a")
        self.assertIn("random (seed 42)", r.stdout)
        doc, (f, i, b) = read_outputs(self, self.path("a"))
        self.assertEqual([o["name"] for o in doc["outputs"]], ["of", "oi", "ob"])
        self.assertEqual([o["dtype"] for o in doc["outputs"]], ["float32", "int32", "bool"])
        self.assertEqual(f.shape, (64, 3))
        self.assertEqual(i.shape, (64,))
        self.assertEqual(b.shape, (100,))
        self.assertTrue(np.all(f >= -1) and np.all(f < 1))
        self.assertGreater(f.std(), 0.3)  # spread over [-1, 1), not constant
        self.assertTrue(np.all(i >= 0) and np.all(i < 10))
        self.assertGreater(len(np.unique(i)), 1)
        self.assertTrue(0 < b.sum() < 100)

        self.ok("run", "m.onnx", "--shapes", "f:64x3,b:100", "-o", "same")
        _, again = read_outputs(self, self.path("same"))
        np.testing.assert_array_equal(again[0], f)
        np.testing.assert_array_equal(again[2], b)
        self.ok("run", "m.onnx", "--shapes", "f:64x3,b:100", "--seed", "7", "-o", "other")
        _, other = read_outputs(self, self.path("other"))
        self.assertFalse(np.array_equal(other[0], f))

    def test_file_fixes_symbolic_dims_of_random_inputs(self):
        self.model()
        np.save(self.path("i.npy"), np.arange(5, dtype=np.int32))
        r = self.ok("run", "m.onnx", "--input", "i=i.npy", "--shapes", "b:2")
        self.assertIn("input  'f': float32[5x3]  random", r.stdout)

    def test_static_shapes_need_no_options(self):
        self.identity_model(shape=(2, 2), dtype=TensorProto.FLOAT16)
        r = self.ok("run", "id.onnx", "-v")
        self.assertIn("input  'x': float16[2x2]  random (seed 42)", r.stdout)
        self.assertRegex(r.stdout, r"import [0-9.]+ ms, prepare [0-9.]+ ms, run [0-9.]+ ms")

    def test_output_dir_is_replaced_atomically(self):
        self.identity_model(shape=(2,))
        self.ok("run", "id.onnx", "-o", "out", "--seed", "1")
        self.ok("run", "id.onnx", "-o", "out", "--seed", "2")
        self.assertEqual(sorted(os.listdir(self.path("out"))), ["output_0.npy", "outputs.json"])


class RunErrors(KilnTestCase):
    def test_missing_and_unreadable_model(self):
        self.fails("run", "nope.onnx", naming=["nope.onnx"])
        os.makedirs(self.path("folder.onnx"))
        self.fails("run", "folder.onnx", naming=["folder.onnx"])
        if os.geteuid() != 0:  # root reads anything
            self.identity_model("locked.onnx")
            os.chmod(self.path("locked.onnx"), 0)
            self.fails("run", "locked.onnx", naming=["locked.onnx"])

    def test_not_onnx(self):
        with open(self.path("junk.onnx"), "wb") as f:
            f.write(b"\x00\xffthis is not a protobuf\x12\x34" * 10)
        self.fails("run", "junk.onnx", naming=["junk.onnx"])
        np.save(self.path("a.npy"), np.zeros(3))
        self.fails("run", "a.npy", naming=["a.npy"])

    def test_unsupported_ops_are_listed(self):
        self.save_model("u.onnx",
                        [helper.make_node("NoSuchOpAbc", ["x"], ["t"], name="n1"),
                         helper.make_node("Frobnicate", ["t"], ["y"], name="n2", domain="com.example")],
                        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])], domains=["com.example"])
        self.fails("run", "u.onnx", naming=["NoSuchOpAbc", "com.example.Frobnicate", "'n1'", "'n2'"])

    def test_input_dtype_and_shape_mismatch(self):
        self.identity_model()
        np.save(self.path("i.npy"), np.zeros((2, 3), dtype=np.int64))
        self.fails("run", "id.onnx", "--input", "x=i.npy", naming=["'x'", "i.npy", "float32[batch,3]", "int64"])
        np.save(self.path("f.npy"), np.zeros((2, 4), dtype=np.float32))
        self.fails("run", "id.onnx", "--input", "x=f.npy", naming=["'x'", "f.npy", "[batch,3]", "[2,4]"])
        np.save(self.path("r.npy"), np.zeros((3,), dtype=np.float32))
        self.fails("run", "id.onnx", "--input", "x=r.npy", naming=["'x'", "rank 2", "float32[3]"])

    def test_unknown_and_missing_inputs(self):
        self.identity_model()
        np.save(self.path("x.npy"), np.zeros((2, 3), dtype=np.float32))
        self.fails("run", "id.onnx", "--input", "nosuch=x.npy", naming=["'nosuch'", "'x'"])
        self.fails("run", "id.onnx", "--shapes", "nosuch:1x3", naming=["'nosuch'"])
        self.fails("run", "id.onnx", naming=["'x'", "--shapes", "[batch,3]"])
        self.fails("run", "id.onnx", "--input", "x=missing.npy", naming=["missing.npy"])
        self.fails("run", "id.onnx", "--input", "x=x.npy", "--input", "x=x.npy", naming=["'x'", "twice"])
        self.fails("run", "id.onnx", "--shapes", "x:2x4", naming=["'x'", "2x4"])

    def test_bad_options(self):
        self.identity_model()
        self.fails("run", "id.onnx", "--shapes", "x:1xq", naming=["1xq"])
        self.fails("run", "id.onnx", "--shapes", "x", naming=["NAME:DIMS"])
        if cuda_state() == "absent":
            self.fails("run", "id.onnx", "--backend", "cuda", naming=["no CUDA backend"])
        elif cuda_state() == "unavailable":
            self.fails("run", "id.onnx", "--backend", "cuda", naming=["CUDA backend cannot run here"])
        self.fails("run", "id.onnx", "--backend", "tpu", naming=["tpu"])
        self.fails("run", "id.onnx", "--seed", "abc", naming=["--seed"])
        self.fails("run", naming=["model"])

    def test_corrupt_input_file(self):
        self.identity_model()
        with open(self.path("bad.npy"), "wb") as f:
            f.write(b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'")
        self.fails("run", "id.onnx", "--input", "x=bad.npy", naming=["bad.npy", "'x'"])
        with open(self.path("bad.pb"), "wb") as f:
            f.write(b"\xff\xff\xff\xff garbage")
        self.fails("run", "id.onnx", "--input", "x=bad.pb", naming=["bad.pb"])

    def test_unwritable_output_dir_and_bfloat16_output(self):
        self.identity_model(shape=(2,))
        open(self.path("file"), "w").close()
        self.fails("run", "id.onnx", "-o", "file", naming=["file"])
        self.identity_model("bf.onnx", dtype=TensorProto.BFLOAT16, shape=(2,))
        self.fails("run", "bf.onnx", "-o", "out", naming=["'y'", "bfloat16"])
        self.assertFalse(os.path.exists(self.path("out", "outputs.json")))


if __name__ == "__main__":
    unittest.main()
