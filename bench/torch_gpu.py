"""PyTorch's side of bench/gpu.mjs, on the same GPU, in the same call.

Usage: python bench/torch_gpu.py CASES_JSON WARMUP ITERS -> JSON on stdout.
Each case: {"name", "kind": "block"|"resnet18", "n", "in", "out", "h", "w", "strides", "use1x1conv",
"train": bool, "precision": "fp32"|"bf16"}. fp32 runs with TF32 allowed (PyTorch's default for
cuDNN convolutions) in NCHW; bf16 runs under autocast with channels_last. Also measures the
tensor-core rate (bf16 matmul) and the memory bandwidth (device copy), for the floors.
"""
import json
import statistics
import sys

import torch
from torch.nn import functional as F

from torch_models import ResidualBlock, resnet18


def timed(fn, warmup, iters):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def run_epoch(c, warmup):
    """A whole d2l-style epoch with data feeding: uint8 28x28 images in pinned host memory, each
    batch copied to the GPU, scaled to [0, 1] and resized to 96x96 there, then one training step."""
    torch.manual_seed(0)
    bf16 = c["precision"] == "bf16"
    fmt = torch.channels_last if bf16 else torch.contiguous_format
    n, batch = c["images"], c["n"]
    images = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8).pin_memory()
    labels = torch.randint(0, 10, (n,)).pin_memory()
    model = resnet18().cuda().to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)

    def step(idx):
        x = images[idx].cuda(non_blocking=True).float().div_(255)
        x = F.interpolate(x, size=(c["h"], c["w"]), mode="bilinear", align_corners=False).contiguous(memory_format=fmt)
        y = labels[idx].cuda(non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    perm = torch.randperm(n)
    for i in range(warmup):
        step(perm[i * batch:(i + 1) * batch])
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    steps = n // batch
    for i in range(steps):
        step(perm[i * batch:(i + 1) * batch])
    end.record()
    end.synchronize()
    ms = start.elapsed_time(end)
    return {"name": c["name"], "precision": c["precision"], "ms": ms, "images_per_s": steps * batch / ms * 1000}


def run_case(c, warmup, iters):
    if c["kind"] == "epoch":
        return run_epoch(c, warmup)
    torch.manual_seed(0)
    bf16 = c["precision"] == "bf16"
    fmt = torch.channels_last if bf16 else torch.contiguous_format
    if c["kind"] == "block":
        model = ResidualBlock(c["in"], c["out"], c["use1x1conv"], c["strides"])
        x = torch.randn(c["n"], c["in"], c["h"], c["w"], device="cuda")
    else:
        model = resnet18()
        x = torch.randn(c["n"], 1, c["h"], c["w"], device="cuda")
    model = model.cuda().to(memory_format=fmt)
    x = x.to(memory_format=fmt)
    labels = torch.randint(0, 10, (c["n"],), device="cuda")
    opt = torch.optim.SGD(model.parameters(), lr=0.05)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            y = model(x)
            if c["kind"] == "resnet18":
                loss = F.cross_entropy(y.float(), labels)
            else:
                loss = y.float().sum()
        if c["train"]:
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if c["kind"] == "resnet18":
                opt.step()

    if c["train"]:
        model.train()
        ms = timed(step, warmup, iters)
    else:
        model.train()
        with torch.no_grad():
            ms = timed(step, warmup, iters)
    return {"name": c["name"], "precision": c["precision"], "ms": ms, "images_per_s": c["n"] / ms * 1000}


def rates():
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    ms = timed(lambda: a @ b, 3, 10)
    tflops = 2 * 8192 ** 3 / (ms / 1000) / 1e12
    src = torch.randn(256 * 1024 * 1024, device="cuda")  # 1 GiB
    dst = torch.empty_like(src)
    ms = timed(lambda: dst.copy_(src), 3, 10)
    gbps = 2 * src.numel() * 4 / (ms / 1000) / 1e9
    return {"bf16_tflops": tflops, "bandwidth_gbps": gbps}


def main():
    cases = json.loads(sys.argv[1])
    warmup, iters = int(sys.argv[2]), int(sys.argv[3])
    torch.backends.cudnn.benchmark = True
    out = {"torch": torch.__version__, "cudnn": torch.backends.cudnn.version(), "device": torch.cuda.get_device_name(),
           "rates": rates(), "results": [run_case(c, warmup, iters) for c in cases]}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
