"""PyTorch's side of bench/resnet18-cpu.mjs: one d2l ResNet-18 training step on the CPU.

Usage: python bench/torch_resnet18_step.py THREADS BATCH SIZE WARMUP ITERS -> JSON on stdout.
"""
import json
import statistics
import sys
import time

import torch
from torch.nn import functional as F

from torch_models import resnet18


def main():
    threads, batch, size, warmup, iters = map(int, sys.argv[1:6])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = resnet18()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x = torch.rand(batch, 1, size, size)
    y = torch.randint(0, 10, (batch,))
    times = []
    for i in range(warmup + iters):
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1000)
    ms = statistics.median(times)
    print(json.dumps({"torch": torch.__version__, "threads": threads, "median_ms": ms, "images_per_s": batch / ms * 1000}))


if __name__ == "__main__":
    main()
