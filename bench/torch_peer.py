"""PyTorch peer for the benchmark table: the same ResNet as cfg/resnet18-cifar.cfg
(3x3 stem, basic blocks, 1x1 strided projections, BN, ReLU, global average
pool, linear 10), trained on random inputs with SGD momentum.

    python3 torch_peer.py BATCH [TIMED] [WARMUP] [THREADS]
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


def resnet18():
    layers = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
    cin = 64
    for i, c in enumerate([64, 128, 256, 512]):
        for b in range(2):
            layers.append(Block(cin, c, 2 if i > 0 and b == 0 else 1))
            cin = c
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 10)]
    return nn.Sequential(*layers)


def main():
    batch = int(sys.argv[1])
    timed = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    warmup = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    net = resnet18()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.rand(batch, 3, 32, 32)
    y = torch.arange(batch) % 10
    loss_fn = nn.CrossEntropyLoss()
    times = []
    for i in range(warmup + timed):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(f"images/s {batch / med:.1f}  median batch {med:.3f} s  "
          f"(batch {batch}, {timed} timed, {threads} threads, torch {torch.__version__})")


if __name__ == "__main__":
    main()
