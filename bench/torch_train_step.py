"""PyTorch's side of bench/resnet18-cpu.mjs and bench/resnet18-cifar-cpu.mjs: one ResNet-18
training step on the CPU, per batch size and memory format.

Usage: python bench/torch_train_step.py SPEC_JSON -> JSON on stdout, where SPEC_JSON is
  {"model": "d2l-resnet18" | "torchvision-resnet18", "threads", "warmup", "iters",
   "in_channels", "size", "num_classes", "batches": [...], "formats": ["nchw", "channels_last"]}
"""
import json
import sys

import torch

from torch_bench import import_torchvision, time_train_step, torchvision_version
from torch_models import resnet18 as d2l_resnet18


def build(spec):
    if spec["model"] == "d2l-resnet18":
        return d2l_resnet18(num_classes=spec["num_classes"], in_channels=spec["in_channels"])
    if spec["model"] == "torchvision-resnet18":
        (models,) = import_torchvision("models")
        return models.resnet18(weights=None, num_classes=spec["num_classes"])
    raise ValueError(f"unknown model {spec['model']!r}")


def main():
    spec = json.loads(sys.argv[1])
    torch.set_num_threads(spec["threads"])
    out = []
    for batch in spec["batches"]:
        for fmt in spec["formats"]:
            torch.manual_seed(0)
            model = build(spec)
            x = torch.rand(batch, spec["in_channels"], spec["size"], spec["size"])
            y = torch.randint(0, spec["num_classes"], (batch,))
            if fmt == "channels_last":
                model = model.to(memory_format=torch.channels_last)
                x = x.to(memory_format=torch.channels_last)
            out.append({"batch": batch, "format": fmt, **time_train_step(model, x, y, spec["warmup"], spec["iters"])})
    result = {"torch": torch.__version__, "threads": spec["threads"], "results": out}
    if spec["model"].startswith("torchvision"):
        result["torchvision"] = torchvision_version()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
