#!/usr/bin/env python3
"""Writes test/fixtures/transforms.safetensors: torchvision.transforms.v2's outputs on two small
fixed images, the oracle for lib/data/transforms.ts (test/42.transforms.test.mjs). Run with the
reference venv (never needed by the test run):

    /work/main/.venv-ref/bin/python tools/gen_transform_fixtures.py

torchvision's package __init__ loads its compiled ops, which fail beside a CPU-only torch (0.28's
_C is a CUDA build), so it is bypassed as in tools/gen_torchvision_keys.py: only the pure-Python
torchvision.transforms.v2.functional and torchvision.transforms.v2._geometry are imported, and
every output below comes from torchvision's own code.

Inputs, seeded uniform uint8: `rgb` 3 x 13 x 17 (H < W) and `gray` 1 x 11 x 8 (H > W). Every
image tensor is stored HWC (as the TypeScript images): `<image>/input` (uint8) and
`<image>/input_f32` (input / 255 in float32).

`__metadata__.cases` is a JSON list; each case has `key`, `image`, `op` and the op's arguments in
torchvision's form. Its tensors:
  <key>           the output for the uint8 input (normalize: float32). For bilinear resizes this
                  is torchvision's default uint8 path on the generating CPU (`cpu_capability` in
                  the metadata): native fixed-point uint8 on AVX2/AVX-512, whose uint8 row
                  between the two passes can differ by 1 from float-then-round.
  <key>/u8_float  bilinear resampling only: the same uint8 input through torchvision's float path
                  (u8 -> float32 -> interpolate -> round_ -> u8, what it does on CUDA and on CPUs
                  without AVX2), forced by patching _do_native_uint8_resize_on_cpu.
  <key>/f32       bilinear resampling only: `input_f32` resampled (no rounding).

The random transforms run torchvision's own make_params with scripted draws: while they run,
`torch` inside _geometry is a stand-in whose uniform_(a, b) returns u * (b - a) + a and whose
randint(lo, hi) returns lo + floor(u * (hi - lo)), u taken in order from the case's `uniforms`
(stored up to the last one used, so the port must use them all). RandomResizedCrop's log-ratio
is float32 in torchvision; the fixture makes it float64 so that the comparison is of the
algorithm, not of float32 rounding (the port works in double precision).

`__metadata__.rrc_params`: RandomResizedCrop.make_params alone on more image sizes, each with its
scripted `uniforms` and torchvision's `box`.
"""
import importlib.util
import json
import math
import os
import struct
import sys
import types

import numpy as np
import torch
from safetensors.torch import load_file

spec = importlib.util.find_spec('torchvision')
if spec is None or not spec.submodule_search_locations:
    sys.exit('torchvision is not installed')
try:
    import torchvision  # noqa: F401
    from torchvision.transforms.v2 import functional as F
except Exception:  # the package __init__ failed: load the transforms without it
    for name in [n for n in sys.modules if n == 'torchvision' or n.startswith('torchvision.')]:
        del sys.modules[name]
    pkg = types.ModuleType('torchvision')
    pkg.__path__ = list(spec.submodule_search_locations)
    sys.modules['torchvision'] = pkg
    from torchvision.transforms.v2 import functional as F
from torchvision.transforms.v2 import _geometry as G
from torchvision.transforms.v2.functional import _geometry as FG

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', 'test', 'fixtures', 'transforms.safetensors')

gen = torch.Generator().manual_seed(20240613)
IMAGES = {
    'rgb': torch.randint(0, 256, (3, 13, 17), dtype=torch.uint8, generator=gen),
    'gray': torch.randint(0, 256, (1, 11, 8), dtype=torch.uint8, generator=gen),
}
rng = np.random.default_rng(7)


def uniforms(n):
    """n scripted draws in [0, 1), six decimals (exact in JSON, short in the file)."""
    return [min(round(u, 6), 0.999999) for u in rng.random(n).tolist()]

tensors = {}
cases = []


def hwc(t):
    return t.permute(1, 2, 0).contiguous().clone()


for name, img in IMAGES.items():
    tensors[f'{name}/input'] = hwc(img)
    tensors[f'{name}/input_f32'] = hwc(img.float() / 255)


def add(key, image, op, out, **args):
    cases.append({'key': key, 'image': image, 'op': op, **args})
    tensors[key] = hwc(out)


def resampled(key, image, op, fn, **args):
    """A resize-like case: the default uint8 path, the forced float path, and float input
    (nearest only copies pixels: its uint8 output is the whole story)."""
    img = IMAGES[image]
    add(key, image, op, fn(img), **args)
    if args['interpolation'] == 'nearest':
        return
    native = FG._do_native_uint8_resize_on_cpu
    FG._do_native_uint8_resize_on_cpu = lambda interpolation: False
    try:
        tensors[f'{key}/u8_float'] = hwc(fn(img))
    finally:
        FG._do_native_uint8_resize_on_cpu = native
    tensors[f'{key}/f32'] = hwc(fn(img.float() / 255))


class _Value:
    def __init__(self, v):
        self.v = v

    def item(self):
        return self.v

    def __float__(self):
        return float(self.v)

    def __int__(self):
        return int(self.v)


class ScriptedTorch:
    """`torch` for _geometry while make_params runs: its draws come from a list of uniforms."""

    def __init__(self, uniforms):
        self.uniforms = list(uniforms)
        self.draws = 0

    def _u(self):
        u = self.uniforms[self.draws]
        self.draws += 1
        return u

    def empty(self, *shape):
        scripted = self

        class Empty:
            def uniform_(self, a, b):
                a, b = float(a), float(b)
                return _Value(scripted._u() * (b - a) + a)

        return Empty()

    def exp(self, x):
        return _Value(math.exp(float(x)))

    def randint(self, low, high, size=None):
        return _Value(low + math.floor(self._u() * (high - low)))

    def __getattr__(self, name):
        return getattr(torch, name)


def scripted(transform, uniforms, fn):
    """Runs fn(transform) with _geometry's torch replaced; returns (result, the draws it used)."""
    stand_in = ScriptedTorch(uniforms)
    real = G.torch
    G.torch = stand_in
    try:
        return fn(transform), uniforms[:stand_in.draws]
    finally:
        G.torch = real


for image, img in IMAGES.items():
    _, H, W = img.shape
    add(f'{image}/hflip', image, 'hflip', F.horizontal_flip(img))
    for top, left, h, w in [(2, 3, 7, 5), (-2, W - 4, 8, 6), (-3, -2, H + 5, W + 4), (H + 2, 1, 3, 3)]:
        add(f'{image}/crop_{top}_{left}_{h}_{w}', image, 'crop', F.crop(img, top, left, h, w), top=top, left=left, height=h, width=w)
    for size in [[6, 4], [7, 5], [6, 5], [H + 3, W + 4], [H + 2, W + 3], [5, W + 3], [H + 4, 3], [1, 1], [H, W]]:
        add(f'{image}/center_crop_{size[0]}x{size[1]}', image, 'center_crop', F.center_crop(img, size), size=size)
    pads = [
        ([1, 2, 3, 4], 7, 'constant'), ([1, 2, 3, 4], 0, 'edge'), ([1, 2, 3, 4], 0, 'reflect'), ([1, 2, 3, 4], 0, 'symmetric'),
        (2, 0, 'reflect'), ([3, 1], 0, 'symmetric'), ([20, 0, 0, 15], 0, 'edge'), (3, 255, 'constant'),
        ([W - 1, H - 1, W - 1, H - 1], 0, 'reflect'), ([W, H, W, H], 0, 'symmetric'),
    ]
    for padding, fill, mode in pads:
        key = f'{image}/pad_{json.dumps(padding).replace(" ", "")}_{mode}_{fill}'
        add(key, image, 'pad', F.pad(img, padding, fill=fill, padding_mode=mode), padding=padding, fill=fill, mode=mode)
    resizes = [([7, 9], None), ([26, 34], None), (10, None), ([4, 5], None), (10, 12), ([H, 5], None), ([3, W + 7], None)]
    for size, max_size in resizes:
        for interpolation, antialias in [('bilinear', False), ('bilinear', True), ('nearest', False)]:
            label = f'{size[0]}x{size[1]}' if isinstance(size, list) else f'{size}' + (f'_max{max_size}' if max_size else '')
            key = f'{image}/resize_{label}_{interpolation}{"_aa" if antialias else ""}'
            fn = lambda x, size=size, max_size=max_size, i=interpolation, a=antialias: F.resize(x, size, interpolation=i, max_size=max_size, antialias=a)
            resampled(key, image, 'resize', fn, size=size, max_size=max_size, interpolation=interpolation, antialias=antialias)
    for box, size, interpolation, antialias in [
        ((2, 3, 9, 5), [5, 3], 'bilinear', True), ((2, 3, 9, 5), [12, 14], 'bilinear', False),
        ((1, 1, 7, 6), [6, 6], 'nearest', False), ((-2, -3, H + 3, W + 5), [8, 10], 'bilinear', True),
    ]:
        key = f'{image}/resized_crop_{"_".join(map(str, box))}_{size[0]}x{size[1]}_{interpolation}{"_aa" if antialias else ""}'
        fn = lambda x, box=box, size=size, i=interpolation, a=antialias: F.resized_crop(x, *box, size, interpolation=i, antialias=a)
        top, left, h, w = box
        resampled(key, image, 'resized_crop', fn, top=top, left=left, height=h, width=w, size=size, interpolation=interpolation, antialias=antialias)

    for key_part, mean, std in [('imagenet', [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]), ('scalar', 0.5, 0.25)]:
        if key_part == 'imagenet' and image != 'rgb':
            continue
        out = F.normalize(F.to_dtype(img, torch.float32, scale=True), mean=mean, std=std)
        add(f'{image}/normalize_{key_part}', image, 'normalize', out, mean=mean, std=std)

    crops = [
        ([5, 4], None, False, 0, 'constant'), ([H, W], None, False, 0, 'constant'), ([H, 3], None, False, 0, 'constant'),
        ([H + 2, W + 2], 2, False, 9, 'constant'), ([H - 1, W + 1], [1, 3], False, 0, 'edge'),
        ([H + 1, W + 3], [1, 2, 3, 4], False, 0, 'reflect'), ([H + 1, W + 3], [1, 2, 3, 4], False, 0, 'symmetric'),
        ([H + 3, W + 3], None, True, 0, 'constant'), ([H + 4, W], 1, True, 5, 'edge'), ([H + 3, 2], None, True, 0, 'reflect'),
    ]
    for k, (size, padding, pad_if_needed, fill, mode) in enumerate(crops):
        t = G.RandomCrop(size, padding=padding, pad_if_needed=pad_if_needed, fill=fill, padding_mode=mode)
        out, draws = scripted(t, uniforms(2), lambda t, img=img: t(img))
        add(f'{image}/random_crop_{k}', image, 'random_crop', out, size=size, padding=padding, pad_if_needed=pad_if_needed,
            fill=fill, padding_mode=mode, uniforms=draws)

    for k, (size, scale, ratio, antialias) in enumerate([([5, 6], (0.08, 1.0), (3 / 4, 4 / 3), True), ([9, 9], (0.5, 1.0), (0.5, 2.0), False)]):
        t = G.RandomResizedCrop(size, scale=scale, ratio=ratio, antialias=antialias)
        t._log_ratio = torch.log(torch.tensor(t.ratio, dtype=torch.float64))
        _, draws = scripted(t, uniforms(22), lambda t, img=img: t(img))
        fn = lambda x, t=t, draws=draws: scripted(t, draws, lambda t: t(x))[0]
        resampled(f'{image}/random_resized_crop_{k}', image, 'random_resized_crop', fn, size=size, scale=list(scale), ratio=list(ratio),
                  interpolation='bilinear', antialias=antialias, uniforms=draws)

# RandomResizedCrop.make_params alone, on many sizes (the last three always fall back)
params = []
for H, W, scale, ratio in [
    (13, 17, (0.08, 1.0), (3 / 4, 4 / 3)), (375, 500, (0.08, 1.0), (3 / 4, 4 / 3)), (500, 375, (0.08, 1.0), (3 / 4, 4 / 3)),
    (11, 8, (0.5, 1.0), (0.5, 2.0)), (32, 32, (0.9, 1.0), (1.0, 1.0)), (7, 300, (0.08, 1.0), (3 / 4, 4 / 3)),
    (100, 30, (1.2, 1.5), (3 / 4, 4 / 3)), (20, 200, (1.5, 2.0), (3 / 4, 4 / 3)), (13, 17, (2.0, 3.0), (0.1, 0.2)),
]:
    for _ in range(5):
        t = G.RandomResizedCrop(10, scale=scale, ratio=ratio)
        t._log_ratio = torch.log(torch.tensor(t.ratio, dtype=torch.float64))
        box, draws = scripted(t, uniforms(22), lambda t, H=H, W=W: t.make_params([torch.empty(1, H, W)]))
        params.append({'height': H, 'width': W, 'scale': list(scale), 'ratio': list(ratio), 'uniforms': draws, 'box': box})

try:
    from importlib.metadata import version
    tv_version = version('torchvision')
except Exception:
    tv_version = None
metadata = {
    'generator': 'tools/gen_transform_fixtures.py',
    'torch': torch.__version__,
    'torchvision': tv_version,
    'cpu_capability': torch.backends.cpu.get_cpu_capability(),
    'cases': json.dumps(cases),
    'rrc_params': json.dumps(params),
}


def save(tensors, path, metadata):
    """safetensors with the header's keys sorted (save_file's order varies), so a rerun writes the same bytes."""
    dtypes = {torch.uint8: 'U8', torch.float32: 'F32'}
    header, blobs, offset = {'__metadata__': metadata}, [], 0
    for key in sorted(tensors):
        raw = tensors[key].numpy().tobytes()
        header[key] = {'dtype': dtypes[tensors[key].dtype], 'shape': list(tensors[key].shape), 'data_offsets': [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, sort_keys=True, separators=(',', ':')).encode()
    text += b' ' * (-len(text) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)) + text + b''.join(blobs))
    back = load_file(path)  # the reference reader agrees
    assert sorted(back) == sorted(tensors) and all(torch.equal(back[k], tensors[k]) for k in tensors)


save(tensors, OUT, metadata)
print(f'{OUT}: {len(cases)} cases, {len(params)} RandomResizedCrop boxes, {os.path.getsize(OUT)} bytes')
