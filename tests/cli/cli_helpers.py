"""Shared helpers of the kiln CLI tests: locating the binary, running it, making models."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

try:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as e:  # a clear failure, not a silent pass
    sys.exit(f"the kiln CLI tests need numpy and onnx in {sys.executable}: {e}")

__all__ = ["np", "onnx", "TensorProto", "helper", "numpy_helper", "KilnTestCase", "kiln_binary", "cuda_state"]


def kiln_binary():
    path = os.environ.get("KILN")
    if not path:
        here = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(here, "..", "..", "build", "kiln")
    if not os.path.isfile(path):
        sys.exit(f"kiln binary not found at {path} (set KILN=/path/to/kiln)")
    return os.path.abspath(path)


_cuda_state = None


def cuda_state():
    """'absent' (this kiln has no CUDA backend), 'unavailable' (no usable GPU) or 'available',
    from the backends line of `kiln version`."""
    global _cuda_state
    if _cuda_state is None:
        out = subprocess.run([kiln_binary(), "version"], capture_output=True, text=True, timeout=60).stdout
        line = next((l for l in out.splitlines() if l.startswith("backends:")), "")
        if " cuda (" not in line:
            _cuda_state = "absent"
        else:
            _cuda_state = "available" if " cuda (available)" in line else "unavailable"
    return _cuda_state


class KilnTestCase(unittest.TestCase):
    """Each test runs in its own temporary folder (the working directory of kiln too)."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kiln_cli_")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def kiln(self, *args):
        return subprocess.run([kiln_binary(), *args], cwd=self.dir, capture_output=True, text=True, timeout=120)

    def ok(self, *args):
        r = self.kiln(*args)
        self.assertEqual(r.returncode, 0, f"kiln {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}")
        return r

    def fails(self, *args, naming=()):
        """Runs kiln expecting a clean failure: a non-zero exit (not a signal), and exactly one
        stderr line 'kiln: error: ...' that contains every string of `naming`."""
        r = self.kiln(*args)
        self.assertGreater(r.returncode, 0, f"kiln {' '.join(args)}: expected an error exit, got "
                           f"{r.returncode}\n{r.stdout}\n{r.stderr}")
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, f"expected one error line, got:\n{r.stderr}")
        self.assertTrue(lines[0].startswith("kiln: error: "), lines[0])
        for needle in naming:
            self.assertIn(needle, lines[0])
        for bad in ("Traceback", "core dumped", "terminate called", "Segmentation", "Aborted"):
            self.assertNotIn(bad, r.stderr + r.stdout)
        return lines[0]

    def save_model(self, name, nodes, inputs, outputs, initializers=(), opset=17, domains=()):
        graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
        opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains]
        model = helper.make_model(graph, opset_imports=opsets)
        model.ir_version = 8
        onnx.save(model, self.path(name))
        return self.path(name)

    def identity_model(self, name="id.onnx", input_name="x", dtype=TensorProto.FLOAT, shape=("batch", 3),
                       output_name="y"):
        return self.save_model(name, [helper.make_node("Identity", [input_name], [output_name], name="id")],
                               [helper.make_tensor_value_info(input_name, dtype, shape)],
                               [helper.make_tensor_value_info(output_name, dtype, shape)])

    def save_pb(self, name, array, tensor_name=""):
        t = numpy_helper.from_array(array, tensor_name)
        with open(self.path(name), "wb") as f:
            f.write(t.SerializeToString())
        return self.path(name)
