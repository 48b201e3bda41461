// Finite-difference gradient checks in float64: compares the autograd gradient of
// L = sum(f(inputs) * r), for a fixed random r, with central differences of L.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const lib = require('../../dist/index.js');
const { tensor, noGrad } = lib;
const { mulberry32 } = lib.data;

/** inputs: { name: { shape, data?: Float64Array } }; fn(tensors) -> Tensor. Returns max rel err per input. */
export function gradcheck(fn, inputs, { device = 'cpu', eps = 1e-6, seed = 1, maxChecks = 60 } = {}) {
  const rng = mulberry32(seed);
  const values = {};
  for (const [name, spec] of Object.entries(inputs)) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    values[name] = spec.data ?? Float64Array.from({ length: n }, () => rng() * 2 - 1);
  }
  const make = (requiresGrad, override = {}) => Object.fromEntries(Object.entries(inputs).map(([name, spec]) => [
    name,
    tensor(override[name] ?? values[name], spec.shape, { dtype: 'float64', device, requiresGrad: requiresGrad && spec.grad !== false }),
  ]));

  const ts = make(true);
  const out = fn(ts);
  const r = Float64Array.from({ length: out.numel }, () => rng() * 2 - 1);
  const rT = tensor(r, out.shape.slice(), { dtype: 'float64', device });
  out.backward(rT);
  const analytic = {};
  for (const [name, t] of Object.entries(ts)) analytic[name] = t.grad ? t.grad.toArraySync() : null;

  const loss = (override) => noGrad(() => {
    const tt = make(false, override);
    const y = fn(tt);
    const v = y.toArraySync();
    let s = 0;
    for (let i = 0; i < v.length; i++) s += v[i] * r[i];
    y.dispose();
    for (const t of Object.values(tt)) t.dispose();
    return s;
  });

  const errors = {};
  for (const [name, spec] of Object.entries(inputs)) {
    if (spec.grad === false) continue;
    const base = values[name];
    const idx = pickIndices(base.length, maxChecks, rng);
    let num = 0;
    let den = 0;
    for (const i of idx) {
      const plus = Float64Array.from(base);
      plus[i] += eps;
      const minus = Float64Array.from(base);
      minus[i] -= eps;
      const numeric = (loss({ [name]: plus }) - loss({ [name]: minus })) / (2 * eps);
      const a = analytic[name] ? analytic[name][i] : 0;
      num = Math.max(num, Math.abs(a - numeric));
      den = Math.max(den, Math.abs(numeric));
    }
    errors[name] = num / Math.max(den, 1e-8);
  }
  out.dispose();
  rT.dispose();
  for (const t of Object.values(ts)) {
    t.grad?.dispose();
    t.dispose();
  }
  return errors;
}

function pickIndices(n, k, rng) {
  if (n <= k) return [...Array(n).keys()];
  const set = new Set();
  while (set.size < k) set.add(Math.floor(rng() * n));
  return [...set];
}

