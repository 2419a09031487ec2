#!/usr/bin/env python3
"""Writes every network cfg in cfg/: the ResNets of scripts/gen_resnet.py
(experiment 1 of Naveen 2024 trains resnet34-cifar.cfg), a plain VGG-16
(vgg16-cifar.cfg, the hybrid's backbone without its branch) and the hybrid
networks of experiment 2, a CNN with a transformer branch:

    image -> CNN backbone -> [avgpool] ------------------------+
    image -> [route] layers=input -> patch conv 4x4/4           |
          -> encoder block (attention, shortcut, layernorm,     +-> [route] (concat)
             1x1-conv MLP, shortcut, layernorm) -> [avgpool] --+   -> [connected] -> [softmax]

The backbones are CIFAR-sized (32x32x3 in, 10 classes): a stride-1 3x3
stem instead of ImageNet's 7x7/2 stem and max-pool, the stages' feature
maps a quarter to an eighth of ImageNet's side, and no large fully
connected head (the classifier is one [connected] layer on the
concatenated pooled features). Batch normalisation follows every
convolution of the backbones (VGG and GoogLeNet predate it; their CIFAR
versions use it as a rule).

The transformer branch cuts the image into 4x4 patches (8x8 = 64 tokens),
embeds each in 64 dimensions and runs one post-norm encoder block with 4
heads and an MLP 4x wide (docs/attention.md), so attention costs little
next to the CNN.

    scripts/gen_networks.py [OUTDIR]        (default cfg)
"""
import sys

from gen_resnet import (CFGS as RESNETS, NET, SMALL, SMALL_NET_EXTRA, conv,
                        resnet_backbone)

CLASSES = 10

# ------------------------------------------------------------ building blocks


def section(kind, **keys):
    return f"[{kind}]\n" + "".join(f"{k}={v}\n" for k, v in keys.items())


def maxpool(size, stride, padding=None):
    keys = {"size": size, "stride": stride}
    if padding is not None:
        keys["padding"] = padding
    return section("maxpool", **keys)


def sepconv(cin, cout, act):
    """Depthwise-separable convolution (Xception): a 3x3 convolution per
    channel (groups = channels), then a 1x1 convolution across channels."""
    return (section("convolutional", filters=cin, groups=cin, size=3, stride=1,
                    pad=1, activation="linear")
            + conv(cout, 1, 1, act))


# ------------------------------------------------------------------- VGG

VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
         512, 512, 512, "M", 512, 512, 512, "M"]
VGG19 = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
         512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]


def vgg_backbone(plan):
    """Simonyan and Zisserman 2015, with BN; five 2x2 max-pools take 32x32
    to 1x1x512, where ImageNet's VGG keeps 7x7x512 for its 4096-wide head."""
    out = ["\n# VGG features: 3x3 convolutions, 2x2 max-pools\n"]
    for v in plan:
        out.append(maxpool(2, 2, 0) if v == "M" else conv(v, 3, 1, "relu"))
    out.append("\n[avgpool]\n")
    return "".join(out)


# ------------------------------------------------------------- GoogLeNet

# Szegedy et al. 2015, Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5,
# pool proj
INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64), "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}


def inception(name):
    """Four branches from the module's input, concatenated by [route]."""
    b1, b2r, b2, b3r, b3, b4 = INCEPTION[name]
    return (f"\n# inception {name}: {b1 + b2 + b3 + b4} channels out\n"
            + conv(b1, 1, 1, "relu")                       # i:   1x1
            + section("route", layers=-2)                  # i+1: module input
            + conv(b2r, 1, 1, "relu") + conv(b2, 3, 1, "relu")
            + section("route", layers=-5)                  # i+4: module input
            + conv(b3r, 1, 1, "relu") + conv(b3, 5, 1, "relu")
            + section("route", layers=-8)                  # i+7: module input
            + maxpool(3, 1) + conv(b4, 1, 1, "relu")       # i+8, i+9
            + section("route", layers="-10,-7,-4,-1"))     # i+10: concat


def googlenet_backbone():
    """ImageNet's GoogLeNet reaches inception 3 at 28x28, 4 at 14x14, 5 at
    7x7; here 16x16, 8x8, 4x4 (a 3x3 stride-1 stem and one max-pool before
    the 1x1 and 3x3 stem convolutions)."""
    down = maxpool(3, 2)  # 3x3/2, padding 2: 32 -> 16 -> 8 -> 4
    out = ["\n# stem\n", conv(64, 3, 1, "relu"), down,
           conv(64, 1, 1, "relu"), conv(192, 3, 1, "relu")]
    out += [inception("3a"), inception("3b"), "\n" + down]
    out += [inception(n) for n in ("4a", "4b", "4c", "4d", "4e")]
    out += ["\n" + down, inception("5a"), inception("5b"), "\n[avgpool]\n"]
    return "".join(out)


# -------------------------------------------------------------- Xception


def xception_down_block(cin, mid, cout):
    """Entry/exit-flow block: two separable convolutions and a 3x3/2
    max-pool, plus a 1x1/2 projection of the block's input."""
    return (f"\n# xception block {cin} -> {cout}, /2\n"
            + sepconv(cin, mid, "relu") + sepconv(mid, cout, "linear")  # i..i+3
            + maxpool(3, 2)                                             # i+4
            + section("route", layers=-6)                               # i+5: input
            + conv(cout, 1, 2, "linear")                                # i+6
            + section("shortcut", **{"from": -3, "activation": "relu"}))


def xception_middle_block(c):
    return ("\n# xception middle-flow block\n"
            + sepconv(c, c, "relu") + sepconv(c, c, "relu")
            + sepconv(c, c, "linear")
            + section("shortcut", **{"from": -7, "activation": "relu"}))


def xception_backbone():
    """Chollet 2017: entry flow (128, 256, 728), 8 middle-flow blocks of 728,
    exit flow (728 -> 1024, then 1536 and 2048). The stem keeps 32x32 (no
    stride), so the middle flow runs at 4x4 and the exit at 2x2."""
    out = ["\n# stem\n", conv(32, 3, 1, "relu"), conv(64, 3, 1, "relu"),
           xception_down_block(64, 128, 128), xception_down_block(128, 256, 256),
           xception_down_block(256, 728, 728)]
    out += [xception_middle_block(728) for _ in range(8)]
    out += [xception_down_block(728, 728, 1024), "\n# exit flow\n",
            sepconv(1024, 1536, "relu"), sepconv(1536, 2048, "relu"),
            "\n[avgpool]\n"]
    return "".join(out)


# ------------------------------------------------------------ the hybrid

BRANCH_LAYERS = 10  # layers from [route] layers=input to the branch's [avgpool]


def transformer_branch(patch=4, dim=64, heads=4, mlp=4):
    s = ("\n# transformer branch, from the image: 4x4 patches -> 8x8 tokens of "
         f"{dim} dims\n"
         + section("route", layers="input")
         + section("convolutional", filters=dim, size=patch, stride=patch,
                   activation="linear")
         + "\n# encoder block (post-norm): x = LN(x + MHA(x)); x = LN(x + MLP(x))\n"
         + section("attention", heads=heads, positional=1)
         + section("shortcut", **{"from": -2})
         + section("layernorm")
         + section("convolutional", filters=mlp * dim, size=1, activation="gelu")
         + section("convolutional", filters=dim, size=1, activation="linear")
         + section("shortcut", **{"from": -3})
         + section("layernorm")
         + "\n# mean over the tokens\n[avgpool]\n")
    assert s.count("\n[") + s.startswith("[") == BRANCH_LAYERS
    return s


def hybrid(title, backbone, batch=32, lr=0.001, net_extra=""):
    head = ("\n# classifier on [CNN features, transformer features]\n"
            + section("route", layers=f"-{BRANCH_LAYERS + 1},-1")
            + section("connected", output=CLASSES, activation="linear")
            + "\n[softmax]\n")
    return "".join([f"# {title}\n# generated by scripts/gen_networks.py\n",
                    NET.format(batch=batch, h=32, w=32, c=3, lr=lr), net_extra,
                    backbone, transformer_branch(), head])


def plain(title, backbone, batch=128, lr=0.1):
    """A backbone alone with the one-layer classifier (no transformer branch)."""
    return "".join([f"# {title}\n# generated by scripts/gen_networks.py\n",
                    NET.format(batch=batch, h=32, w=32, c=3, lr=lr), backbone,
                    "\n# classifier\n",
                    section("connected", output=CLASSES, activation="linear"),
                    "\n[softmax]\n"])


HYBRID = "with a transformer branch, CIFAR-10 (32x32x3, 10 classes)"
CFGS = dict(RESNETS)
CFGS.update({
    "resnet50-hybrid.cfg": lambda: hybrid(
        "ResNet-50 " + HYBRID,
        resnet_backbone([3, 4, 6, 3], [64, 128, 256, 512], "bottleneck")),
    "googlenet-hybrid.cfg": lambda: hybrid("GoogLeNet " + HYBRID, googlenet_backbone()),
    "xception-hybrid.cfg": lambda: hybrid("Xception " + HYBRID, xception_backbone()),
    "vgg16-hybrid.cfg": lambda: hybrid("VGG-16 (BN) " + HYBRID, vgg_backbone(VGG16)),
    "vgg19-hybrid.cfg": lambda: hybrid("VGG-19 (BN) " + HYBRID, vgg_backbone(VGG19)),
    # not the paper's: the hybrid's backbone alone, a plain CNN beside the
    # ResNets (batch 128, as they)
    "vgg16-cifar.cfg": lambda: plain("VGG-16 (BN) for CIFAR-10 (32x32x3, 10 classes)",
                                     vgg_backbone(VGG16)),
    # not the paper's: experiment 2's protocol on a network that a 2-core CPU
    # trains in minutes per epoch (the demo's ResNet, 32x32x3 in)
    "resnet-small-hybrid.cfg": lambda: hybrid(
        "The demo's small ResNet (resnet-small.cfg, 8 conv layers) " + HYBRID,
        resnet_backbone(*SMALL, stem=16), net_extra=SMALL_NET_EXTRA),
})

if __name__ == "__main__":
    outdir = sys.argv[1] if len(sys.argv) > 1 else "cfg"
    for name, make in CFGS.items():
        with open(f"{outdir}/{name}", "w") as f:
            f.write(make())
        print(f"wrote {outdir}/{name}")
