"""PyTorch peer for the benchmark tables: builds the network a cfg describes
out of standard PyTorch modules and trains it on random inputs with SGD
(momentum 0.9, weight decay 5e-4, cross-entropy), as bench/train_bench.c
trains the same cfg here.

    python3 torch_peer.py BATCH [TIMED] [WARMUP] [THREADS]
                          [--cfg CFG | --arch resnet18|resnet34]
                          [--device cpu|cuda] [--count]

--arch NAME is --cfg cfg/NAME-cifar.cfg (the default: resnet18). --count
prints the parameter count and exits without training.

The cfg is read section by section, each mapped onto its PyTorch module:

    [convolutional]  nn.Conv2d (no bias with batch_normalize=1, then
                     nn.BatchNorm2d), then the activation
    [maxpool]        nn.MaxPool2d (Darknet's total padding: an odd one pads
                     one more on the right and bottom, with -inf)
    [avgpool]        nn.AdaptiveAvgPool2d(1)
    [route]          torch.cat of earlier outputs (or the input) on channels
    [shortcut]       the sum of the previous output and an earlier one
    [connected]      nn.Linear on the flattened input
    [attention]      nn.MultiheadAttention (bias, batch_first) over the h*w
                     positions as tokens, after a learned positional
                     embedding [1, N, C] with positional=1
                     (docs/attention.md: W_qkv and W_o with their biases are
                     its in_proj and out_proj)
    [layernorm]      nn.LayerNorm over the channels of each position
    [dropout]        nn.Dropout
    [softmax]        none: the loss is nn.CrossEntropyLoss on the logits

so the parameter counts must equal darknet summary's; bench/run.sh refuses
to compare the two when they do not. The output of a layer is kept only
while a later [route] or [shortcut] still needs it.

On CUDA: NCHW tensors (as this framework), the inputs already on the
device, cudnn.benchmark on, TF32 allowed for convolutions and matmuls
(PyTorch's fast fp32 setting on Ampere and later), and every timed batch
ends with torch.cuda.synchronize(). Prints the median batch as images/s,
the parameter count and the peak resident memory of the process
(getrusage's ru_maxrss: the interpreter and libtorch included).
"""
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn

ACTIVATIONS = {
    "linear": nn.Identity, "relu": nn.ReLU, "leaky": lambda: nn.LeakyReLU(0.1),
    "logistic": nn.Sigmoid, "tanh": nn.Tanh, "elu": nn.ELU, "selu": nn.SELU,
    "mish": nn.Mish, "swish": nn.SiLU, "gelu": nn.GELU,  # exact (erf), as ours
}


def read_cfg(path):
    """[(section name, {key: value})] in file order; '#' starts a comment."""
    sections = []
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("["):
                sections.append((line.strip("[]").strip(), {}))
            elif "=" in line and sections:
                key, value = line.split("=", 1)
                sections[-1][1][key.strip()] = value.strip()
    return sections


def activation(keys):
    name = keys.get("activation", "linear")
    if name not in ACTIVATIONS:
        sys.exit(f"torch_peer: activation {name} has no PyTorch module here")
    return ACTIVATIONS[name]()


class Attention(nn.Module):
    """in, out: [B, C, H, W]; the H*W positions are the tokens."""

    def __init__(self, c, tokens, heads, positional):
        super().__init__()
        self.mha = nn.MultiheadAttention(c, heads, batch_first=True)
        self.pos = nn.Parameter(0.02 * torch.randn(1, tokens, c)) if positional else None

    def forward(self, x):
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)  # [B, N, C]
        if self.pos is not None:
            t = t + self.pos
        o, _ = self.mha(t, t, t, need_weights=False)
        return o.transpose(1, 2).reshape(b, c, h, w)


class LayerNorm(nn.Module):
    """Over the channels of each position: in, out [B, C, H, W]."""

    def __init__(self, c):
        super().__init__()
        self.ln = nn.LayerNorm(c)

    def forward(self, x):
        return self.ln(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def conv(keys, c, h, w, bn_momentum):
    filters, size = int(keys.get("filters", 1)), int(keys.get("size", 1))
    stride, groups = int(keys.get("stride", 1)), int(keys.get("groups", 1))
    dilation = int(keys.get("dilation", 1))
    pad = size // 2 if int(keys.get("pad", 0)) else int(keys.get("padding", 0))
    bn = int(keys.get("batch_normalize", 0))
    mods = [nn.Conv2d(c, filters, size, stride, pad, dilation, groups, bias=not bn)]
    if bn:
        mods.append(nn.BatchNorm2d(filters, momentum=bn_momentum))
    mods.append(activation(keys))
    out = [(n + 2 * pad - dilation * (size - 1) - 1) // stride + 1 for n in (h, w)]
    return nn.Sequential(*mods), (filters, *out)


def maxpool(keys, c, h, w):
    stride = int(keys.get("stride", 1))
    size = int(keys.get("size", stride))
    p = int(keys.get("padding", size - 1))  # the windows start at -(p // 2)
    pool = nn.MaxPool2d(size, stride)
    if p:
        pool = nn.Sequential(nn.ConstantPad2d((p // 2, p - p // 2, p // 2, p - p // 2),
                                              float("-inf")), pool)
    return pool, (c, (h + p - size) // stride + 1, (w + p - size) // stride + 1)


def sources(value, i):
    """[route] layers: 'input' is -1, relative indices become absolute."""
    out = []
    for v in value.split(","):
        v = v.strip()
        out.append(-1 if v == "input" else (i + int(v) if int(v) < 0 else int(v)))
    return out


class CfgNet(nn.Module):
    def __init__(self, path):
        super().__init__()
        sections = read_cfg(path)
        if not sections or sections[0][0] not in ("net", "network"):
            sys.exit(f"torch_peer: {path}: the first section must be [net]")
        net = sections[0][1]
        self.input_shape = tuple(int(net[k]) for k in ("channels", "height", "width"))
        bn_momentum = float(net.get("bn_momentum", 0.01))
        shapes, self.kinds, self.refs = [], [], []
        layers = []
        for i, (kind, keys) in enumerate(sections[1:]):
            c, h, w = shapes[-1] if shapes else self.input_shape
            refs, mod = [], nn.Identity()
            if kind == "convolutional":
                mod, shape = conv(keys, c, h, w, bn_momentum)
            elif kind == "maxpool":
                mod, shape = maxpool(keys, c, h, w)
            elif kind == "avgpool":
                mod, shape = nn.AdaptiveAvgPool2d(1), (c, 1, 1)
            elif kind == "route":
                refs = sources(keys["layers"], i)
                parts = [shapes[r] if r >= 0 else self.input_shape for r in refs]
                shape = (sum(p[0] for p in parts), *parts[0][1:])
            elif kind == "shortcut":
                refs = [i + int(keys["from"]) if int(keys["from"]) < 0 else int(keys["from"])]
                mod, shape = activation(keys), (c, h, w)
            elif kind == "connected":
                out, bn = int(keys["output"]), int(keys.get("batch_normalize", 0))
                mods = [nn.Flatten(), nn.Linear(c * h * w, out, bias=not bn)]
                if bn:
                    mods.append(nn.BatchNorm1d(out, momentum=bn_momentum))
                mod, shape = nn.Sequential(*mods, activation(keys)), (out, 1, 1)
            elif kind == "attention":
                mod = Attention(c, h * w, int(keys.get("heads", 1)),
                                int(keys.get("positional", 0)))
                shape = (c, h, w)
            elif kind == "layernorm":
                mod, shape = LayerNorm(c), (c, h, w)
            elif kind == "dropout":
                mod, shape = nn.Dropout(float(keys.get("probability", 0.5))), (c, h, w)
            elif kind == "softmax":
                shape = (c, h, w)  # CrossEntropyLoss applies it
            else:
                sys.exit(f"torch_peer: {path}: [{kind}] has no PyTorch module here")
            layers.append(mod)
            shapes.append(shape)
            self.kinds.append(kind)
            self.refs.append(refs)
        self.layers = nn.ModuleList(layers)
        self.classes = shapes[-1][0]
        # last_use[j]: the last layer that reads output j (route, shortcut)
        self.last_use = {}
        for i, refs in enumerate(self.refs):
            for r in refs:
                self.last_use[r] = i

    def forward(self, x):
        kept, y = {-1: x}, x
        for i, (kind, mod) in enumerate(zip(self.kinds, self.layers)):
            refs = self.refs[i]
            if kind == "route":
                y = torch.cat([kept[r] for r in refs], 1) if len(refs) > 1 else kept[refs[0]]
            elif kind == "shortcut":
                y = mod(y + kept[refs[0]])
            else:
                y = mod(y)
            for r in refs:
                if self.last_use[r] == i:
                    del kept[r]
            if i in self.last_use:
                kept[i] = y
        return y.flatten(1)


def option(args, name, default, choices=None):
    """Take --name VALUE out of args."""
    if name not in args:
        return default
    i = args.index(name)
    if i + 1 >= len(args) or (choices and args[i + 1] not in choices):
        sys.exit(f"{name}: expected " + (f"one of {', '.join(choices)}" if choices else "a value"))
    value = args[i + 1]
    del args[i:i + 2]
    return value


def flag(args, name):
    if name in args:
        args.remove(name)
        return True
    return False


def main():
    args = sys.argv[1:]
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    arch = option(args, "--arch", "resnet18", ["resnet18", "resnet34"])
    cfg = option(args, "--cfg", os.path.join(root, "cfg", f"{arch}-cifar.cfg"))
    device = option(args, "--device", "cpu", ["cpu", "cuda"])
    count_only = flag(args, "--count")
    torch.manual_seed(1)
    net = CfgNet(cfg)
    params = sum(p.numel() for p in net.parameters())
    if count_only:
        print(f"params {params}  ({os.path.basename(cfg)}, torch {torch.__version__})")
        return
    batch = int(args[0])
    timed = int(args[1]) if len(args) > 1 else 20
    warmup = int(args[2]) if len(args) > 2 else 3
    threads = int(args[3]) if len(args) > 3 else 2
    torch.set_num_threads(threads)
    cuda = device == "cuda"
    if cuda:
        if not torch.cuda.is_available():
            sys.exit("torch_peer: --device cuda, but torch.cuda.is_available() is False")
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cuda.matmul.allow_tf32 = True
    net = net.to(device)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.rand(batch, *net.input_shape, device=device)
    y = (torch.arange(batch) % net.classes).to(device)
    loss_fn = nn.CrossEntropyLoss()
    times = []
    for i in range(warmup + timed):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        if cuda:
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    where = (f"{torch.cuda.get_device_name()}, cudnn.benchmark, TF32 allowed"
             if cuda else f"{threads} threads")
    print(f"images/s {batch / med:.1f}  median batch {med:.{4 if cuda else 3}f} s  "
          f"params {params}  peak RSS {rss:.0f} MiB  "
          f"({os.path.basename(cfg)}, batch {batch}, {timed} timed, {where}, "
          f"torch {torch.__version__}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')})")


if __name__ == "__main__":
    main()
