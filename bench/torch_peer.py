"""PyTorch peer for the benchmark tables: the same ResNets as
cfg/resnet18-cifar.cfg and cfg/resnet34-cifar.cfg (3x3 stem, basic blocks,
1x1 strided projections, BN, ReLU, global average pool, linear 10), trained
on random inputs with SGD momentum and weight decay.

    python3 torch_peer.py BATCH [TIMED] [WARMUP] [THREADS]
                          [--arch resnet18|resnet34] [--device cpu|cuda]

On CUDA: NCHW tensors (as this framework), the inputs already on the
device, cudnn.benchmark on, TF32 allowed for convolutions and matmuls
(PyTorch's fast fp32 setting on Ampere and later), and every timed batch
ends with torch.cuda.synchronize(). Prints the median batch as images/s.
"""
import statistics
import sys
import time

import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.proj = None
        if stride != 1 or cin != cout:
            self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False),
                                      nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.b2(self.c2(torch.relu(self.b1(self.c1(x)))))
        return torch.relu(y + (self.proj(x) if self.proj is not None else x))


BLOCKS = {"resnet18": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3]}


def resnet(arch):
    layers = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
    cin = 64
    for i, (c, n) in enumerate(zip([64, 128, 256, 512], BLOCKS[arch])):
        for b in range(n):
            layers.append(Block(cin, c, 2 if i > 0 and b == 0 else 1))
            cin = c
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 10)]
    return nn.Sequential(*layers)


def option(args, name, default, choices):
    """Take --name VALUE out of args."""
    if name not in args:
        return default
    i = args.index(name)
    if i + 1 >= len(args) or args[i + 1] not in choices:
        sys.exit(f"{name}: expected one of {', '.join(choices)}")
    value = args[i + 1]
    del args[i:i + 2]
    return value


def main():
    args = sys.argv[1:]
    arch = option(args, "--arch", "resnet18", list(BLOCKS))
    device = option(args, "--device", "cpu", ["cpu", "cuda"])
    batch = int(args[0])
    timed = int(args[1]) if len(args) > 1 else 20
    warmup = int(args[2]) if len(args) > 2 else 3
    threads = int(args[3]) if len(args) > 3 else 2
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    cuda = device == "cuda"
    if cuda:
        if not torch.cuda.is_available():
            sys.exit("torch_peer: --device cuda, but torch.cuda.is_available() is False")
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cuda.matmul.allow_tf32 = True
    net = resnet(arch).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.rand(batch, 3, 32, 32, device=device)
    y = (torch.arange(batch) % 10).to(device)
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
    where = (f"{torch.cuda.get_device_name()}, cudnn.benchmark, TF32 allowed"
             if cuda else f"{threads} threads")
    print(f"images/s {batch / med:.1f}  median batch {med:.{4 if cuda else 3}f} s  "
          f"({arch}, batch {batch}, {timed} timed, {where}, torch {torch.__version__})")


if __name__ == "__main__":
    main()
