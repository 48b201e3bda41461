"""PyTorch's side of bench/block-cpu.mjs: d2l's ResidualBlock on the CPU, forward (train-mode BN)
or, for cases with "backward": true, forward + backward with the input gradient.

Usage: python bench/torch_block.py THREADS WARMUP ITERS CASES_JSON  -> prints JSON results.
"""
import json
import statistics
import sys
import time

import torch

from torch_models import ResidualBlock


def main():
    threads, warmup, iters = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    cases = json.loads(sys.argv[4])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    out = []
    for case in cases:
        for fmt in ("nchw", "channels_last"):
            blk = ResidualBlock(case["in"], case["out"], case["use1x1conv"], case["strides"])
            x = torch.randn(case["n"], case["in"], case["h"], case["w"])
            if fmt == "channels_last":
                blk = blk.to(memory_format=torch.channels_last)
                x = x.to(memory_format=torch.channels_last)
            times = []
            backward = case.get("backward", False)
            x.requires_grad_(backward)
            gy = None
            with torch.set_grad_enabled(backward):
                for i in range(warmup + iters):
                    t0 = time.perf_counter()
                    y = blk(x)
                    if backward:
                        if gy is None:
                            gy = torch.ones_like(y)
                        y.backward(gy)
                    if i >= warmup:
                        times.append((time.perf_counter() - t0) * 1000)
                    blk.zero_grad(set_to_none=False)
                    x.grad = None
            out.append({"name": case["name"], "format": fmt, "median_ms": statistics.median(times), "min_ms": min(times)})
    print(json.dumps({"torch": torch.__version__, "threads": threads, "results": out}))


if __name__ == "__main__":
    main()
