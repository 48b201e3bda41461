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
from torch import nn
from torch.nn import functional as F


class ResidualBlock(nn.Module):
    def __init__(self, input_channels, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.Conv2d(input_channels, num_channels, kernel_size=3, padding=1, stride=strides)
        self.bn1 = nn.BatchNorm2d(num_channels)
        self.conv2 = nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(num_channels)
        self.conv3 = nn.Conv2d(input_channels, num_channels, kernel_size=1, stride=strides) if use_1x1conv else None

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        Y += X
        return F.relu(Y)


def resnet18(num_classes=10, in_channels=1):
    def stage(cin, cout, n, first=False):
        return [ResidualBlock(cin, cout, True, 2) if i == 0 and not first else ResidualBlock(cout, cout) for i in range(n)]
    b1 = nn.Sequential(nn.Conv2d(in_channels, 64, 7, 2, 3), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
    return nn.Sequential(b1, nn.Sequential(*stage(64, 64, 2, True)), nn.Sequential(*stage(64, 128, 2)),
                         nn.Sequential(*stage(128, 256, 2)), nn.Sequential(*stage(256, 512, 2)),
                         nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(512, num_classes))


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


def run_case(c, warmup, iters):
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
