// Reads the PyTorch fixtures written by tools/gen_fixtures.py (see its docstring for the keys).
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { io, tensor } from '../../dist/index.js';

export const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
export const BLOCK_CASES = ['3_3', '3_6_1x1_s2', '5_7_1x1_s2', '5_7_1x1_s2_perturbed'];
export const TOLERANCE = 1e-4;

const DTYPE = { F32: 'float32', F64: 'float64', I64: 'int64', I32: 'int32', U8: 'uint8' };

export function loadBlockFixture(name) {
  const file = io.readSafetensorsFile(path.join(FIXTURES, `block_${name}.safetensors`));
  const m = file.metadata;
  const withPrefix = (prefix) => [...file.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
  return {
    name,
    params: JSON.parse(m.params),
    outputShape: JSON.parse(m.output_shape),
    zeroGrads: JSON.parse(m.zero_grads),
    torchFloor: JSON.parse(m.torch_f32_max_rel_err),
    entry(key) {
      const e = file.get(key);
      if (!e) throw new Error(`fixture block_${name} has no entry ${key}`);
      return e;
    },
    /** options: tensor()'s, and memoryFormat (a leaf in that format). */
    tensor(key, device, { memoryFormat = 'contiguous', requiresGrad = false, ...options } = {}) {
      const e = this.entry(key);
      const t = tensor(e.data, e.shape, { dtype: DTYPE[e.dtype], device, ...options });
      if (memoryFormat === 'contiguous') {
        t.requiresGrad = requiresGrad;
        return t;
      }
      const converted = t.to({ memoryFormat });
      t.dispose();
      converted.requiresGrad = requiresGrad;
      return converted;
    },
    /** The PyTorch state dict at init, as tensors on `device`. */
    stateDict(device) {
      return Object.fromEntries(withPrefix('sd.').map((k) => [k, this.tensor(`sd.${k}`, device)]));
    },
    sdKeys: withPrefix('sd.'),
    afterKeys: withPrefix('after.'),
    gradKeys: withPrefix('grad.'),
  };
}

export function blockArgs(params, device) {
  return [params.input_channels, params.num_channels, { use1x1conv: params.use_1x1conv, strides: params.strides, device }];
}

/** max |a - b| / max |b| (or / scale), in double precision. */
export function maxRelErr(actual, expected, scale) {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != ${expected.length}`);
  let diff = 0;
  let big = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (Number.isNaN(d)) return NaN;
    diff = Math.max(diff, d);
    big = Math.max(big, Math.abs(expected[i]));
  }
  return diff / Math.max(scale ?? big, 1e-6);
}

export function maxAbs(values) {
  let big = 0;
  for (const v of values) big = Math.max(big, Math.abs(v));
  return big;
}

/** Device-tagged suite title, so `mocha --grep @cuda` selects the GPU runs. */
export function deviceTitle(title, device, memoryFormat = 'contiguous') {
  const tag = memoryFormat === 'channelsLast' ? `${device}, channelsLast` : device;
  return device === 'cuda' ? `${title} (${tag}) @cuda` : `${title} (${tag})`;
}

/** Every device in `devices`, in both memory formats where the device computes channels-last natively. */
export function deviceFormats(devices, capabilities) {
  return devices.flatMap((d) => [[d, 'contiguous'], ...(capabilities(d).channelsLast ? [[d, 'channelsLast']] : [])]);
}

/** The values of `t` in logical (NCHW) order, whatever its memory format. */
export function values(t) {
  if (t.memoryFormat !== 'channelsLast') return t.toArraySync();
  const c = t.to({ memoryFormat: 'contiguous' });
  try {
    return c.toArraySync();
  } finally {
    c.dispose();
  }
}
