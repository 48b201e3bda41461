#!/usr/bin/env python3
"""Writes test/fixtures/torchvision_resnet_keys.json: for torchvision's resnet18/34/50
(num_classes 1000), every state-dict key in order with its shape and dtype, plus the
parameter count. Run with a Python that has torch and torchvision:

  python3 -m venv /tmp/venv-tv && /tmp/venv-tv/bin/pip install torch torchvision
  /tmp/venv-tv/bin/python tools/gen_torchvision_keys.py

`import torchvision` can fail beside a CPU-only torch (its __init__ loads compiled ops), so the
package __init__ is bypassed: only torchvision.models.resnet (pure Python) is imported.
"""
import importlib.util
import json
import os
import sys
import types

import torch

spec = importlib.util.find_spec('torchvision')
if spec is None or not spec.submodule_search_locations:
    sys.exit('torchvision is not installed')
tv_dir = list(spec.submodule_search_locations)[0]
try:
    import torchvision  # noqa: F401
    from torchvision.models import resnet
except Exception:  # the package __init__ failed: load the models subpackage without it
    for name in [n for n in sys.modules if n == 'torchvision' or n.startswith('torchvision.')]:
        del sys.modules[name]
    pkg = types.ModuleType('torchvision')
    pkg.__path__ = [tv_dir]
    sys.modules['torchvision'] = pkg
    from torchvision.models import resnet

DTYPES = {torch.float32: 'float32', torch.int64: 'int64'}


def main():
    out = {
        'generator': 'tools/gen_torchvision_keys.py',
        'torch': torch.__version__,
        'torchvision': None,
        'models': {},
    }
    try:
        from importlib.metadata import version
        out['torchvision'] = version('torchvision')
    except Exception:
        pass
    for name in ['resnet18', 'resnet34', 'resnet50']:
        model = getattr(resnet, name)(weights=None, num_classes=1000)
        sd = model.state_dict()
        out['models'][name] = {
            'numParameters': sum(p.numel() for p in model.parameters()),
            'keys': [[k, list(v.shape), DTYPES[v.dtype]] for k, v in sd.items()],
        }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'torchvision_resnet_keys.json')
    with open(path, 'w') as f:
        # one key per line keeps the diff readable
        f.write('{\n')
        f.write(f'  "generator": {json.dumps(out["generator"])},\n  "torch": {json.dumps(out["torch"])},\n  "torchvision": {json.dumps(out["torchvision"])},\n  "models": {{\n')
        names = list(out['models'])
        for i, name in enumerate(names):
            m = out['models'][name]
            f.write(f'    {json.dumps(name)}: {{\n      "numParameters": {m["numParameters"]},\n      "keys": [\n')
            f.write(',\n'.join('        ' + json.dumps(k) for k in m['keys']))
            f.write('\n      ]\n    }' + (',' if i < len(names) - 1 else '') + '\n')
        f.write('  }\n}\n')
    print(path, {n: (len(m['keys']), m['numParameters']) for n, m in out['models'].items()})


if __name__ == '__main__':
    main()
