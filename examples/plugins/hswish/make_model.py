"""Exports the HSwish example models from PyTorch (run with /usr/bin/python3: torch 1.13, onnx).

Two models with the same weights, one per way of marking a custom op:
  hswish_plugin_op.onnx  op "Plugin" with name="HSwish", info=<json> (tensorRT_Pro's convention)
  hswish_domain_op.onnx  op "HSwish" in the custom domain "kiln.example"
and hswish_input.npy / hswish_expected.npy (PyTorch's output) to compare kiln's against:

  kiln run --plugin build/examples/plugins/libkiln_hswish.so hswish_plugin_op.onnx \
      --input x=hswish_input.npy
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


def hswish(x):
    return x * F.relu6(x + 3) / 6


class HSwishPluginOp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return hswish(x)

    @staticmethod
    def symbolic(g, x):
        return g.op("Plugin", x, name_s="HSwish", info_s=json.dumps({"kind": "hswish", "version": 1}))


class HSwishDomainOp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return hswish(x)

    @staticmethod
    def symbolic(g, x):
        return g.op("kiln.example::HSwish", x)


class Net(torch.nn.Module):
    def __init__(self, act):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 4, 3, padding=1)
        self.act = act

    def forward(self, x):
        return self.act.apply(self.conv2(self.act.apply(self.conv1(x))))


def main():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8)
    nets = {}
    for name, act in [("plugin_op", HSwishPluginOp), ("domain_op", HSwishDomainOp)]:
        net = Net(act).eval()
        if nets:
            net.load_state_dict(next(iter(nets.values())).state_dict())
        nets[name] = net
        try:
            torch.onnx.export(net, (x,), os.path.join(HERE, f"hswish_{name}.onnx"), input_names=["x"],
                              output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
                              opset_version=13, custom_opsets={"kiln.example": 1})
        except torch.onnx.errors.CheckerError:
            # ONNX's checker does not know op "Plugin" of the default domain; the file is written
            # before the check (tensorRT_Pro exported with the checker off for the same reason).
            pass
    with torch.no_grad():
        y = nets["plugin_op"](x).numpy()
        assert np.allclose(y, nets["domain_op"](x).numpy())
    np.save(os.path.join(HERE, "hswish_input.npy"), x.numpy())
    np.save(os.path.join(HERE, "hswish_expected.npy"), y)


if __name__ == "__main__":
    main()
