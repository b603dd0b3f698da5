"""The five benchmark models (random weights, fixed seed) and their example inputs.

Runs on the GPU machine (torch 2.11, torchvision, transformers). Each entry gives a torch module,
the ONNX input names, and a function making inputs for a batch size.
"""
import torch
import torch.nn as nn


class DoubleConv(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UNet(nn.Module):
    """The classic UNet (Ronneberger et al.), base width 64, ConvTranspose upsampling, plus a Resize
    on the skip path so the op set matches segmentation exports."""

    def __init__(self, cin=1, classes=2, base=64):
        super().__init__()
        w = [base, base * 2, base * 4, base * 8, base * 16]
        self.inc = DoubleConv(cin, w[0])
        self.downs = nn.ModuleList([nn.Sequential(nn.MaxPool2d(2), DoubleConv(w[i], w[i + 1])) for i in range(4)])
        self.ups = nn.ModuleList([nn.ConvTranspose2d(w[i + 1], w[i], 2, stride=2) for i in reversed(range(4))])
        self.convs = nn.ModuleList([DoubleConv(w[i] * 2, w[i]) for i in reversed(range(4))])
        self.outc = nn.Conv2d(w[0], classes, 1)

    def forward(self, x):
        skips = [self.inc(x)]
        for d in self.downs:
            skips.append(d(skips[-1]))
        y = skips.pop()
        for up, conv in zip(self.ups, self.convs):
            s = skips.pop()
            y = up(y)
            if y.shape[-2:] != s.shape[-2:]:
                y = nn.functional.interpolate(y, size=s.shape[-2:], mode="bilinear", align_corners=False)
            y = conv(torch.cat([s, y], dim=1))
        return self.outc(y)


class BertWrapper(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def make(name):
    torch.manual_seed(0)
    import torchvision
    if name == "resnet50":
        return torchvision.models.resnet50(), ["input"], lambda b: [torch.randn(b, 3, 224, 224)]
    if name == "mobilenetv3":
        return torchvision.models.mobilenet_v3_large(), ["input"], lambda b: [torch.randn(b, 3, 224, 224)]
    if name == "vit_b16":
        vit = torchvision.models.vit_b_16()
        nn.init.normal_(vit.heads.head.weight, std=0.02)  # torchvision zero-initializes the head: outputs would be 0
        return vit, ["input"], lambda b: [torch.randn(b, 3, 224, 224)]
    if name == "unet":
        return UNet(), ["input"], lambda b: [torch.randn(b, 1, 512, 512)]
    if name == "bert_base":
        from transformers import BertConfig, BertModel
        model = BertWrapper(BertModel(BertConfig(), add_pooling_layer=False))

        def inputs(b, seq=128):
            ids = torch.randint(0, 30522, (b, seq))
            mask = torch.ones(b, seq, dtype=torch.int64)
            mask[:, seq - 16:] = 0 if b > 1 else 1  # padded tail in batched runs
            return [ids, mask]

        return model, ["input_ids", "attention_mask"], inputs
    raise ValueError(name)


def randomize_norm_stats(model):
    """Random BatchNorm statistics so folding and normalization bugs cannot hide behind 0/1."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model
