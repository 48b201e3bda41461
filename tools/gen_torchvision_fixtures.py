#!/usr/bin/env python3
"""Writes test/fixtures/torchvision_numerics.safetensors: torchvision 0.28's resnet18/34/50
(num_classes 10) run on a fixed input, for test/39b to reproduce with models.resnet18/34/50.
Run with the reference venv (never needed by the test run; about two minutes):

    /work/main/.venv-ref/bin/python tools/gen_torchvision_fixtures.py

The weights are not stored (resnet50 alone has 23.5M parameters): every state-dict tensor is
set by a formula the test recomputes bit for bit. For tensor number k in state-dict order
(num_batches_tracked entries count, and stay 0) and flat index i:

    h = fmix32(i XOR uint32((k + 1) * 0x9E3779B9))     MurmurHash3's 32-bit finalizer
    v = 2 * h / 2**32 - 1                              uniform in [-1, 1), exact in float64

    conv weight   sqrt(6 / fan_in) * v   (std sqrt(2 / fan_in), He init by fan-in)
    fc.weight     sqrt(3 / fan_in) * v   (std 1 / sqrt(fan_in))
    BN weight     1 + 0.25 * v, but 0.25 * (1 + 0.25 * v) for the last BN of each residual
                  branch (bn2 of a BasicBlock, bn3 of a Bottleneck: the weights
                  zero_init_residual zeroes; metadata models.<name>.last_bn_weights)
    BN bias, running_mean, fc.bias   0.1 * v
    running_var   1 + 0.5 * v            (in [0.5, 1.5))

Integer hashing, not sin(a*i + b): the values are identical in numpy and JavaScript (no libm),
and a conv weight W[o, j] = sin(a*(o*F + j) + b) would be a rank-2 matrix. The input x
([2, 3, 64, 64]) is v itself for k = the model's input seed; labels are [3, 7]. 64x64, not
32x32: at 32 layer4 is 1x1, so its train-mode BN sees 2 values per channel, outputs +-1 and
passes almost no gradient back. The float32 weights and input are the float64 ones rounded.

Why the residual branches are scaled by 0.25: with every BN weight near 1, resnet50 in train
mode with this small batch is chaotic. A relative input perturbation of 1e-9 moved its logits
by 3e-7 and its gradients by up to 1e-6 (condition ~300 and ~1000), eval-mode logits reached
500, and torch's own float32 run was 1e-4 (logits) and 3e-1 (gradient entries) away from its
float64 run: no float32 tolerance could tell a bug from rounding. With the 0.25 the conditions
are ~6 and ~65, and torch's float32 run is within 1e-5 of its float64 run.

Why each model has its own input seed (metadata models.<name>.input_seed): a ReLU whose float64
input is within float32 rounding of 0 can land on the other side in float32, and that one
switched element moves the gradients upstream of it by up to 1e-2: no float32 gradient
tolerance survives it. Each model's seed is, of SEED_CANDIDATES seeds from INPUT_SEED on, the one
whose smallest ReLU input (every call, train mode, float64) is largest relative to torch's
float32 rounding error of that call (mean |x32 - x64|): metadata models.<name>.relu_margin
records that ratio (~40 for resnet18, ~18 for resnet34, ~5 for resnet50; at the first seed it
was 0.6 to 20) and the smallest |x| / rms(x).

For each model and each dtype d in (float64, float32), `<model>.<d>.<quantity>`:
  weight_stats   [nsd, 2] per state-dict entry but num_batches_tracked: sum and sum of squares
                          of the formula's values as loaded (checks the formula, not the model)
  logits_train   [2, 10]  model.train()(x): BN batch statistics, running stats updated
  loss           [1]      cross_entropy(logits_train, labels)
  logits_eval    [2, 10]  model.eval()(x) after that (the updated running statistics)
  bn_stats       [nbn, 4] per BatchNorm (metadata bn_names): sum and sum of squares of
                          running_mean, then of running_var, after the train forward
  bn1.running_mean, bn1.running_var  [64]  the stem's, in full
  grad_stats     [np, 2]  per parameter (metadata param_names), after loss.backward(): sum and
                          sum of squares of its gradient
  grad_samples   [np, 6]  its gradient at flat indices [0, n//7, n//3, n//2, 2n//3, n-1]
  grad.conv1.weight, grad.fc.weight, grad.fc.bias   in full, float64 run only (size)
Sums are accumulated in float64 for both dtypes; full tensors keep the run's dtype. Then
`resnet50_zero_init.<d>.logits_train / logits_eval`: resnet50(zero_init_residual=True), input
as resnet50's, with the formula loaded into every tensor except the ones that init zeroed
(metadata zero_init_keys), so those stay torchvision's zeros.

Metadata torch_f32_vs_f64 records, per model and quantity, how far torch's float32 run is from
its float64 run, measured as test/39b measures ours (see error()).
"""
import json
import math
import os
import sys

import numpy as np
import torch
from torch.nn import functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from gen_fixtures import save_deterministic  # noqa: E402
from gen_torchvision_keys import resnet  # noqa: E402  (torchvision.models.resnet, package __init__ bypassed)

OUT = os.path.join(HERE, '..', 'test', 'fixtures', 'torchvision_numerics.safetensors')
MODELS = ['resnet18', 'resnet34', 'resnet50']
NUM_CLASSES = 10
INPUT_SHAPE = (2, 3, 64, 64)
INPUT_SEED = 1000003
SEED_CANDIDATES = 256
LABELS = [3, 7]
DTYPES = {'float64': torch.float64, 'float32': torch.float32}
M32 = 0xFFFFFFFF


def uniform(n, seed):
    """v in [-1, 1): the formula in the docstring, float64."""
    h = np.arange(n, dtype=np.uint32) ^ np.uint32(((seed + 1) * 0x9E3779B9) & M32)
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    return 2.0 * (h.astype(np.float64) / 2.0 ** 32) - 1.0


def make_input(seed):
    return torch.from_numpy(uniform(math.prod(INPUT_SHAPE), seed).reshape(INPUT_SHAPE))


def last_bn_weights(model):
    """The weights zero_init_residual zeroes: each residual branch's last BN."""
    return [f'{n}.{"bn3" if isinstance(m, resnet.Bottleneck) else "bn2"}.weight'
            for n, m in model.named_modules() if isinstance(m, (resnet.BasicBlock, resnet.Bottleneck))]


def formula(name, shape, k, last_bn):
    if name.endswith('num_batches_tracked'):
        return None
    v = uniform(math.prod(shape), k).reshape(shape)
    if name == 'fc.weight':
        return math.sqrt(3 / shape[1]) * v
    if name.endswith('.weight') and len(shape) == 4:
        return math.sqrt(6 / (shape[1] * shape[2] * shape[3])) * v
    if name in last_bn:
        return 0.25 * (1 + 0.25 * v)
    if name.endswith('.weight'):
        return 1 + 0.25 * v
    if name.endswith('running_var'):
        return 1 + 0.5 * v
    return 0.1 * v  # BN bias, running_mean, fc.bias


def formula_state_dict(model, skip=()):
    last_bn = set(last_bn_weights(model))
    out = {}
    for k, (name, t) in enumerate(model.state_dict().items()):
        if name in skip:
            continue
        value = formula(name, tuple(t.shape), k, last_bn)
        out[name] = torch.zeros_like(t) if value is None else torch.from_numpy(value)
    return out


def make_model(name, dtype, zero_init_residual=False):
    """torchvision's model in `dtype`, the formula loaded (but where zero_init_residual zeroed)."""
    model = getattr(resnet, name)(weights=None, num_classes=NUM_CLASSES, zero_init_residual=zero_init_residual)
    model.to(dtype)  # first: load_state_dict casts to the parameters' dtype
    skip = set(last_bn_weights(model)) if zero_init_residual else set()
    model.load_state_dict(formula_state_dict(model, skip), strict=not skip)
    assert all(t.dtype == dtype for t in model.parameters())
    return model


def pick_seed(name):
    """Of SEED_CANDIDATES input seeds, the one whose ReLU inputs (every call, train mode,
    float64) keep farthest from 0 relative to float32 rounding: (seed, (min |x| / mean
    |x32 - x64|, min |x| / rms(x)))."""
    inputs, models = {}, {}
    for dtype in DTYPES.values():
        models[dtype] = make_model(name, dtype).train()
        inputs[dtype] = []
        for m in models[dtype].modules():
            if isinstance(m, torch.nn.ReLU):  # inplace: read the input before it is overwritten
                m.register_forward_pre_hook(lambda m, i, out=inputs[dtype]: out.append(i[0].detach().double().clone()))
    margins = {}
    for seed in range(INPUT_SEED, INPUT_SEED + SEED_CANDIDATES):
        for dtype, model in models.items():
            inputs[dtype].clear()
            with torch.no_grad():
                model(make_input(seed).to(dtype))
        pairs = list(zip(inputs[torch.float64], inputs[torch.float32]))
        margins[seed] = (min((a.abs().min() / (a - b).abs().mean()).item() for a, b in pairs),
                         min((a.abs().min() / a.pow(2).mean().sqrt()).item() for a, _ in pairs))
    seed = max(margins, key=lambda s: margins[s][0])
    print(f'{name}: input seed {seed}, ReLU margin {margins[seed][0]:.3g} x torch f32 error ({margins[seed][1]:.2g} rms);'
          f' at {INPUT_SEED}: {margins[INPUT_SEED][0]:.3g}')
    return seed, margins[seed]


def sample_indices(n):
    return [0, n // 7, n // 3, n // 2, 2 * n // 3, n - 1]


def sum_sq(t):
    t = t.detach().double().reshape(-1)
    return [t.sum().item(), (t * t).sum().item()]


def run(name, dtype, seed, labels):
    model = make_model(name, dtype)
    weight_stats = [sum_sq(t) for n, t in model.state_dict().items() if not n.endswith('num_batches_tracked')]
    x = make_input(seed).to(dtype)
    model.train()
    logits_train = model(x)
    loss = F.cross_entropy(logits_train, labels)
    loss.backward()
    model.eval()
    with torch.no_grad():
        logits_eval = model(x)
    bns = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(m.num_batches_tracked.item() == 1 for _, m in bns)
    params = list(model.named_parameters())
    out = {
        'weight_stats': torch.tensor(weight_stats, dtype=torch.float64),
        'logits_train': logits_train.detach(),
        'loss': loss.detach().reshape(1),
        'logits_eval': logits_eval,
        'bn_stats': torch.tensor([sum_sq(m.running_mean) + sum_sq(m.running_var) for _, m in bns], dtype=torch.float64),
        'bn1.running_mean': model.bn1.running_mean.detach().clone(),
        'bn1.running_var': model.bn1.running_var.detach().clone(),
        'grad_stats': torch.tensor([sum_sq(p.grad) for _, p in params], dtype=torch.float64),
        'grad_samples': torch.tensor([[p.grad.reshape(-1)[i].item() for i in sample_indices(p.numel())] for _, p in params],
                                     dtype=torch.float64),
        'grad.conv1.weight': model.conv1.weight.grad.detach().clone(),
        'grad.fc.weight': model.fc.weight.grad.detach().clone(),
        'grad.fc.bias': model.fc.bias.grad.detach().clone(),
    }
    meta = {
        'bn_names': [n for n, _ in bns],
        'param_names': [n for n, _ in params],
        'numel': [p.numel() for _, p in params],
        'last_bn_weights': last_bn_weights(model),
    }
    return out, meta


def run_zero_init(dtype, seed):
    model = make_model('resnet50', dtype, zero_init_residual=True)
    zeroed = [n for n, t in model.state_dict().items()
              if n.endswith('.weight') and t.dim() == 1 and n != 'fc.weight' and not t.any()]
    assert zeroed == last_bn_weights(model), zeroed
    x = make_input(seed).to(dtype)
    with torch.no_grad():
        logits_train = model.train()(x)
        logits_eval = model.eval()(x)
    return {'logits_train': logits_train, 'logits_eval': logits_eval}, zeroed


def error(q, a, b, numel=None):
    """test/39b's measure of a against reference b: max |a - b| / max |b|, except for
    [sum, sumsq] rows (the sum's error relative to sqrt(n * sumsq), the sum of squares' relative
    to itself) and grad_samples (each entry relative to the rms of its tensor's gradient)."""
    a, b = a.double(), b.double()
    if q in ('grad_stats', 'bn_stats', 'weight_stats'):
        b, a = b.reshape(-1, 2), a.reshape(-1, 2)
        n = torch.tensor(numel, dtype=torch.float64)
        return max(((a[:, 0] - b[:, 0]).abs() / (n * b[:, 1]).sqrt()).max().item(), ((a[:, 1] - b[:, 1]).abs() / b[:, 1]).max().item())
    if q == 'grad_samples':
        rms = (numel[1] / torch.tensor(numel[0], dtype=torch.float64)).sqrt()
        return ((a - b).abs() / rms[:, None]).max().item()
    return (a - b).abs().max().item() / max(b.abs().max().item(), 1e-300)


def floors(runs, meta, model):
    """torch's float32 run against its float64 run, quantity by quantity."""
    r32, r64 = runs['float32'], runs['float64']
    counts = {
        'weight_stats': [t.numel() for n, t in model.state_dict().items() if not n.endswith('num_batches_tracked')],
        'grad_stats': meta['numel'],
        'bn_stats': [n for bn in meta['bn_names'] for n in [model.get_submodule(bn).num_features] * 2],
        'grad_samples': (meta['numel'], r64['grad_stats'][:, 1]),
    }
    return {q: float(f'{error(q, r32[q], r64[q], counts.get(q)):.2g}') for q in r64 if q != 'weight_stats'}


def main():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # same summation order on every run
    labels = torch.tensor(LABELS, dtype=torch.int64)
    tensors, floor, meta_models = {}, {}, {}
    for name in MODELS:
        seed, margin = pick_seed(name)
        runs = {}
        for dname, dtype in DTYPES.items():
            runs[dname], meta = run(name, dtype, seed, labels)
            for q, t in runs[dname].items():
                if dname == 'float64' or not q.startswith('grad.'):  # full gradients: float64 only
                    tensors[f'{name}.{dname}.{q}'] = t.contiguous()
        meta_models[name] = {'input_seed': seed, 'relu_margin': [float(f'{m:.3g}') for m in margin], **meta}
        floor[name] = floors(runs, meta, getattr(resnet, name)(num_classes=NUM_CLASSES))
        r = runs['float64']
        print(f'  loss {r["loss"].item():.6f}  |logits_train| {r["logits_train"].abs().max().item():.3g}'
              f'  |logits_eval| {r["logits_eval"].abs().max().item():.3g}'
              f'  |grad|^2 from {r["grad_stats"][:, 1].min().item():.3g} to {r["grad_stats"][:, 1].max().item():.3g}'
              f'\n  torch f32 vs f64 {json.dumps(floor[name])}')
    zi = {}
    for dname, dtype in DTYPES.items():
        zi[dname], zeroed = run_zero_init(dtype, meta_models['resnet50']['input_seed'])
        for q, t in zi[dname].items():
            tensors[f'resnet50_zero_init.{dname}.{q}'] = t.contiguous()
    floor['resnet50_zero_init'] = {q: float(f'{error(q, zi["float32"][q], zi["float64"][q]):.2g}') for q in zi['float64']}
    print('resnet50_zero_init: torch f32 vs f64', json.dumps(floor['resnet50_zero_init']))
    from importlib.metadata import version
    metadata = {
        'generator': 'tools/gen_torchvision_fixtures.py',
        'torch': torch.__version__,
        'torchvision': version('torchvision'),
        'input_shape': json.dumps(list(INPUT_SHAPE)),
        'labels': json.dumps(LABELS),
        'num_classes': str(NUM_CLASSES),
        'models': json.dumps(meta_models),
        'zero_init_keys': json.dumps(zeroed),
        'torch_f32_vs_f64': json.dumps(floor),
    }
    save_deterministic(tensors, OUT, metadata)
    print('%s %d bytes, %d tensors' % (os.path.relpath(OUT), os.path.getsize(OUT), len(tensors)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
