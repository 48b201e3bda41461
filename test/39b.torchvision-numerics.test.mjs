// models.resnet18/34/50 against torchvision 0.28's, number for number
// (tools/gen_torchvision_fixtures.py, whose docstring describes the fixture): with every
// parameter and buffer set by a formula both sides compute bit for bit, one train forward (BN
// batch statistics, running stats updated), cross_entropy backward, then one eval forward, in
// float64 and in float32. Plus resnet50(zeroInitResidual) forward. The weights are rebuilt
// here, not stored.
//
// float64 must agree to TOL64 (measured: 2e-13 at worst, resnet50's gradient samples): the
// same formulas in the same precision. float32 must agree to TOL32 with torch's float32 run
// and with the float64 answer (measured: 6e-5 at worst, again resnet50's gradient samples).
// The generator keeps that possible: its formula scales the residual branches down, so the
// networks are well conditioned, and each model's input seed keeps every ReLU input far from
// 0 relative to float32 rounding, so no ReLU decision flips between float32 and float64 (one
// flip moves the gradients upstream of it by up to 1e-2). A float32 gradient failure here on
// a new CPU or compiler may be such a flip: check float64 first. CRB_NUMERICS_REPORT=1 prints
// every measured error.
import { expect } from 'chai';
import * as path from 'node:path';

import { functional as F, io, models, noGrad, tensor } from '../dist/index.js';
import { FIXTURES, maxRelErr } from './helpers/block-fixtures.mjs';

const FX = io.readSafetensorsFile(path.join(FIXTURES, 'torchvision_numerics.safetensors'));
const META = Object.fromEntries(Object.entries(FX.metadata).map(([k, v]) => [k, k === 'torchvision' || k === 'torch' || k === 'generator' ? v : JSON.parse(v)]));
const TOL64 = 1e-10;
const TOL32 = 1e-4;
const REPORT = process.env.CRB_NUMERICS_REPORT === '1';

/** The generator's v: MurmurHash3's fmix32 of i XOR (k + 1) * 0x9E3779B9, mapped to [-1, 1). */
function uniform(n, seed) {
  const out = new Float64Array(n);
  const s = Math.imul(seed + 1, 0x9E3779B9) >>> 0;
  for (let i = 0; i < n; i++) {
    let h = (i ^ s) >>> 0;
    h ^= h >>> 16;
    h = Math.imul(h, 0x85EBCA6B) >>> 0;
    h ^= h >>> 13;
    h = Math.imul(h, 0xC2B2AE35) >>> 0;
    h ^= h >>> 16;
    out[i] = 2 * ((h >>> 0) / 2 ** 32) - 1;
  }
  return out;
}

/** The generator's value for state-dict entry number k (null: num_batches_tracked, 0). */
function formula(name, shape, k, lastBn) {
  if (name.endsWith('num_batches_tracked')) return null;
  const v = uniform(shape.reduce((a, b) => a * b, 1), k);
  let f;
  if (name === 'fc.weight') {
    const s = Math.sqrt(3 / shape[1]);
    f = (x) => s * x;
  } else if (name.endsWith('.weight') && shape.length === 4) {
    const s = Math.sqrt(6 / (shape[1] * shape[2] * shape[3]));
    f = (x) => s * x;
  } else if (lastBn.has(name)) {
    f = (x) => 0.25 * (1 + 0.25 * x);
  } else if (name.endsWith('.weight')) {
    f = (x) => 1 + 0.25 * x;
  } else if (name.endsWith('running_var')) {
    f = (x) => 1 + 0.5 * x;
  } else {
    f = (x) => 0.1 * x;
  }
  for (let i = 0; i < v.length; i++) v[i] = f(v[i]);
  return v;
}

/** model's state dict by the formula, in `dtype`, without the keys in `skip`. */
function formulaStateDict(model, dtype, lastBn, skip = new Set()) {
  const out = {};
  Object.entries(model.stateDict()).forEach(([name, t], k) => {
    if (skip.has(name)) return;
    const v = formula(name, t.shape, k, lastBn);
    out[name] = v === null
      ? tensor(BigInt64Array.of(0n), [], { dtype: 'int64' })
      : tensor(dtype === 'float32' ? Float32Array.from(v) : v, t.shape, { dtype });
  });
  return out;
}

function build(make, options, dtype, lastBn, skip) {
  const model = make({ numClasses: META.num_classes, ...options });
  if (dtype === 'float64') model.to({ dtype: 'float64' });
  const sd = formulaStateDict(model, dtype, lastBn, skip);
  try {
    return { model, result: model.loadStateDict(sd, { strict: skip === undefined }) };
  } finally {
    for (const t of Object.values(sd)) t.dispose();
  }
}

function input(seed, dtype) {
  const v = uniform(META.input_shape.reduce((a, b) => a * b, 1), seed);
  return tensor(dtype === 'float32' ? Float32Array.from(v) : v, META.input_shape, { dtype });
}

/** A float tensor's values (a Float32Array or Float64Array). */
function values(t) {
  return t.toArraySync();
}

function sumSq(a) {
  let s = 0;
  let q = 0;
  for (const v of a) {
    s += v;
    q += v * v;
  }
  return [s, q];
}

/** Per BN: sum and sum of squares of running_mean, then of running_var. */
function bnStats(sd, meta) {
  return meta.bn_names.flatMap((bn) => [...sumSq(values(sd[`${bn}.running_mean`])), ...sumSq(values(sd[`${bn}.running_var`]))]);
}

const samples = (n) => [0, Math.floor(n / 7), Math.floor(n / 3), Math.floor(n / 2), Math.floor((2 * n) / 3), n - 1];

/**
 * [sum, sum of squares] rows against the reference rows: the sum's error relative to
 * sqrt(n * sumsq) (the largest |sum| could be), the sum of squares' relative to itself.
 */
function statsErr(actual, expected, counts) {
  let worst = 0;
  counts.forEach((n, j) => {
    const [s, q] = [expected[2 * j], expected[2 * j + 1]];
    const scale = Math.sqrt(n * q);
    worst = Math.max(worst, Math.abs(actual[2 * j] - s) / Math.max(scale, 1e-300), Math.abs(actual[2 * j + 1] - q) / Math.max(q, 1e-300));
  });
  return worst;
}

/** What one run of `model` gives, in the fixture's layout. */
function runModel(model, meta, dtype) {
  const x = input(meta.input_seed, dtype);
  const labels = tensor(Int32Array.from(META.labels), [META.labels.length]);
  try {
    model.train();
    const logits = model.forward(x);
    const loss = F.crossEntropy(logits, labels);
    const out = { logits_train: Array.from(values(logits)), loss: [loss.itemSync()] };
    const sd = model.stateDict();
    out.num_batches_tracked = meta.bn_names.map((bn) => Number(sd[`${bn}.num_batches_tracked`].itemSync()));
    out.bn_stats = bnStats(sd, meta);
    out.bn_counts = meta.bn_names.flatMap((bn) => [sd[`${bn}.running_mean`].shape[0], sd[`${bn}.running_var`].shape[0]]);
    out['bn1.running_mean'] = values(sd['bn1.running_mean']);
    out['bn1.running_var'] = values(sd['bn1.running_var']);
    loss.backward();
    logits.dispose();
    loss.dispose();
    model.eval();
    const logitsEval = noGrad(() => model.forward(x));
    out.logits_eval = values(logitsEval);
    logitsEval.dispose();
    out.running_unchanged = bnStats(sd, meta).every((v, i) => v === out.bn_stats[i]);
    for (const t of Object.values(sd)) if (t.dtype === 'int64') t.dispose();
    const params = Object.fromEntries(model.namedParameters());
    expect(Object.keys(params)).to.deep.equal(meta.param_names);
    const grads = meta.param_names.map((k) => values(params[k].grad));
    out.grad_counts = grads.map((g) => g.length);
    out.grad_stats = grads.flatMap(sumSq);
    out.grad_samples = grads.flatMap((g) => samples(g.length).map((i) => g[i]));
    out['grad.conv1.weight'] = values(params['conv1.weight'].grad);
    out['grad.fc.weight'] = values(params['fc.weight'].grad);
    out['grad.fc.bias'] = values(params['fc.bias'].grad);
    return out;
  } finally {
    x.dispose();
    labels.dispose();
  }
}

/** Every quantity's error against the fixture's `<prefix>.<quantity>` (those it has). */
function errors(ours, prefix) {
  const ref = (q) => FX.get(`${prefix}.${q}`)?.data;
  const err = {};
  for (const q of ['logits_train', 'loss', 'logits_eval', 'bn1.running_mean', 'bn1.running_var', 'grad.conv1.weight', 'grad.fc.weight', 'grad.fc.bias']) {
    if (ref(q)) err[q] = maxRelErr(ours[q], ref(q));
  }
  err.bn_stats = statsErr(ours.bn_stats, ref('bn_stats'), ours.bn_counts);
  err.grad_stats = statsErr(ours.grad_stats, ref('grad_stats'), ours.grad_counts);
  // each sampled entry relative to the rms of its tensor's gradient
  const stats = ref('grad_stats');
  const s = ref('grad_samples');
  err.grad_samples = Math.max(...ours.grad_counts.map((n, j) => {
    const rms = Math.sqrt(stats[2 * j + 1] / n);
    return Math.max(...ours.grad_samples.slice(6 * j, 6 * j + 6).map((v, c) => Math.abs(v - s[6 * j + c]) / rms));
  }));
  return err;
}

function expectWithin(err, tol, what) {
  if (REPORT) console.log(`      ${what}: ${Object.entries(err).map(([q, e]) => `${q} ${e.toExponential(1)}`).join(', ')}`);
  for (const [q, e] of Object.entries(err)) expect(e, `${what} ${q} max rel err`).to.be.at.most(tol);
}

describe('39b torchvision ResNets: numerics against torchvision 0.28 (float64 and float32)', function () {
  this.timeout(120000);

  it('the fixture is what this test expects', () => {
    expect(META.generator).to.equal('tools/gen_torchvision_fixtures.py');
    expect(META.torchvision).to.equal('0.28.0');
    expect(Object.keys(META.models)).to.deep.equal(['resnet18', 'resnet34', 'resnet50']);
  });

  for (const name of ['resnet18', 'resnet34', 'resnet50']) {
    const meta = META.models[name];
    const lastBn = new Set(meta.last_bn_weights);
    for (const dtype of ['float64', 'float32']) {
      it(`${name} ${dtype}: train logits, running stats, gradients, eval logits`, () => {
        const { model } = build(models[name], {}, dtype, lastBn);
        try {
          expect(model.parameters().every((p) => p.dtype === dtype)).to.equal(true);
          // the weights first: the formula must give torchvision's model the same numbers
          const sd = model.stateDict();
          const keys = Object.keys(sd).filter((k) => !k.endsWith('num_batches_tracked'));
          const weightStats = keys.flatMap((k) => sumSq(values(sd[k])));
          for (const t of Object.values(sd)) if (t.dtype === 'int64') t.dispose();
          expect(statsErr(weightStats, FX.get(`${name}.${dtype}.weight_stats`).data, keys.map((k) => sd[k].numel)), 'weights').to.be.at.most(1e-12);
          const ours = runModel(model, meta, dtype);
          expect(ours.num_batches_tracked.every((n) => n === 1)).to.equal(true);
          expect(ours.running_unchanged, 'eval leaves the running stats alone').to.equal(true);
          if (dtype === 'float64') {
            expectWithin(errors(ours, `${name}.float64`), TOL64, `${name} float64 vs torch float64`);
          } else {
            expectWithin(errors(ours, `${name}.float32`), TOL32, `${name} float32 vs torch float32`);
            expectWithin(errors(ours, `${name}.float64`), TOL32, `${name} float32 vs torch float64`);
          }
        } finally {
          model.dispose();
        }
      });
    }
  }

  it('resnet50 zeroInitResidual: zeroes the same weights as torchvision, and forwards the same', () => {
    const zeroed = META.zero_init_keys;
    expect(zeroed).to.deep.equal(META.models.resnet50.last_bn_weights);
    const lastBn = new Set(zeroed);
    for (const dtype of ['float64', 'float32']) {
      const { model, result } = build(models.resnet50, { zeroInitResidual: true }, dtype, lastBn, lastBn);
      try {
        expect(result).to.deep.equal({ missingKeys: zeroed, unexpectedKeys: [] });
        const sd = model.stateDict();
        for (const k of zeroed) expect(values(sd[k]).every((v) => v === 0), k).to.equal(true);
        const x = input(META.models.resnet50.input_seed, dtype);
        const train = noGrad(() => model.train().forward(x));
        const evalOut = noGrad(() => model.eval().forward(x));
        const tol = dtype === 'float64' ? TOL64 : TOL32;
        const refs = dtype === 'float64' ? ['float64'] : ['float32', 'float64'];
        for (const r of refs) {
          expectWithin({
            logits_train: maxRelErr(values(train), FX.get(`resnet50_zero_init.${r}.logits_train`).data),
            logits_eval: maxRelErr(values(evalOut), FX.get(`resnet50_zero_init.${r}.logits_eval`).data),
          }, tol, `resnet50 zeroInitResidual ${dtype} vs torch ${r}`);
        }
        for (const t of [x, train, evalOut, ...Object.values(sd).filter((t) => t.dtype === 'int64')]) t.dispose();
      } finally {
        model.dispose();
      }
    }
  });
});
