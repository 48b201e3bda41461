"""What the PyTorch sides of the benchmarks share: timing a training step, and importing
torchvision's pure-Python submodules beside a CPU-only torch.
"""
import importlib
import importlib.util
import statistics
import sys
import time
import types

import torch
from torch.nn import functional as F


def import_torchvision(*names):
    """Returns the torchvision submodules `names` (e.g. 'models', 'datasets.folder').

    `import torchvision` fails beside a CPU-only torch when its compiled ops (`_C`) were built for
    CUDA ("operator torchvision::nms does not exist"). The package __init__ is then bypassed: an
    empty `torchvision` module whose __path__ is the installed folder is registered, and only the
    submodules asked for are imported (models, datasets, transforms.v2 are pure Python). Without
    the __init__ there is no `torchvision.get_image_backend`, so pass datasets a loader explicitly
    (datasets.folder.pil_loader) instead of relying on default_loader.
    """
    try:
        import torchvision  # noqa: F401
    except Exception:
        spec = importlib.util.find_spec('torchvision')
        if spec is None or not spec.submodule_search_locations:
            raise ImportError('torchvision is not installed')
        for n in [n for n in sys.modules if n == 'torchvision' or n.startswith('torchvision.')]:
            del sys.modules[n]
        pkg = types.ModuleType('torchvision')
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules['torchvision'] = pkg
    return [importlib.import_module(f'torchvision.{n}') for n in names]


def torchvision_version():
    try:
        from importlib.metadata import version
        return version('torchvision')
    except Exception:
        return None


def time_train_step(model, x, y, warmup, iters, lr=0.05):
    """Times `iters` SGD steps (forward, cross-entropy, backward, step) after `warmup` untimed ones."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    times = []
    for i in range(warmup + iters):
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1000)
    ms = statistics.median(times)
    return {"median_ms": ms, "min_ms": min(times), "images_per_s": x.shape[0] / ms * 1000}
