"""Tests of `kiln conformance` on a generated suite of ONNX-backend-style test cases."""
import json
import os
import unittest

from cli_helpers import KilnTestCase, TensorProto, cuda_state, helper, np, numpy_helper, onnx

NP_TO_ONNX = {np.float32: TensorProto.FLOAT, np.int64: TensorProto.INT64, np.uint16: TensorProto.UINT16}


class Conformance(KilnTestCase):
    def make_case(self, rel, x, expected_sets, op="Identity", model_bytes=None, elem_type=None):
        """A case folder `suite/rel` with an op model on x's dtype/shape and one data set per
        expected output."""
        d = self.path("suite", rel)
        os.makedirs(d)
        if model_bytes is not None:
            with open(os.path.join(d, "model.onnx"), "wb") as f:
                f.write(model_bytes)
        else:
            et = elem_type or NP_TO_ONNX[x.dtype.type]
            g = helper.make_graph([helper.make_node(op, ["x"], ["y"])], "g",
                                  [helper.make_tensor_value_info("x", et, list(x.shape))],
                                  [helper.make_tensor_value_info("y", et, list(x.shape))])
            onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]),
                      os.path.join(d, "model.onnx"))
        for i, want in enumerate(expected_sets):
            s = os.path.join(d, f"test_data_set_{i}")
            os.makedirs(s)
            with open(os.path.join(s, "input_0.pb"), "wb") as f:
                f.write(numpy_helper.from_array(x, "x").SerializeToString())
            with open(os.path.join(s, "output_0.pb"), "wb") as f:
                f.write(numpy_helper.from_array(want, "y").SerializeToString())

    def setUp(self):
        super().setUp()
        x = np.array([[1.0, -2.0, 3.5], [0.25, 1e-9, -7.0]], dtype=np.float32)
        self.make_case("test_pass", x, [x])
        self.make_case("test_tol_ok", x, [x * np.float32(1 + 5e-4)])
        self.make_case("test_tol_bad", x, [x * np.float32(1 + 3e-3)])
        special = np.array([np.nan, np.inf, -np.inf, 1.0], dtype=np.float32)
        self.make_case("test_nan", special, [special])
        self.make_case("test_nan_mismatch", special, [np.array([1.0, np.inf, -np.inf, 1.0], dtype=np.float32)])
        big = np.array([2**60, -3], dtype=np.int64)
        self.make_case("test_int_exact", big, [big + np.array([1, 0], dtype=np.int64)])  # equal as doubles
        self.make_case("test_shape", x, [x.reshape(3, 2)])
        self.make_case("test_dtype", x, [x.astype(np.float64)])
        self.make_case("test_skip", x, [x], op="NoSuchOpXyz")
        # Random ops cannot reproduce the reference values: a skip when dtype and shape match.
        self.make_case("test_random", x, [np.zeros_like(x)], op="RandomUniformLike")
        self.make_case("test_import_error", x, [x], model_bytes=b"\x08\x07garbage, not a model")
        self.make_case("test_two_sets", x, [x, x + 1])
        self.make_case("nested/test_deep", x, [x])
        # ONNX test data holds bfloat16 as uint16 bit patterns.
        bits = (np.array([1.5, -2.0, 0.1], dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)
        self.make_case("test_bf16", bits, [bits], elem_type=TensorProto.BFLOAT16)
        os.makedirs(self.path("suite", "no_data"))  # a model without data sets is not a case
        with open(self.path("suite", "no_data", "model.onnx"), "wb") as f:
            f.write(b"")
        self.passing = ["suite/nested/test_deep", "suite/test_bf16", "suite/test_nan", "suite/test_pass",
                        "suite/test_tol_ok"]

    def lines(self, r):
        return r.stdout.splitlines()

    def test_report_and_counts(self):
        r = self.kiln("conformance", "suite", "--json", "report.json")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)  # failures, no --expected
        out = self.lines(r)
        self.assertEqual(out[-1], "5 passed, 7 failed, 2 skipped")
        self.assertIn("suite suite: 5 passed, 7 failed, 2 skipped", out)
        text = r.stdout
        self.assertIn("FAIL suite/test_tol_bad: output 0 ('y'): 5 of 6 values differ (max abs diff 0.0209999, rtol 0.001, atol 1e-07); first at [0,0]: got 1, expected 1.003", text)
        self.assertIn("FAIL suite/test_nan_mismatch: output 0 ('y'): 1 of 4 values differ", text)
        self.assertIn("FAIL suite/test_int_exact: output 0 ('y'): 1 of 2 values differ; first at [0]: "
                      "got 1152921504606846976, expected 1152921504606846977", text)
        self.assertIn("FAIL suite/test_shape: output 0 ('y'): shape [2x3], expected [3x2]", text)
        self.assertIn("FAIL suite/test_dtype: output 0 ('y'): dtype float32, expected float64", text)
        self.assertRegex(text, r"SKIP suite/test_skip: .*NoSuchOpXyz")
        self.assertIn("SKIP suite/test_random: RandomUniformLike draws random numbers", text)
        self.assertRegex(text, r"FAIL suite/test_import_error: import: .*model.onnx")
        self.assertIn("FAIL suite/test_two_sets: test_data_set_1: output 0", text)
        for name in ("test_pass", "test_tol_ok", "test_nan", "no_data", "test_deep"):
            self.assertNotIn(name + ":", text)

        with open(self.path("report.json")) as f:
            doc = json.load(f)
        self.assertEqual((doc["passed"], doc["failed"], doc["skipped"]), (5, 7, 2))
        self.assertEqual(doc["suites"], {"suite": {"passed": 5, "failed": 7, "skipped": 2}})
        by_name = {c["name"]: c for c in doc["cases"]}
        self.assertEqual(len(by_name), 14)
        self.assertEqual(by_name["test_bf16"]["status"], "pass")
        self.assertEqual(by_name["nested/test_deep"]["status"], "pass")
        self.assertEqual(by_name["test_skip"]["status"], "skip")
        self.assertEqual(by_name["test_shape"]["status"], "fail")
        self.assertEqual(by_name["test_pass"]["reason"], "")
        self.assertIn("NoSuchOpXyz", by_name["test_skip"]["reason"])
        for c in doc["cases"]:
            self.assertEqual(c["suite"], "suite")
            self.assertGreaterEqual(c["seconds"], 0)

    def test_filter_and_verbose(self):
        r = self.kiln("conformance", "suite/", "--filter", "test_(pass|tol_ok)$", "-v")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("PASS suite/test_pass", r.stdout)
        self.assertEqual(self.lines(r)[-1], "2 passed, 0 failed, 0 skipped")

    def test_expected_list(self):
        with open(self.path("expected.txt"), "w") as f:
            f.write("# passing cases\nsuite/test_pass  # a comment\n\nsuite/test_nan\nother_suite/test_x\n")
        r = self.kiln("conformance", "suite", "--expected", "expected.txt")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)  # failures not listed are no regression
        self.assertIn("3 cases pass but are not in expected.txt (update with --write-expected expected.txt): "
                      "suite/nested/test_deep suite/test_bf16 suite/test_tol_ok", r.stdout)
        self.assertNotIn("REGRESSION", r.stdout)

        with open(self.path("expected.txt"), "a") as f:
            f.write("suite/test_shape\nsuite/test_skip\nsuite/test_gone\n")
        r = self.kiln("conformance", "suite", "--expected", "expected.txt")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("REGRESSION suite/test_shape: fail: output 0", r.stdout)
        self.assertIn("REGRESSION suite/test_skip: skip: ", r.stdout)
        self.assertIn("REGRESSION suite/test_gone: not found", r.stdout)
        self.assertIn("3 expected cases did not pass", r.stdout)
        self.assertEqual(self.lines(r)[-1], "5 passed, 7 failed, 2 skipped")
        # A filter limits which expected cases count.
        r = self.kiln("conformance", "suite", "--expected", "expected.txt", "--filter", "test_pass")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_write_expected_round_trip(self):
        r = self.kiln("conformance", "suite", "--write-expected", "exp.txt")
        self.assertEqual(r.returncode, 1)
        with open(self.path("exp.txt")) as f:
            entries = [l for l in f.read().splitlines() if l and not l.startswith("#")]
        self.assertEqual(entries, self.passing)
        r = self.kiln("conformance", "suite", "--expected", "exp.txt")
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertNotIn("not in exp.txt", r.stdout)

    def test_several_suites(self):
        os.makedirs(self.path("other"))
        x = np.ones((2,), dtype=np.float32)
        os.rename(self.path("suite", "test_pass"), self.path("other", "test_pass"))
        r = self.kiln("conformance", "suite", "other", "--filter", "test_pass|test_skip")
        self.assertIn("suite other: 1 passed, 0 failed, 0 skipped", r.stdout)
        self.assertIn("suite suite: 0 passed, 0 failed, 1 skipped", r.stdout)
        self.assertEqual(self.lines(r)[-1], "1 passed, 0 failed, 1 skipped")
        self.assertEqual(r.returncode, 0)

    def test_errors(self):
        self.fails("conformance", "no_such_dir", naming=["no_such_dir"])
        os.makedirs(self.path("empty"))
        self.fails("conformance", "empty", naming=["empty", "no test cases"])
        self.fails("conformance", "suite", "--filter", "(unclosed", naming=["(unclosed"])
        self.fails("conformance", "suite", "--expected", "missing.txt", naming=["missing.txt"])
        with open(self.path("bad.txt"), "w") as f:
            f.write("just_a_name\n")
        self.fails("conformance", "suite", "--expected", "bad.txt", naming=["bad.txt", "line 1"])
        if cuda_state() != "available":
            self.fails("conformance", "suite", "--backend", "cuda", naming=["CUDA"])


if __name__ == "__main__":
    unittest.main()
