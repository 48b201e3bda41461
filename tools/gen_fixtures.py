"""Writes the PyTorch reference fixtures in test/fixtures/.

Run with the reference venv (never needed by the test run):

    /work/main/.venv-ref/bin/python tools/gen_fixtures.py

Every case is seeded with torch.manual_seed, so a rerun writes identical files.

Per ResidualBlock case, `test/fixtures/block_<case>.safetensors` holds:
  x                      input (float32)
  gy                     fixed random upstream gradient, shape of y
  sd.<name>              state dict at init, PyTorch names (num_batches_tracked is int64)
  y_train                output of one train-mode forward
  after.<bn>.<buffer>    running_mean / running_var / num_batches_tracked after that forward
  dx, grad.<param>       gradients after y_train.backward(gy)
  y_eval                 eval-mode output AFTER the train forward (uses the updated running stats)
and `__metadata__` with the torch version and the case parameters (JSON strings).

The reference values are computed in float64 from the float32 inputs and parameters, then
stored as float32: the test compares our float32 result with the exact answer, not with
PyTorch's own float32 rounding. `torch_f32_max_rel_err` in the metadata records how far
PyTorch's float32 path is from that answer, i.e. the floor a float32 implementation can reach.
grad.conv1.bias and grad.conv2.bias are exactly zero (each conv feeds a train-mode BatchNorm);
metadata `zero_grads` names the tensor to measure their error against (that BN's beta gradient).

The seed notebook's [1, 3, 224, 224] input is too big for a fixture; those shapes are checked
for shape only. Numerics use [2, 3, 32, 32] (seed blocks) and [3, 5, 17, 13] (odd sizes).

`test/fixtures/dtypes.safetensors` (one tensor per dtype) and
`test/fixtures/torch_ckpt_block_5_7_1x1_s2.safetensors` (a block's state_dict) are written by
the safetensors library itself, to check our reader and load() against the reference writer.

`test/fixtures/resnet18_keys.json` lists the state-dict names, shapes and dtypes of d2l's
ResNet-18 (its weights are ~45 MB, too big to store); tools/torch_roundtrip.py covers values.
"""
import json
import os
import sys

import torch
from torch import nn
from torch.nn import functional as F
from safetensors.torch import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, '..', 'test', 'fixtures')


# d2l's ResidualBlock, verbatim from the seed notebook.
class ResidualBlock(nn.Module):
    def __init__(self, input_channels, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        # First convolutional layer
        self.conv1 = nn.Conv2d(input_channels, num_channels, kernel_size=3,
                              padding=1, stride=strides)
        self.bn1 = nn.BatchNorm2d(num_channels)

        # Second convolutional layer
        self.conv2 = nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(num_channels)

        # 1x1 convolution for dimension matching if needed
        if use_1x1conv:
            self.conv3 = nn.Conv2d(input_channels, num_channels,
                                 kernel_size=1, stride=strides)
        else:
            self.conv3 = None

    def forward(self, X):
        # Main path through the residual block
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))

        # Identity path (skip connection)
        if self.conv3:
            X = self.conv3(X)

        # Add skip connection to main path
        Y += X
        return F.relu(Y)  # Final activation after addition


# d2l's ResNet-18 (chapter "Residual Networks"), built from the same block.
def resnet_block(input_channels, num_channels, num_residuals, first_block=False):
    blk = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blk.append(ResidualBlock(input_channels, num_channels, use_1x1conv=True, strides=2))
        else:
            blk.append(ResidualBlock(num_channels, num_channels))
    return blk


def resnet18(num_classes=10, in_channels=1):
    b1 = nn.Sequential(nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3),
                       nn.BatchNorm2d(64), nn.ReLU(),
                       nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    b2 = nn.Sequential(*resnet_block(64, 64, 2, first_block=True))
    b3 = nn.Sequential(*resnet_block(64, 128, 2))
    b4 = nn.Sequential(*resnet_block(128, 256, 2))
    b5 = nn.Sequential(*resnet_block(256, 512, 2))
    return nn.Sequential(b1, b2, b3, b4, b5,
                         nn.AdaptiveAvgPool2d((1, 1)),
                         nn.Flatten(), nn.Linear(512, num_classes))


CASES = [
    # name, ctor args, input shape, perturb BN, seed
    dict(name='3_3', input_channels=3, num_channels=3, use_1x1conv=False, strides=1,
         input_shape=[2, 3, 32, 32], perturbed=False, seed=1),
    dict(name='3_6_1x1_s2', input_channels=3, num_channels=6, use_1x1conv=True, strides=2,
         input_shape=[2, 3, 32, 32], perturbed=False, seed=2),
    dict(name='5_7_1x1_s2', input_channels=5, num_channels=7, use_1x1conv=True, strides=2,
         input_shape=[3, 5, 17, 13], perturbed=False, seed=3),
    dict(name='5_7_1x1_s2_perturbed', input_channels=5, num_channels=7, use_1x1conv=True,
         strides=2, input_shape=[3, 5, 17, 13], perturbed=True, seed=4),
]


def perturb_batchnorm(block):
    """Non-default gamma/beta/running stats, so a backend that ignores them fails."""
    with torch.no_grad():
        for bn in (block.bn1, block.bn2):
            c = bn.num_features
            bn.weight.copy_(torch.rand(c) + 0.5)               # [0.5, 1.5)
            bn.bias.copy_(torch.randn(c) * 0.5)
            bn.running_mean.copy_(torch.randn(c) * 0.5)
            bn.running_var.copy_(torch.rand(c) * 1.5 + 0.5)    # [0.5, 2.0)
            bn.num_batches_tracked.fill_(5)                    # must be loaded, then incremented


def run_block(block, x, gy):
    """One train forward + backward, then one eval forward, on a private copy of `block`."""
    x = x.clone().requires_grad_(True)
    block.train()
    y_train = block(x)
    y_train.backward(gy)
    after = {k: v.detach().clone() for k, v in block.state_dict().items() if 'running' in k or 'num_batches' in k}
    grads = {k: p.grad.detach().clone() for k, p in block.named_parameters()}
    block.eval()
    with torch.no_grad():
        y_eval = block(x.detach())
    return dict(y_train=y_train.detach(), y_eval=y_eval, dx=x.grad.detach(), after=after, grads=grads)


def max_rel_err(a, b, scale=None):
    denom = b.double().abs().max().item() if scale is None else scale
    return (a.double() - b.double()).abs().max().item() / max(denom, 1e-6)


# conv1/conv2 feed a train-mode BatchNorm, which subtracts the batch mean: their bias gradients
# are exactly zero, so a relative error against them is meaningless. Tests measure them against
# the gradient of the BatchNorm's beta (same channels, same upstream sum) instead.
ZERO_GRADS = {'conv1.bias': 'bn1.bias', 'conv2.bias': 'bn2.bias'}

# The safetensors library orders tensors by dtype (widest first), then by name.
DTYPE_ORDER = ['U64', 'I64', 'F64', 'F32', 'I32', 'BF16', 'F16', 'U8', 'BOOL']
ST_DTYPE = {torch.float64: 'F64', torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16',
            torch.int64: 'I64', torch.int32: 'I32', torch.uint8: 'U8', torch.bool: 'BOOL'}


def save_deterministic(tensors, path, metadata):
    """Same layout as safetensors.torch.save_file, but with the metadata keys sorted: the
    library writes them in hash order, so a rerun would change the bytes of every fixture."""
    names = sorted(tensors, key=lambda k: (DTYPE_ORDER.index(ST_DTYPE[tensors[k].dtype]), k))
    header = {'__metadata__': dict(sorted(metadata.items()))}
    blobs, offset = [], 0
    for k in names:
        t = tensors[k].contiguous()
        data = t.view(torch.uint8).numpy().tobytes() if t.dim() > 0 else t.reshape(1).view(torch.uint8).numpy().tobytes()
        header[k] = {'dtype': ST_DTYPE[t.dtype], 'shape': list(t.shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(',', ':'), ensure_ascii=False).encode('utf-8')
    text += b' ' * (-len(text) % 8)
    with open(path, 'wb') as f:
        f.write(len(text).to_bytes(8, 'little'))
        f.write(text)
        for b in blobs:
            f.write(b)
    back = load_file(path)  # the reference reader must agree, value for value
    assert set(back) == set(tensors), path
    for k, t in tensors.items():
        assert back[k].dtype == t.dtype and torch.equal(back[k], t), (path, k)


def make_case(case):
    torch.manual_seed(case['seed'])
    block = ResidualBlock(case['input_channels'], case['num_channels'],
                          use_1x1conv=case['use_1x1conv'], strides=case['strides'])
    if case['perturbed']:
        perturb_batchnorm(block)
    x = torch.randn(*case['input_shape'])
    with torch.no_grad():
        y_shape = block.eval()(x).shape  # eval: leaves running stats untouched
    gy = torch.randn(*y_shape)
    sd = {k: v.detach().clone() for k, v in block.state_dict().items()}

    block64 = ResidualBlock(case['input_channels'], case['num_channels'],
                            use_1x1conv=case['use_1x1conv'], strides=case['strides']).double()
    block64.load_state_dict({k: (v.double() if v.is_floating_point() else v) for k, v in sd.items()})
    ref = run_block(block64, x.double(), gy.double())
    f32 = run_block(block, x, gy)

    floor = {}
    for key in ('y_train', 'y_eval', 'dx'):
        floor[key] = max_rel_err(f32[key], ref[key])
    for k in ref['grads']:
        scale = None
        if k in ZERO_GRADS:
            scale = ref['grads'][ZERO_GRADS[k]].double().abs().max().item()
        floor['grad.' + k] = max_rel_err(f32['grads'][k], ref['grads'][k], scale)
    for k, v in ref['after'].items():
        if v.is_floating_point():
            floor['after.' + k] = max_rel_err(f32['after'][k], v)
        else:
            assert torch.equal(f32['after'][k], v), k

    def f32c(t):
        return t.float().contiguous() if t.is_floating_point() else t.contiguous()

    tensors = {'x': x.contiguous(), 'gy': gy.contiguous()}
    tensors.update({'sd.' + k: v.contiguous() for k, v in sd.items()})
    tensors['y_train'] = f32c(ref['y_train'])
    tensors['y_eval'] = f32c(ref['y_eval'])
    tensors['dx'] = f32c(ref['dx'])
    tensors.update({'after.' + k: f32c(v) for k, v in ref['after'].items()})
    tensors.update({'grad.' + k: f32c(v) for k, v in ref['grads'].items()})

    params = {k: case[k] for k in ('input_channels', 'num_channels', 'use_1x1conv', 'strides',
                                   'input_shape', 'perturbed', 'seed')}
    metadata = {
        'format': 'cudnn-resblock block fixture v1',
        'torch_version': torch.__version__,
        'case': case['name'],
        'params': json.dumps(params),
        'output_shape': json.dumps(list(y_shape)),
        'bn': json.dumps({'eps': block.bn1.eps, 'momentum': block.bn1.momentum}),
        'reference_precision': 'computed in float64 from the float32 inputs/params, stored as float32',
        'torch_f32_max_rel_err': json.dumps(floor),
        'zero_grads': json.dumps({'grad.' + k: 'grad.' + v for k, v in ZERO_GRADS.items()}),
        'generator': 'tools/gen_fixtures.py',
    }
    path = os.path.join(OUT_DIR, 'block_%s.safetensors' % case['name'])
    save_deterministic(tensors, path, metadata)
    worst = max(floor.values())
    print('%-45s %8d bytes  y%s  torch-f32 floor %.2e' % (os.path.relpath(path), os.path.getsize(path), list(y_shape), worst))


def dtype_name(t):
    return str(t.dtype).replace('torch.', '')


def make_resnet18_keys():
    torch.manual_seed(0)
    net = resnet18(num_classes=10, in_channels=1)
    with torch.no_grad():
        y = net.eval()(torch.zeros(1, 1, 96, 96))
    keys = [{'name': k, 'shape': list(v.shape), 'dtype': dtype_name(v)} for k, v in net.state_dict().items()]
    params = [k for k, _ in net.named_parameters()]
    doc = {
        'model': "d2l resnet18: nn.Sequential(b1, b2, b3, b4, b5, AdaptiveAvgPool2d((1,1)), Flatten, Linear(512, 10)), in_channels=1",
        'torch_version': torch.__version__,
        'num_tensors': len(keys),
        'num_parameters': sum(p.numel() for p in net.parameters()),
        'output_shape_for_1x1x96x96': list(y.shape),
        'parameter_names': params,
        'keys': keys,
    }
    path = os.path.join(OUT_DIR, 'resnet18_keys.json')
    with open(path, 'w') as f:
        json.dump(doc, f, indent=1)
        f.write('\n')
    print('%-45s %8d bytes  %d tensors, %d parameters' % (os.path.relpath(path), os.path.getsize(path), len(keys), doc['num_parameters']))


def make_dtypes_fixture():
    """One tensor per dtype we read, written by the safetensors library itself, so the TS
    reader is checked against the reference writer (not only against our own)."""
    from safetensors.torch import save_file
    torch.manual_seed(5)
    t = {
        'f32': torch.randn(2, 3),
        'f64': torch.randn(3, dtype=torch.float64),
        'f16': torch.tensor([0.0, -1.5, 65504.0, 6.1035e-05, 5.96e-08, float('inf')], dtype=torch.float16),
        'bf16': torch.tensor([1.0, -2.5, 3.0e38, 1.0e-3], dtype=torch.bfloat16),
        'i64': torch.tensor([-(2 ** 62), -1, 0, 2 ** 40 + 3], dtype=torch.int64),
        'i32': torch.tensor([[-7, 8], [2 ** 31 - 1, -(2 ** 31)]], dtype=torch.int32),
        'u8': torch.tensor([0, 1, 255], dtype=torch.uint8),
        'scalar': torch.tensor(5, dtype=torch.int64),
        'empty': torch.zeros(0, 4),
        'name with spaces/and.dots': torch.arange(4, dtype=torch.float32),
    }
    path = os.path.join(OUT_DIR, 'dtypes.safetensors')
    save_file(t, path, metadata={'writer': 'safetensors.torch.save_file'})  # one key: stable order
    print('%-45s %8d bytes' % (os.path.relpath(path), os.path.getsize(path)))


def make_torch_checkpoint():
    """A checkpoint exactly as a PyTorch user writes one (save_file(block.state_dict())), for
    load(): the perturbed (5, 7, use_1x1conv, strides 2) block after one train forward."""
    from safetensors.torch import save_file
    case = CASES[3]
    torch.manual_seed(case['seed'])
    block = ResidualBlock(5, 7, use_1x1conv=True, strides=2)
    perturb_batchnorm(block)
    block.train()
    with torch.no_grad():
        block(torch.randn(*case['input_shape']))
    path = os.path.join(OUT_DIR, 'torch_ckpt_block_5_7_1x1_s2.safetensors')
    save_file(block.state_dict(), path)  # no metadata: the layout is then fully deterministic
    print('%-45s %8d bytes' % (os.path.relpath(path), os.path.getsize(path)))


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # same summation order on every run
    for case in CASES:
        make_case(case)
    make_resnet18_keys()
    make_dtypes_fixture()
    make_torch_checkpoint()
    return 0


if __name__ == '__main__':
    sys.exit(main())
