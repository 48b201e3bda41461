"""PyTorch's side of bench/data-folder.mjs: images/s of torchvision's ImageFolder (PIL loader) +
transforms.v2 (RandomResizedCrop(224), RandomHorizontalFlip, ToImage, ToDtype(float32,
scale=True), Normalize(ImageNet)) + torch.utils.data.DataLoader(shuffle=True), over whole
epochs after warm-up epochs (which also start the persistent workers).

Usage: python bench/torch_data.py DIR --workers W --batch-size B --epochs E [--warmup-epochs 1]
       [--threads T]  -> JSON on stdout.

torchvision is imported through bench/torch_bench.import_torchvision (the package __init__ is
bypassed when it fails beside a CPU-only torch); datasets.folder and transforms.v2 import that
way, but default_loader needs torchvision.get_image_backend from the bypassed __init__, so the
PIL loader (datasets.folder.pil_loader) is passed explicitly.
"""
import argparse
import json
import os
import statistics
import time

import PIL
import torch

from torch_bench import import_torchvision, torchvision_version

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=3, help="timed epochs")
    p.add_argument("--warmup-epochs", type=int, default=1)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    folder, v2 = import_torchvision("datasets.folder", "transforms.v2")
    transform = v2.Compose([
        v2.RandomResizedCrop(224),
        v2.RandomHorizontalFlip(),
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])
    ds = folder.ImageFolder(a.dir, transform=transform, loader=folder.pil_loader)
    loader = torch.utils.data.DataLoader(ds, batch_size=a.batch_size, shuffle=True, num_workers=a.workers,
                                         persistent_workers=a.workers > 0)
    epoch_s = []
    images = 0
    shape = None
    for e in range(a.warmup_epochs + a.epochs):
        n = 0
        t0 = time.perf_counter()
        for x, y in loader:
            n += x.shape[0]
            shape = list(x.shape)
        s = time.perf_counter() - t0
        if e >= a.warmup_epochs:
            epoch_s.append(s)
            images += n
    print(json.dumps({
        "torch": torch.__version__, "torchvision": torchvision_version(), "pillow": PIL.__version__,
        "threads": a.threads, "workers": a.workers, "batch_size": a.batch_size, "dataset": len(ds), "classes": len(ds.classes),
        "batch_shape": shape, "warmup_epochs": a.warmup_epochs, "epochs": a.epochs, "epoch_s": epoch_s,
        "images_per_s": images / sum(epoch_s), "images_per_s_median_epoch": len(ds) / statistics.median(epoch_s),
    }))


if __name__ == "__main__":
    main()
