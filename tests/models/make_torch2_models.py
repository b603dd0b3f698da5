#!/usr/bin/env python3
"""Exports small models the way the GPU benchmark exports the big ones: PyTorch 2.x (the GPU machine's
torch and transformers), torch.onnx.export(dynamo=False), opset 17. Their attention subgraphs are the
ones kiln's fusion passes must recognize (HF BERT's SDPA decomposition, torchvision ViT under torch 2).

    python3 tests/models/make_torch2_models.py --out DIR   # on the GPU machine; writes DIR/<name>/

Same layout as make_models.py (model.onnx, input_<i>.npy, expected_<i>.npy, io.json).
"""
import argparse
import json
import os

import numpy as np
import torch


def save(name, model, input_names, args, out_dir, note):
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    model.eval()
    expected = model(*args)  # grad enabled: nn.MultiheadAttention's fused fast path does not export
    expected = (expected,) if isinstance(expected, torch.Tensor) else expected
    path = os.path.join(d, "model.onnx")
    torch.onnx.export(model, tuple(args), path, input_names=input_names, output_names=["output"],
                      opset_version=17, do_constant_folding=True, dynamo=False)
    io = {"opset": 17, "note": note + f" (torch {torch.__version__})", "inputs": [], "outputs": []}
    for i, (n, a) in enumerate(zip(input_names, args)):
        np.save(os.path.join(d, f"input_{i}.npy"), a.numpy())
        io["inputs"].append({"name": n, "file": f"input_{i}.npy"})
    np.save(os.path.join(d, "expected_0.npy"), expected[0].detach().numpy())
    io["outputs"].append({"name": "output", "file": "expected_0.npy"})
    with open(os.path.join(d, "io.json"), "w") as f:
        json.dump(io, f, indent=1)
        f.write("\n")
    print("wrote", d)


class BertWrapper(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids, attention_mask):
        return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.manual_seed(0)
    import torchvision
    vit = torchvision.models.VisionTransformer(image_size=64, patch_size=16, num_layers=2, num_heads=2,
                                               hidden_dim=128, mlp_dim=256, num_classes=10)
    torch.nn.init.normal_(vit.heads.head.weight, std=0.02)
    save("vit_torch2_tiny", vit, ["input"], [torch.randn(2, 3, 64, 64)], a.out,
         "torchvision VisionTransformer 64x64, patch 16, 2 layers, 2 heads of 64")
    from transformers import BertConfig, BertModel
    cfg = BertConfig(vocab_size=1000, hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=256, max_position_embeddings=64)
    bert = BertWrapper(BertModel(cfg, add_pooling_layer=False))
    ids = torch.randint(0, 1000, (2, 24))
    mask = torch.ones(2, 24, dtype=torch.int64)
    mask[1, 18:] = 0
    save("bert_hf_tiny", bert, ["input_ids", "attention_mask"], [ids, mask], a.out,
         "HF transformers BertModel, hidden 128, 2 layers, 2 heads of 64, seq 24, padded mask")


if __name__ == "__main__":
    main()
