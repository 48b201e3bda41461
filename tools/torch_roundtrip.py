"""Checkpoint round trip between cudnn-resblock and PyTorch (a dev tool, not used by the tests).

Both directions exchange two safetensors files: a checkpoint (a state dict with PyTorch's names)
and an "io" file holding an input `x` and the eval-mode output `y` one side computed from it.

Ours -> PyTorch: check that a checkpoint written by our save() gives PyTorch the same logits.

    node --input-type=module -e "
      import { resnet18, save, io, randn, manualSeed, noGrad } from './dist/index.js';
      manualSeed(0);
      const net = resnet18({ numClasses: 10, inChannels: 1 });
      const x = randn([4, 1, 96, 96]);
      noGrad(() => net.train().forward(x));          // move the BN running stats off their init
      net.eval();
      const y = noGrad(() => net.forward(x));
      save(net, '/tmp/ours.safetensors');
      io.saveStateDict({ x, y }, '/tmp/ours_io.safetensors');"
    .venv-ref/bin/python tools/torch_roundtrip.py check /tmp/ours.safetensors /tmp/ours_io.safetensors

PyTorch -> ours: write a PyTorch checkpoint and its logits, then load it with our load().

    .venv-ref/bin/python tools/torch_roundtrip.py export /tmp/torch.safetensors /tmp/torch_io.safetensors
    node --input-type=module -e "
      import { resnet18, load, io, noGrad } from './dist/index.js';
      const net = resnet18({ numClasses: 10, inChannels: 1 });
      load(net, '/tmp/torch.safetensors');
      const { x, y } = io.loadStateDictFile('/tmp/torch_io.safetensors');
      const ours = noGrad(() => net.eval().forward(x)).toArraySync(), ref = y.toArraySync();
      let d = 0, m = 0; ours.forEach((v, i) => { d = Math.max(d, Math.abs(v - ref[i])); m = Math.max(m, Math.abs(ref[i])); });
      console.log('max rel err', d / m);"

Options (both commands): --model resnet18 (default) or --model block --block 5,7,1x1,2
(input_channels, num_channels, optional "1x1" for use_1x1conv, strides); --tol (default 1e-4)
for `check`; --seed, --input-shape N,C,H,W for `export` (default 4,1,96,96 for resnet18,
2,C,17,13 for a block). `check` exits 1 when the max relative error exceeds --tol.
Relative error = max |ours - torch| / max |torch|.
"""
import argparse
import os
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_fixtures import ResidualBlock, resnet18  # noqa: E402  (d2l's definitions, verbatim)


def parse_block(spec):
    parts = spec.split(',')
    use_1x1 = '1x1' in parts
    nums = [int(p) for p in parts if p != '1x1']
    if len(nums) not in (2, 3):
        raise SystemExit('--block expects input_channels,num_channels[,1x1][,strides], got %r' % spec)
    strides = nums[2] if len(nums) == 3 else 1
    return dict(input_channels=nums[0], num_channels=nums[1], use_1x1conv=use_1x1, strides=strides)


def build(args):
    if args.model == 'resnet18':
        return resnet18(num_classes=10, in_channels=1)
    b = parse_block(args.block)
    return ResidualBlock(b['input_channels'], b['num_channels'], use_1x1conv=b['use_1x1conv'], strides=b['strides'])


def max_rel_err(ours, ref):
    return (ours.double() - ref.double()).abs().max().item() / max(ref.double().abs().max().item(), 1e-12)


def check(args):
    net = build(args)
    state = load_file(args.checkpoint)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        print('the checkpoint does not fit --model %s:\n%s' % (args.model, str(e)[:2000]))
        return 1
    with safe_open(args.checkpoint, 'pt') as f:
        meta = f.metadata()
    print('checkpoint: %d tensors, all names and shapes match d2l %s; metadata %s' % (len(state), args.model, meta))
    bad = [k for k, v in state.items() if ('num_batches_tracked' in k) != (v.dtype == torch.int64)]
    if bad:
        print('wrong dtypes (num_batches_tracked must be int64, the rest float32):', bad)
        return 1
    io = load_file(args.io)
    net.eval()
    with torch.no_grad():
        y = net(io['x'])
    err = max_rel_err(io['y'], y)
    print('ours vs torch: output %s, max rel err %.3e (tol %.1e)' % (list(y.shape), err, args.tol))
    return 0 if err <= args.tol else 1


def export(args):
    torch.manual_seed(args.seed)
    net = build(args)
    if args.input_shape:
        shape = [int(s) for s in args.input_shape.split(',')]
    elif args.model == 'resnet18':
        shape = [4, 1, 96, 96]
    else:
        shape = [2, parse_block(args.block)['input_channels'], 17, 13]
    x = torch.randn(*shape)
    net.train()
    with torch.no_grad():
        net(x)  # one train forward: running stats and num_batches_tracked leave their init values
    net.eval()
    with torch.no_grad():
        y = net(x)
    save_file(net.state_dict(), args.checkpoint, metadata={'writer': 'tools/torch_roundtrip.py', 'torch_version': torch.__version__})
    save_file({'x': x.contiguous(), 'y': y.contiguous()}, args.io)
    print('wrote %s (%d tensors) and %s (x %s, y %s)' % (args.checkpoint, len(net.state_dict()), args.io, shape, list(y.shape)))
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('command', choices=['check', 'export'])
    p.add_argument('checkpoint', help='state-dict checkpoint (read by check, written by export)')
    p.add_argument('io', help='safetensors file with x and y (read by check, written by export)')
    p.add_argument('--model', choices=['resnet18', 'block'], default='resnet18')
    p.add_argument('--block', default='5,7,1x1,2', help='input_channels,num_channels[,1x1][,strides]')
    p.add_argument('--tol', type=float, default=1e-4)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--input-shape', default=None)
    args = p.parse_args(argv)
    return check(args) if args.command == 'check' else export(args)


if __name__ == '__main__':
    sys.exit(main())
