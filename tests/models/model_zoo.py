"""Model definitions for kiln's whole-model tests, in a small and a full-size variant.

Shared by make_models.py (small models, committed test data) and check_full_size.sh (full size,
scratch dir). Weights are random but seeded; every bias, norm parameter and BatchNorm running
statistic is randomized too, because the default initializations (zeros, ones) would hide kernels
that ignore them.
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torchvision
from torchvision.models.resnet import BasicBlock, Bottleneck


# --- weight randomization -----------------------------------------------------------------------

def randomize(model, seed):
    """Gives every parameter and buffer that a default init leaves constant a random value."""
    g = torch.Generator().manual_seed(seed)

    def uniform(t, lo, hi):
        t.copy_(torch.rand(t.shape, generator=g) * (hi - lo) + lo)

    def normal(t, std):
        t.copy_(torch.randn(t.shape, generator=g) * std)

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                uniform(m.weight, 0.7, 1.3)
                normal(m.bias, 0.1)
                normal(m.running_mean, 0.1)
                uniform(m.running_var, 0.6, 1.4)
            elif isinstance(m, nn.LayerNorm):
                uniform(m.weight, 0.7, 1.3)
                normal(m.bias, 0.1)
            elif isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                # Some inits (ViT head, zero-init residuals) use zeros: that would make outputs trivial.
                if float(m.weight.abs().max()) == 0.0:
                    fan_in = m.weight[0].numel()
                    normal(m.weight, 1.0 / math.sqrt(fan_in))
                if m.bias is not None:
                    normal(m.bias, 0.05)
        for name, p in model.named_parameters():
            if float(p.abs().max()) == 0.0:  # e.g. ViT's class token
                normal(p, 0.5)
    return model


# --- ResNet ---------------------------------------------------------------------------------------

class MiniResNet(nn.Module):
    """torchvision's ResNet layout (stem, 4 stages of torchvision blocks, pool, fc) with chosen widths."""

    def __init__(self, block, layers, widths, num_classes):
        super().__init__()
        self.inplanes = widths[0]
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.stages = nn.Sequential(*[
            self._make_stage(block, w, n, stride=1 if i == 0 else 2)
            for i, (w, n) in enumerate(zip(widths, layers))])
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[-1] * block.expansion, num_classes)

    def _make_stage(self, block, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.stages(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


# --- UNet -----------------------------------------------------------------------------------------

class DoubleConv(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UNet(nn.Module):
    """Classic UNet. Up-sampling alternates between ConvTranspose and bilinear Upsample + 1x1 Conv,
    so that both ConvTranspose and Resize are exercised."""

    def __init__(self, base, depth, in_ch=3, out_ch=2):
        super().__init__()
        widths = [base * 2 ** i for i in range(depth + 1)]
        self.inc = DoubleConv(in_ch, widths[0])
        self.downs = nn.ModuleList(DoubleConv(widths[i], widths[i + 1]) for i in range(depth))
        self.pool = nn.MaxPool2d(2)
        self.ups = nn.ModuleList()
        self.up_convs = nn.ModuleList()
        for i in reversed(range(depth)):
            if i % 2 == 0:
                self.ups.append(nn.ConvTranspose2d(widths[i + 1], widths[i], kernel_size=2, stride=2))
            else:
                self.ups.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                              nn.Conv2d(widths[i + 1], widths[i], kernel_size=1)))
            self.up_convs.append(DoubleConv(widths[i] * 2, widths[i]))
        self.outc = nn.Conv2d(widths[0], out_ch, kernel_size=1)

    def forward(self, x):
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(self.pool(skips[-1])))
        x = skips.pop()
        for up, conv in zip(self.ups, self.up_convs):
            x = conv(torch.cat([skips.pop(), up(x)], dim=1))
        return self.outc(x)


# --- BERT-like encoder ----------------------------------------------------------------------------

class BertEmbeddings(nn.Module):
    def __init__(self, vocab, hidden, max_pos, type_vocab=2):
        super().__init__()
        self.word = nn.Embedding(vocab, hidden)
        self.position = nn.Embedding(max_pos, hidden)
        self.token_type = nn.Embedding(type_vocab, hidden)
        self.norm = nn.LayerNorm(hidden, eps=1e-12)
        self.register_buffer("position_ids", torch.arange(max_pos).unsqueeze(0), persistent=False)

    def forward(self, input_ids, token_type_ids):
        # As in HF transformers: a Slice of a constant arange, ending at the dynamic sequence length.
        pos = self.position_ids[:, : input_ids.size(1)]
        x = self.word(input_ids) + self.token_type(token_type_ids) + self.position(pos)
        return self.norm(x)


class BertLayer(nn.Module):
    def __init__(self, hidden, heads, inter):
        super().__init__()
        self.heads, self.head_dim = heads, hidden // heads
        self.q, self.k, self.v = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)
        self.attn_out = nn.Linear(hidden, hidden)
        self.attn_norm = nn.LayerNorm(hidden, eps=1e-12)
        self.ff_in = nn.Linear(hidden, inter)
        self.gelu = nn.GELU()  # exact (erf) GELU, exported as Div/Erf/Add/Mul
        self.ff_out = nn.Linear(inter, hidden)
        self.ff_norm = nn.LayerNorm(hidden, eps=1e-12)

    def split_heads(self, x):
        # size() calls become Shape/Gather/Unsqueeze/Concat chains feeding Reshape, as PyTorch emits them.
        return x.view(x.size(0), x.size(1), self.heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, x, mask):
        q, k, v = self.split_heads(self.q(x)), self.split_heads(self.k(x)), self.split_heads(self.v(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        scores = scores.masked_fill(mask, torch.finfo(scores.dtype).min)  # -> Where
        probs = torch.softmax(scores, dim=-1)
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3)
        ctx = ctx.reshape(ctx.size(0), ctx.size(1), self.heads * self.head_dim)
        x = self.attn_norm(x + self.attn_out(ctx))
        return self.ff_norm(x + self.ff_out(self.gelu(self.ff_in(x))))


class BertEncoder(nn.Module):
    def __init__(self, vocab, hidden, layers, heads, inter, max_pos):
        super().__init__()
        self.embeddings = BertEmbeddings(vocab, hidden, max_pos)
        self.layers = nn.ModuleList(BertLayer(hidden, heads, inter) for _ in range(layers))
        self.pooler = nn.Linear(hidden, hidden)

    def forward(self, input_ids, attention_mask, token_type_ids):
        x = self.embeddings(input_ids, token_type_ids)
        mask = (attention_mask[:, None, None, :] == 0)  # padded keys: Unsqueeze, Equal
        for layer in self.layers:
            x = layer(x, mask)
        return x, torch.tanh(self.pooler(x[:, 0]))


def bert_inputs(batch, seq, vocab, seed):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab, size=(batch, seq), dtype=np.int64)
    mask = np.ones((batch, seq), dtype=np.int64)
    for b in range(1, batch):  # later rows padded, as in a real batch of unequal sentences
        mask[b, seq - 3 * b:] = 0
    types = np.zeros((batch, seq), dtype=np.int64)
    types[:, seq // 2:] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


# --- the catalog ----------------------------------------------------------------------------------

def image_input(shape, seed):
    return {"input": np.random.default_rng(seed).standard_normal(shape).astype(np.float32)}


IMAGE_AXES = {"input": {0: "batch"}, "output": {0: "batch"}}
BERT_AXES = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
             "token_type_ids": {0: "batch", 1: "sequence"}, "last_hidden_state": {0: "batch", 1: "sequence"},
             "pooler_output": {0: "batch"}}


def spec(model, inputs, outputs, axes, opset=17, keep_batchnorm=False, note=""):
    return dict(model=model, inputs=inputs, outputs=outputs, dynamic_axes=axes, opset=opset,
                keep_batchnorm=keep_batchnorm, note=note)


def small_models():
    """name -> spec. Kept small: the committed data of all of them stays well below 8 MB."""
    torch.manual_seed(1)
    resnet = MiniResNet(BasicBlock, [2, 1, 1, 1], [8, 16, 32, 64], num_classes=10)
    torch.manual_seed(2)
    mobilenet = torchvision.models.mobilenet_v3_small(width_mult=0.5, num_classes=10)
    torch.manual_seed(3)
    unet = UNet(base=8, depth=3)
    torch.manual_seed(4)
    bert = BertEncoder(vocab=512, hidden=64, layers=2, heads=4, inter=256, max_pos=64)
    torch.manual_seed(5)
    vit = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=4,
                                               hidden_dim=64, mlp_dim=128, num_classes=10)
    bert_in = bert_inputs(2, 16, 512, seed=14)
    return {
        "resnet_small": spec(randomize(resnet, 11), image_input((2, 3, 64, 64), 21), ["output"], IMAGE_AXES,
                             note="torchvision BasicBlock ResNet, widths 8-64, 64x64 input"),
        "mobilenetv3_small": spec(randomize(mobilenet, 12), image_input((1, 3, 64, 64), 22), ["output"],
                                  IMAGE_AXES, note="torchvision mobilenet_v3_small, width_mult 0.5"),
        "unet_small": spec(randomize(unet, 13), image_input((1, 3, 64, 64), 23), ["output"], IMAGE_AXES,
                           keep_batchnorm=True, note="UNet base 8, depth 3, BatchNormalization kept"),
        "bert_tiny": spec(randomize(bert, 14), bert_in, ["last_hidden_state", "pooler_output"], BERT_AXES,
                          note="2 layers, hidden 64, 4 heads, padded batch of 2 x 16"),
        "bert_tiny_opset13": spec(bert, bert_in, ["last_hidden_state", "pooler_output"], BERT_AXES, opset=13,
                                  note="same weights as bert_tiny, exported at opset 13"),
        "vit_tiny": spec(randomize(vit, 15), image_input((2, 3, 32, 32), 25), ["output"], IMAGE_AXES,
                         note="torchvision VisionTransformer, 32x32, patch 8, 2 layers, hidden 64"),
    }


def full_size_models():
    """The real sizes (hundreds of MB of weights): for check_full_size.sh only."""
    torch.manual_seed(101)
    resnet = torchvision.models.resnet50()
    torch.manual_seed(102)
    mobilenet = torchvision.models.mobilenet_v3_large()
    torch.manual_seed(103)
    vit = torchvision.models.vit_b_16()
    torch.manual_seed(104)
    unet = UNet(base=64, depth=4)
    torch.manual_seed(105)
    bert = BertEncoder(vocab=30522, hidden=768, layers=12, heads=12, inter=3072, max_pos=512)
    return {
        "resnet50": spec(randomize(resnet, 111), image_input((1, 3, 224, 224), 121), ["output"], IMAGE_AXES),
        "mobilenet_v3_large": spec(randomize(mobilenet, 112), image_input((1, 3, 224, 224), 122), ["output"],
                                   IMAGE_AXES),
        "vit_b_16": spec(randomize(vit, 113), image_input((1, 3, 224, 224), 123), ["output"], IMAGE_AXES),
        "unet": spec(randomize(unet, 114), image_input((1, 3, 256, 256), 124), ["output"], IMAGE_AXES,
                     keep_batchnorm=True),
        "bert_base": spec(randomize(bert, 115), bert_inputs(1, 128, 30522, seed=125),
                          ["last_hidden_state", "pooler_output"], BERT_AXES),
    }
