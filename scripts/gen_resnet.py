#!/usr/bin/env python3
"""Writes the ResNet cfgs in cfg/ (CIFAR-style: 3x3 stem, no max-pool).

Darknet's own ResNet cfgs let [shortcut] add tensors of different shapes by
sampling; our [shortcut] requires equal shapes, so a downsampling block ends
with a 1x1 strided projection of its input (He et al. 2016, option B):

    conv 3x3/2 -> conv 3x3/1 (linear) -> route back to the block input
    -> conv 1x1/2 (linear) -> shortcut to the second conv

scripts/gen_networks.py imports the backbone from here for the hybrid
ResNet-50 and writes every network cfg, these included.
"""
import sys

NET = """[net]
batch={batch}
subdivisions=1
height={h}
width={w}
channels={c}
momentum=0.9
decay=0.0005
learning_rate={lr}
policy=constant
max_batches=1000
"""


def conv(f, size, stride, act, bn=1):
    pad = 1 if size > 1 else 0
    return (f"[convolutional]\nbatch_normalize={bn}\nfilters={f}\nsize={size}\n"
            f"stride={stride}\npad={pad}\nactivation={act}\n")


def basic_block(f, stride, project):
    s = "# basic block\n" + conv(f, 3, stride, "relu") + conv(f, 3, 1, "linear")
    if project:
        s += "[route]\nlayers=-3\n" + conv(f, 1, stride, "linear")
    return s + "[shortcut]\nfrom=-3\nactivation=relu\n"


def bottleneck(f, stride, project):
    s = ("# bottleneck block\n" + conv(f, 1, 1, "relu") + conv(f, 3, stride, "relu")
         + conv(4 * f, 1, 1, "linear"))
    if project:
        return s + "[route]\nlayers=-4\n" + conv(4 * f, 1, stride, "linear") + \
            "[shortcut]\nfrom=-3\nactivation=relu\n"
    return s + "[shortcut]\nfrom=-4\nactivation=relu\n"


def resnet_backbone(blocks, widths, kind="basic", stem=64):
    """Stem and residual stages, ending with [avgpool] (no classifier)."""
    out = ["\n# stem: 3x3 convolution, no max-pool (CIFAR-style)\n",
           conv(stem, 3, 1, "relu")]
    channels = stem
    for stage, (n, f) in enumerate(zip(blocks, widths)):
        for b in range(n):
            stride = 2 if stage > 0 and b == 0 else 1
            if kind == "basic":
                project = stride != 1 or channels != f
                out.append("\n" + basic_block(f, stride, project))
                channels = f
            else:
                project = stride != 1 or channels != 4 * f
                out.append("\n" + bottleneck(f, stride, project))
                channels = 4 * f
    out.append("\n[avgpool]\n")
    return "".join(out)


def resnet(blocks, widths, kind="basic", stem=64, batch=128, h=32, w=32, c=3,
           classes=10, lr=0.1, title="", net_extra=""):
    return "".join([f"# {title}\n", NET.format(batch=batch, h=h, w=w, c=c, lr=lr),
                    net_extra,
                    resnet_backbone(blocks, widths, kind, stem),
                    f"\n[connected]\noutput={classes}\nactivation=linear\n"
                    "\n[softmax]\n"])


# The demo's small ResNet (blocks per stage, widths), also the backbone of
# scripts/gen_networks.py's resnet-small-hybrid.cfg
SMALL = ([1, 1, 1], [16, 32, 64])
SMALL_NET_EXTRA = ("# PyTorch's batch-norm momentum: rolling statistics that follow\n"
                   "# high learning rates closely enough to validate during training\n"
                   "bn_momentum=0.1\n")

CFGS = {
    "resnet18-cifar.cfg": lambda: resnet([2, 2, 2, 2], [64, 128, 256, 512],
                                         title="ResNet-18 for CIFAR-10 (32x32x3, 10 classes)"),
    "resnet34-cifar.cfg": lambda: resnet([3, 4, 6, 3], [64, 128, 256, 512],
                                         title="ResNet-34 for CIFAR-10 (32x32x3, 10 classes)"),
    "resnet50-cifar.cfg": lambda: resnet([3, 4, 6, 3], [64, 128, 256, 512], "bottleneck",
                                         title="ResNet-50 for CIFAR-10 (32x32x3, 10 classes)"),
    "resnet-small.cfg": lambda: resnet(*SMALL, stem=16, h=28, w=28, c=1,
                                       title="A small ResNet (8 conv layers) for 28x28 "
                                             "grey images: the demo network",
                                       net_extra=SMALL_NET_EXTRA),
}

if __name__ == "__main__":
    outdir = sys.argv[1] if len(sys.argv) > 1 else "cfg"
    for name, make in CFGS.items():
        with open(f"{outdir}/{name}", "w") as f:
            f.write(make())
        print(f"wrote {outdir}/{name}")
