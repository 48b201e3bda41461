'use strict';
// The fuzzer's targets: one entry per public function, constructor or method, each building a
// mostly-valid call from the case's random generator. Every argument carries a slot that says
// what it must be, so the mutator knows which bad values to try and whether an `ok` outcome
// means the library silently accepted something it must reject.
const fs = require('node:fs');
const path = require('node:path');

// --- slots (what an argument must be)
const S = {
  shape: (o = {}) => ({ kind: 'shape', ...o }),
  int: (min, max = Number.MAX_SAFE_INTEGER, o = {}) => ({ kind: 'int', min, max, ...o }),
  num: (o = {}) => ({ kind: 'number', ...o }),
  bool: (o = {}) => ({ kind: 'bool', ...o }),
  pair: (min, o = {}) => ({ kind: 'pair', min, ...o }),
  tensor: (o = {}) => ({ kind: 'tensor', ...o }),
  self: (o = {}) => ({ kind: 'self', ...o }),
  opts: (keys, o = {}) => ({ kind: 'options', keys, optional: true, ...o }),
  dtype: (o = {}) => ({ kind: 'dtype', ...o }),
  device: (o = {}) => ({ kind: 'device', ...o }),
  fn: (o = {}) => ({ kind: 'fn', ...o }),
  path: (o = {}) => ({ kind: 'path', ...o }),
  any: (o = {}) => ({ kind: 'any', ...o }),
  data: (o = {}) => ({ kind: 'data', ...o }),
  module: (o = {}) => ({ kind: 'module', ...o }),
};

const DTYPES = ['float32', 'float64', 'float16', 'bfloat16', 'int32', 'int64', 'uint8'];
const FLOAT = ['float32', 'float64'];
const CREATE = () => ({ dtype: S.dtype({ optional: true }), device: S.device({ optional: true }), requiresGrad: S.bool({ optional: true }) });

function arg(name, slot, value) {
  return { name, slot, value };
}

/** Tiny valid values. */
function helpers(g, c) {
  const L = c.L;
  const h = {
    shape(minRank = 0, maxRank = 4, maxDim = 4) {
      const r = g.int(minRank, maxRank);
      return Array.from({ length: r }, () => g.int(1, maxDim));
    },
    numel: (s) => s.reduce((a, b) => a * b, 1),
    t(shape, o) { return c.track(L.randn(shape, o)); },
    image(n = g.int(1, 2), ch = g.int(1, 3), hw = g.int(3, 6)) { return h.t([n, ch, hw, hw]); },
    labels(n, classes) { return c.track(L.tensor(Int32Array.from({ length: n }, () => g.int(0, classes - 1)), [n])); },
    createOpts(extra = {}) {
      const o = {};
      if (g.chance(0.3)) o.dtype = g.pick(FLOAT);
      if (g.chance(0.2)) o.device = 'cpu';
      if (g.chance(0.2) && (o.dtype === undefined || FLOAT.includes(o.dtype))) o.requiresGrad = g.chance(0.5);
      Object.assign(o, extra);
      return g.chance(0.2) && Object.keys(o).length === 0 ? undefined : o;
    },
    nested(shape) {
      const build = (d) => (d === shape.length ? g.int(-5, 5) : Array.from({ length: shape[d] }, () => build(d + 1)));
      return build(0);
    },
    conv(cin = g.int(1, 3), cout = g.int(1, 3), k = g.int(1, 3), opts = {}) {
      return c.track(new L.Conv2d(cin, cout, k, opts));
    },
    tmp(name) { return path.join(c.tmpdir, name); },
    smallModel() {
      return c.track(new L.Sequential(new L.Conv2d(1, 2, 3, { padding: 1 }), new L.BatchNorm2d(2), new L.ReLU(), new L.AdaptiveAvgPool2d(1), new L.Flatten(), new L.Linear(2, 3)));
    },
    grads(params) {
      for (const p of params) { if (p.grad) p.grad.dispose(); p.grad = c.L.onesLike(p); }
    },
  };
  return h;
}

const CONV_KEYS = () => ({ stride: S.pair(1, { optional: true }), padding: S.pair(0, { optional: true }), dilation: S.pair(1, { optional: true }), groups: S.int(1, undefined, { optional: true }) });
const BN_KEYS = () => ({ training: S.bool({ optional: true }), momentum: S.num({ optional: true, min: 0, max: 1 }), eps: S.num({ optional: true, min: 0, finite: true, exclusiveMin: true }) });
const POOL_KEYS = () => ({ stride: S.pair(1, { optional: true }), padding: S.pair(0, { optional: true }) });

/**
 * Each target: name, weight (relative frequency), make(g, c, h) -> { args, call(args) }.
 * `call` gets the (possibly mutated) values and returns the result (or a promise of it).
 */
const TARGETS = [
  // --- creation
  { name: 'tensor(nested)', weight: 3, make(g, c, h) {
    const shape = h.shape(0, 3);
    return { args: [arg('data', S.data(), shape.length ? h.nested(shape) : g.int(-3, 3)), arg('options', S.opts(CREATE()), h.createOpts())],
      // Options in third place: as the second argument an array is a shape ([] for a scalar).
      call: ([d, o]) => c.L.tensor(d, undefined, o) };
  } },
  { name: 'tensor(typed, shape)', weight: 3, make(g, c, h) {
    const shape = h.shape(1, 3);
    const n = h.numel(shape);
    const data = g.pick([() => new Float32Array(n).map(() => g.next()), () => Float64Array.from({ length: n }, () => g.next()), () => new Int32Array(n), () => new Uint8Array(n), () => new BigInt64Array(n)])();
    return { args: [arg('data', S.data(), data), arg('shape', S.shape({ optional: true, orOptions: true }), shape), arg('options', S.opts(CREATE()), g.chance(0.5) ? undefined : { device: 'cpu' })],
      call: ([d, s, o]) => c.L.tensor(d, s, o) };
  } },
  ...['zeros', 'ones', 'empty'].map((fn) => ({ name: fn, weight: 2, make(g, c, h) {
    return { args: [arg('shape', S.shape(), h.shape()), arg('options', S.opts(CREATE()), h.createOpts())], call: ([s, o]) => c.L[fn](s, o) };
  } })),
  { name: 'Tensor.zeros (static)', weight: 1, make(g, c, h) {
    return { args: [arg('shape', S.shape(), h.shape()), arg('options', S.opts(CREATE()), h.createOpts())], call: ([s, o]) => c.L.Tensor.zeros(s, o) };
  } },
  { name: 'full', weight: 2, make(g, c, h) {
    return { args: [arg('shape', S.shape(), h.shape()), arg('value', S.num({ allowNaN: true, allowInf: true }), g.int(-5, 5) / 2), arg('options', S.opts(CREATE()), h.createOpts())],
      call: ([s, v, o]) => c.L.full(s, v, o) };
  } },
  { name: 'randn', weight: 2, make(g, c, h) {
    const o = h.createOpts(g.chance(0.5) ? { mean: g.int(-2, 2), std: g.int(1, 3) } : {}) ?? {};
    if (o.dtype === undefined) o.dtype = 'float32';
    return { args: [arg('shape', S.shape(), h.shape()), arg('options', S.opts({ ...CREATE(), mean: S.num({ optional: true, finite: true }), std: S.num({ optional: true, finite: true, min: 0 }) }), o)],
      call: ([s, o2]) => c.L.randn(s, o2) };
  } },
  { name: 'rand', weight: 2, make(g, c, h) {
    const o = h.createOpts(g.chance(0.5) ? { low: -1, high: g.int(1, 3) } : {}) ?? {};
    if (o.dtype === undefined) o.dtype = 'float32';
    return { args: [arg('shape', S.shape(), h.shape()), arg('options', S.opts({ ...CREATE(), low: S.num({ optional: true, finite: true }), high: S.num({ optional: true, finite: true }) }), o)],
      call: ([s, o2]) => c.L.rand(s, o2) };
  } },
  ...['zerosLike', 'onesLike'].map((fn) => ({ name: fn, weight: 2, make(g, c, h) {
    return { args: [arg('t', S.tensor(), h.t(h.shape())), arg('options', S.opts(CREATE()), h.createOpts())], call: ([t, o]) => c.L[fn](t, o) };
  } })),
  // --- tensor methods
  { name: 'Tensor#to', weight: 3, make(g, c, h) {
    const x = h.t(h.shape(1, 4));
    const target = g.pick(['float64', 'float32', 'cpu', 'int32', 'float16', 'bfloat16', { dtype: 'float64' }, { device: 'cpu', dtype: 'float32', memoryFormat: g.pick(['contiguous', 'channelsLast']) }]);
    return { args: [arg('this', S.self(), x), arg('target', S.any({ custom: 'toTarget', optional: true }), target)], call: ([t, tg]) => t.to(tg) };
  } },
  ...['reshape', 'view'].map((m) => ({ name: `Tensor#${m}`, weight: 3, make(g, c, h) {
    const shape = h.shape(1, 4);
    const n = h.numel(shape);
    const target = g.pick([[n], [1, n], [n, 1], [-1], [1, -1], shape.slice().reverse()]);
    return { args: [arg('this', S.self(), h.t(shape)), arg('shape', S.shape({ allowMinus1: true }), target)], call: ([t, s]) => t[m](s) };
  } })),
  { name: 'Tensor#flatten', weight: 2, make(g, c, h) {
    const r = g.int(1, 4);
    const start = g.int(0, r - 1);
    return { args: [arg('this', S.self(), h.t(h.shape(r, r))), arg('startDim', S.int(-r, r - 1, { optional: true }), start), arg('endDim', S.int(-r, r - 1, { optional: true }), g.chance(0.5) ? -1 : g.int(start, r - 1))],
      call: ([t, s, e]) => t.flatten(s, e) };
  } },
  { name: 'Tensor#add', weight: 3, make(g, c, h) {
    const shape = h.shape(0, 4);
    return { args: [arg('this', S.self(), h.t(shape)), arg('other', S.tensor(), h.t(shape))], call: ([a, b]) => a.add(b) };
  } },
  ...['relu', 'sum', 'mean', 'clone', 'detach', 'cpu', 'zeroGrad', 'toString'].map((m) => ({ name: `Tensor#${m}`, weight: 1, make(g, c, h) {
    // toString of a disposed tensor may say so instead of throwing
    return { args: [arg('this', S.self({ allowDisposed: m === 'toString' }), h.t(h.shape(0, 4), { requiresGrad: g.chance(0.3) }))], call: ([t]) => t[m]() };
  } })),
  { name: 'Tensor#backward', weight: 3, make(g, c, h) {
    const x = h.t(h.shape(1, 3), { requiresGrad: true });
    const scalar = g.chance(0.5);
    const y = c.track(scalar ? x.relu().sum() : x.relu());
    const grad = scalar ? undefined : c.track(c.L.onesLike(y));
    // as in PyTorch, a one-element output needs no gradient
    return { args: [arg('this', S.self(), y), arg('gradient', S.tensor({ optional: scalar || y.numel === 1 }), grad), arg('options', S.opts({ retainGraph: S.bool({ optional: true }) }), g.chance(0.5) ? undefined : { retainGraph: g.chance(0.5) })],
      call: ([t, gr, o]) => t.backward(gr, o) };
  } },
  ...['item', 'itemSync'].map((m) => ({ name: `Tensor#${m}`, weight: 1, make(g, c, h) {
    return { args: [arg('this', S.self(), h.t(g.pick([[], [1], [1, 1]])))], call: ([t]) => t[m]() };
  } })),
  ...['toArray', 'toArraySync', 'tolist', 'tolistSync'].map((m) => ({ name: `Tensor#${m}`, weight: 1, make(g, c, h) {
    return { args: [arg('this', S.self(), h.t(h.shape(0, 3)))], call: ([t]) => t[m]() };
  } })),
  { name: 'Tensor#requiresGrad_', weight: 2, make(g, c, h) {
    return { args: [arg('this', S.self(), h.t(h.shape(0, 3))), arg('requiresGrad', S.bool({ optional: true }), g.chance(0.5))], call: ([t, r]) => t.requiresGrad_(r) };
  } },
  { name: 'dispose then use', weight: 3, disposed: true, make(g, c, h) {
    const uses = [
      ['add', (t) => t.add(h.t(t.shape.slice()))], ['relu', (t) => t.relu()], ['sum', (t) => t.sum()], ['mean', (t) => t.mean()],
      ['reshape', (t) => t.reshape([-1])], ['view', (t) => t.view([-1])], ['flatten', (t) => t.flatten()], ['to', (t) => t.to('float64')],
      ['toArraySync', (t) => t.toArraySync()], ['toArray', (t) => t.toArray()], ['itemSync', (t) => t.itemSync()], ['item', (t) => t.item()],
      ['tolistSync', (t) => t.tolistSync()], ['clone', (t) => t.clone()], ['detach', (t) => t.detach()], ['backward', (t) => t.backward()],
      ['functional.relu', (t) => c.L.functional.relu(t)], ['zerosLike', (t) => c.L.zerosLike(t)], ['functional.add(x, disposed)', (t) => c.L.functional.add(h.t([1]), t)],
      ['functional.linear', (t) => c.L.functional.linear(h.t([2, 1]), t)], ['Linear.forward', (t) => c.track(new c.L.Linear(1, 1)).forward(t)],
    ];
    const [label, use] = g.pick(uses);
    const t = c.L.randn([1]);
    t.dispose();
    return { what: label, args: [arg('this', S.any(), t)], call: ([x]) => use(x) };
  } },
  // --- functional
  { name: 'functional.conv2d', weight: 4, make(g, c, h) {
    const groups = g.pick([1, 1, 1, 2]);
    const cin = groups * g.int(1, 2), cout = groups * g.int(1, 2), k = g.int(1, 3);
    const x = h.image(undefined, cin, g.int(3, 6));
    const w = h.t([cout, cin / groups, k, k]);
    const b = g.chance(0.5) ? h.t([cout]) : null;
    const o = g.chance(0.3) ? undefined : { stride: g.int(1, 2), padding: g.int(0, 1), dilation: g.pick([1, 1, 2]), groups };
    if (o === undefined && groups !== 1) w.dispose();
    const w2 = o === undefined && groups !== 1 ? h.t([cout, cin, k, k]) : w;
    return { args: [arg('x', S.tensor(), x), arg('weight', S.tensor(), w2), arg('bias', S.tensor({ optional: true, nullable: true }), b), arg('options', S.opts(CONV_KEYS()), o)],
      call: ([a, b2, c2, d]) => c.L.functional.conv2d(a, b2, c2, d) };
  } },
  { name: 'functional.batchNorm', weight: 3, make(g, c, h) {
    const ch = g.int(1, 3);
    const x = h.image(2, ch);
    const stats = g.chance(0.7);
    return { args: [arg('x', S.tensor(), x), arg('runningMean', S.tensor({ nullable: true }), stats ? c.track(c.L.zeros([ch])) : null), arg('runningVar', S.tensor({ nullable: true }), stats ? c.track(c.L.ones([ch])) : null),
      arg('weight', S.tensor(), c.track(c.L.ones([ch]))), arg('bias', S.tensor(), c.track(c.L.zeros([ch]))), arg('options', S.opts(BN_KEYS()), { training: g.chance(0.5) || !stats, momentum: 0.1, eps: 1e-5 })],
      call: (a) => c.L.functional.batchNorm(...a) };
  } },
  { name: 'functional.batchNormAddRelu', weight: 3, make(g, c, h) {
    const ch = g.int(1, 3);
    const x = h.image(2, ch, 4);
    return { args: [arg('x', S.tensor(), x), arg('z', S.tensor(), h.t(x.shape.slice())), arg('runningMean', S.tensor({ nullable: true }), c.track(c.L.zeros([ch]))), arg('runningVar', S.tensor({ nullable: true }), c.track(c.L.ones([ch]))),
      arg('weight', S.tensor(), c.track(c.L.ones([ch]))), arg('bias', S.tensor(), c.track(c.L.zeros([ch]))), arg('options', S.opts(BN_KEYS()), { training: g.chance(0.5) })],
      call: (a) => c.L.functional.batchNormAddRelu(...a) };
  } },
  { name: 'functional.maxPool2d', weight: 3, make(g, c, h) {
    const k = g.int(1, 3);
    return { args: [arg('x', S.tensor(), h.image(undefined, undefined, g.int(3, 6))), arg('kernelSize', S.pair(1), g.chance(0.8) ? k : [k, g.int(1, 3)]), arg('options', S.opts(POOL_KEYS()), g.chance(0.3) ? undefined : { stride: g.int(1, 2), padding: g.int(0, Math.floor(k / 2)) })],
      call: ([x, k2, o]) => c.L.functional.maxPool2d(x, k2, o) };
  } },
  { name: 'functional.adaptiveAvgPool2d', weight: 2, make(g, c, h) {
    return { args: [arg('x', S.tensor(), h.image()), arg('outputSize', S.pair(1), g.chance(0.7) ? g.int(1, 3) : [g.int(1, 3), g.int(1, 3)])], call: ([x, o]) => c.L.functional.adaptiveAvgPool2d(x, o) };
  } },
  { name: 'functional.linear', weight: 3, make(g, c, h) {
    const n = g.int(1, 3), i = g.int(1, 4), o = g.int(1, 4);
    return { args: [arg('x', S.tensor(), h.t([n, i])), arg('weight', S.tensor(), h.t([o, i])), arg('bias', S.tensor({ optional: true, nullable: true }), g.chance(0.5) ? h.t([o]) : null)],
      call: ([x, w, b]) => c.L.functional.linear(x, w, b) };
  } },
  ...['crossEntropy', 'accuracyCount'].map((fn) => ({ name: `functional.${fn}`, weight: 3, make(g, c, h) {
    const n = g.int(1, 4), k = g.int(2, 5);
    const labels = g.chance(0.7) ? h.labels(n, k) : c.track(c.L.tensor(BigInt64Array.from({ length: n }, () => BigInt(g.int(0, k - 1))), [n]));
    return { args: [arg('logits', S.tensor(), h.t([n, k], { requiresGrad: g.chance(0.3) })), arg('labels', S.tensor(), labels)], call: ([a, b]) => c.L.functional[fn](a, b) };
  } })),
  { name: 'functional.normalizeImages', weight: 2, make(g, c, h) {
    const n = g.int(1, 2), hw = g.int(2, 6);
    const img = c.track(c.L.tensor(Uint8Array.from({ length: n * hw * hw }, () => g.int(0, 255)), [n, 1, hw, hw]));
    return { args: [arg('images', S.tensor(), img), arg('options', S.opts({ size: S.pair(1, { optional: true }), mean: S.num({ optional: true, finite: true }), std: S.num({ optional: true, finite: true, min: 0, exclusiveMin: true }), dtype: S.any({ optional: true }) }), g.chance(0.3) ? undefined : { size: g.int(1, 8), mean: 0.5, std: 0.25, dtype: g.pick(FLOAT) })],
      call: ([i, o]) => c.L.functional.normalizeImages(i, o) };
  } },
  { name: 'functional.relu', weight: 1, make(g, c, h) { return { args: [arg('x', S.tensor(), h.t(h.shape()))], call: ([x]) => c.L.functional.relu(x) }; } },
  { name: 'functional.add', weight: 1, make(g, c, h) { const s = h.shape(); return { args: [arg('a', S.tensor(), h.t(s)), arg('b', S.tensor(), h.t(s))], call: ([a, b]) => c.L.functional.add(a, b) }; } },
  { name: 'functional.flatten', weight: 1, make(g, c, h) {
    const r = g.int(2, 4);
    return { args: [arg('x', S.tensor(), h.t(h.shape(r, r))), arg('startDim', S.int(-r, r - 1, { optional: true }), 1), arg('endDim', S.int(-r, r - 1, { optional: true }), -1)], call: ([x, s, e]) => c.L.functional.flatten(x, s, e) };
  } },
  // --- nn
  { name: 'Conv2d + forward', weight: 4, make(g, c, h) {
    const cin = g.int(1, 3), cout = g.int(1, 3);
    return { args: [arg('inChannels', S.int(1), cin), arg('outChannels', S.int(1), cout), arg('kernelSize', S.pair(1), g.int(1, 3)),
      arg('args', S.opts({ ...CONV_KEYS(), bias: S.bool({ optional: true }), device: S.device({ optional: true }) }), g.chance(0.3) ? undefined : { stride: g.int(1, 2), padding: g.int(0, 1), bias: g.chance(0.5) }),
      arg('x', S.tensor(), h.image(undefined, cin, 5))],
      call: ([a, b, k, o, x]) => c.track(new c.L.Conv2d(a, b, k, o)).forward(x) };
  } },
  { name: 'BatchNorm2d + forward', weight: 3, make(g, c, h) {
    const ch = g.int(1, 3);
    return { args: [arg('numFeatures', S.int(1), ch), arg('args', S.opts({ eps: S.num({ optional: true, min: 0, exclusiveMin: true, finite: true }), momentum: S.num({ optional: true, nullable: true, min: 0, max: 1 }), affine: S.bool({ optional: true }), trackRunningStats: S.bool({ optional: true }), device: S.device({ optional: true }) }), g.chance(0.3) ? undefined : { eps: 1e-5, momentum: g.pick([0.1, null]), affine: g.chance(0.7), trackRunningStats: g.chance(0.7) }),
      arg('x', S.tensor(), h.image(2, ch))],
      call: ([n, o, x]) => c.track(new c.L.BatchNorm2d(n, o)).forward(x) };
  } },
  { name: 'BatchNorm2d#forwardAddRelu', weight: 1, make(g, c, h) {
    const ch = g.int(1, 3);
    const x = h.image(2, ch);
    return { args: [arg('x', S.tensor(), x), arg('z', S.tensor(), h.t(x.shape.slice()))], call: ([a, b]) => c.track(new c.L.BatchNorm2d(ch)).forwardAddRelu(a, b) };
  } },
  { name: 'MaxPool2d + forward', weight: 2, make(g, c, h) {
    const k = g.int(1, 3);
    return { args: [arg('kernelSize', S.pair(1), k), arg('args', S.opts(POOL_KEYS()), g.chance(0.5) ? undefined : { stride: g.int(1, 2), padding: g.int(0, Math.floor(k / 2)) }), arg('x', S.tensor(), h.image(undefined, undefined, 5))],
      call: ([k2, o, x]) => new c.L.MaxPool2d(k2, o).forward(x) };
  } },
  { name: 'AdaptiveAvgPool2d + forward', weight: 2, make(g, c, h) {
    return { args: [arg('outputSize', S.pair(1), g.int(1, 3)), arg('x', S.tensor(), h.image())], call: ([o, x]) => new c.L.AdaptiveAvgPool2d(o).forward(x) };
  } },
  { name: 'Linear + forward', weight: 3, make(g, c, h) {
    const i = g.int(1, 4), o = g.int(1, 4);
    return { args: [arg('inFeatures', S.int(1), i), arg('outFeatures', S.int(1), o), arg('args', S.opts({ bias: S.bool({ optional: true }), device: S.device({ optional: true }) }), g.chance(0.5) ? undefined : { bias: g.chance(0.5) }), arg('x', S.tensor(), h.t([g.int(1, 3), i]))],
      call: ([a, b, o2, x]) => c.track(new c.L.Linear(a, b, o2)).forward(x) };
  } },
  { name: 'Flatten + forward', weight: 2, make(g, c, h) {
    return { args: [arg('startDim', S.int(-4, 3, { optional: true }), g.pick([undefined, 1, 0])), arg('endDim', S.int(-4, 3, { optional: true }), g.pick([undefined, -1])), arg('x', S.tensor(), h.image())],
      call: ([s, e, x]) => new c.L.Flatten(s, e).forward(x) };
  } },
  { name: 'ReLU + forward', weight: 1, make(g, c, h) { return { args: [arg('x', S.tensor(), h.t(h.shape()))], call: ([x]) => new c.L.ReLU().forward(x) }; } },
  { name: 'Sequential + forward', weight: 3, make(g, c, h) {
    const layers = [new c.L.Conv2d(1, 2, 3, { padding: 1 }), new c.L.ReLU(), new c.L.Flatten()];
    layers.forEach((m) => c.track(m));
    return { args: [arg('layers[0]', S.module(), layers[0]), arg('layers[1]', S.module(), layers[1]), arg('layers[2]', S.module(), layers[2]), arg('x', S.tensor(), h.image(1, 1, 4))],
      call: ([a, b, d, x]) => c.track(new c.L.Sequential(a, b, d)).forward(x) };
  } },
  { name: 'Sequential#at', weight: 1, make(g, c, h) {
    // like Array#at: no oracle for the index
    return { args: [arg('index', S.any({ optional: true, nullable: true }), g.int(-3, 2))], call: ([i]) => c.track(new c.L.Sequential(new c.L.ReLU(), new c.L.Flatten(), new c.L.ReLU())).at(i) };
  } },
  { name: 'ResidualBlock + forward', weight: 3, make(g, c, h) {
    const cin = g.int(1, 3), use = g.chance(0.5);
    const cout = use ? g.int(1, 3) : cin;
    return { args: [arg('inputChannels', S.int(1), cin), arg('numChannels', S.int(1), cout), arg('args', S.opts({ use1x1conv: S.bool({ optional: true }), strides: S.int(1, undefined, { optional: true }), device: S.device({ optional: true }) }), { use1x1conv: use, strides: use ? g.int(1, 2) : 1 }), arg('x', S.tensor(), h.image(2, cin, 4))],
      call: ([a, b, o, x]) => c.track(new c.L.ResidualBlock(a, b, o)).forward(x) };
  } },
  { name: 'resnet18 + forward', weight: 0.4, make(g, c, h) {
    const inC = g.int(1, 2);
    return { args: [arg('args', S.opts({ numClasses: S.int(1, undefined, { optional: true }), inChannels: S.int(1, undefined, { optional: true }), device: S.device({ optional: true }) }), { numClasses: g.int(2, 4), inChannels: inC }), arg('x', S.tensor(), h.t([2, inC, 16, 16]))],
      call: ([o, x]) => c.track(c.L.resnet18(o)).forward(x) };
  } },
  { name: 'Module#to', weight: 2, make(g, c, h) {
    const m = h.conv();
    return { args: [arg('this', S.module({ self: true }), m), arg('target', S.any({ custom: 'moduleTo', optional: true }), g.pick(['cpu', { device: 'cpu' }, { dtype: 'float32' }, { dtype: 'bfloat16' }, { memoryFormat: 'channelsLast' }]))], call: ([mm, t]) => mm.to(t) };
  } },
  { name: 'Module#loadStateDict', weight: 3, make(g, c, h) {
    const src = h.conv(2, 2, 3), dst = h.conv(2, 2, 3);
    const sd = src.stateDict();
    const key = g.pick(Object.keys(sd));
    return { what: key, args: [arg('stateDict', S.any({ custom: 'stateDict' }), sd), arg(`stateDict[${JSON.stringify(key)}]`, S.tensor(), sd[key]), arg('options', S.opts({ strict: S.bool({ optional: true }) }), g.chance(0.5) ? undefined : { strict: g.chance(0.5) })],
      call: ([s, v, o]) => { if (s && typeof s === 'object' && !(s instanceof Map)) { try { s[key] = v; } catch (e) { if (!(e instanceof require('./pool.cjs').FuzzTrap)) throw e; } } return dst.loadStateDict(s, o); } };
  } },
  ...['stateDict', 'parameters', 'namedParameters', 'buffers', 'train', 'eval', 'zeroGrad', 'numParameters', 'toString'].map((m) => ({ name: `Module#${m}`, weight: 0.5, make(g, c, h) {
    const one = m === 'train' ? S.bool({ optional: true }) : m === 'namedParameters' ? S.any({ optional: true, custom: 'string' }) : null;
    return { args: [arg('this', S.module({ self: true }), h.conv()), ...(one ? [arg(m === 'train' ? 'mode' : 'prefix', one, m === 'train' ? g.chance(0.5) : 'p')] : [])], call: ([mm, a]) => mm[m](a) };
  } })),
  // --- optim
  { name: 'SGD + step', weight: 4, make(g, c, h) {
    const m = h.conv(1, 1, 1);
    h.grads(m.parameters());
    return { args: [arg('params', S.any({ custom: 'params' }), m.parameters()), arg('options', S.opts({ lr: S.num({ min: 0, finite: true }), momentum: S.num({ optional: true, min: 0, finite: true }), dampening: S.num({ optional: true, finite: true }), weightDecay: S.num({ optional: true, min: 0, finite: true }), nesterov: S.bool({ optional: true }), maximize: S.bool({ optional: true }) }, { optional: false }), { lr: 0.1, momentum: g.pick([0, 0.9]), weightDecay: g.pick([0, 1e-4]), nesterov: false, maximize: g.chance(0.2) })],
      call: ([p, o]) => { const opt = new c.L.SGD(p, o); opt.step(); opt.step(); opt.zeroGrad(); return c.track(opt); } };
  } },
  { name: 'StepLR', weight: 2, make(g, c, h) {
    const opt = c.track(new c.L.SGD(h.conv(1, 1, 1).parameters(), { lr: 0.1 }));
    return { args: [arg('optimizer', S.any({ custom: 'optimizer' }), opt), arg('stepSize', S.int(1), g.int(1, 3)), arg('gamma', S.num({ optional: true, min: 0 }), 0.5)],
      call: ([o, s, gm]) => { const sch = new c.L.StepLR(o, s, gm); sch.step(); sch.step(); return sch.lr; } };
  } },
  { name: 'LambdaLR', weight: 2, make(g, c, h) {
    const opt = c.track(new c.L.SGD(h.conv(1, 1, 1).parameters(), { lr: 0.1 }));
    return { args: [arg('optimizer', S.any({ custom: 'optimizer' }), opt), arg('lambda', S.fn(), (e) => 0.9 ** e)],
      call: ([o, f]) => { const sch = new c.L.LambdaLR(o, f); sch.step(); sch.step(); return { lr: sch.lr, optLr: o.lr }; } };
  } },
  { name: 'CosineAnnealingLR', weight: 2, make(g, c, h) {
    const opt = c.track(new c.L.SGD(h.conv(1, 1, 1).parameters(), { lr: 0.1 }));
    return { args: [arg('optimizer', S.any({ custom: 'optimizer' }), opt), arg('tMax', S.int(1), g.int(1, 5)), arg('etaMin', S.num({ optional: true, finite: true, min: 0 }), 0)],
      call: ([o, t, e]) => { const sch = new c.L.CosineAnnealingLR(o, t, e); sch.step(); sch.step(); return { lr: sch.lr, optLr: o.lr }; } };
  } },
  // --- amp, grad mode
  { name: 'autocast', weight: 2, make(g, c, h) {
    const lin = c.track(new c.L.Linear(2, 2));
    const x = h.t([1, 2]);
    return { args: [arg('options', S.any({ custom: 'autocastOptions', optional: true }), g.pick(['bfloat16', 'float16', { dtype: 'bfloat16' }, { enabled: false }])), arg('fn', S.fn(), () => lin.forward(x))],
      call: ([o, f]) => c.L.autocast(o, f) };
  } },
  { name: 'GradScaler', weight: 3, make(g, c, h) {
    const lin = c.track(new c.L.Linear(2, 1));
    const opt = c.track(new c.L.SGD(lin.parameters(), { lr: 0.1 }));
    const loss = c.track(c.track(lin.forward(h.t([1, 2]))).sum());
    return { args: [arg('options', S.opts({ initScale: S.num({ optional: true, min: 0, exclusiveMin: true, finite: true }), growthFactor: S.num({ optional: true, min: 1, finite: true }), backoffFactor: S.num({ optional: true, min: 0, max: 1, exclusiveMin: true }), growthInterval: S.int(1, undefined, { optional: true }), enabled: S.bool({ optional: true }) }), g.chance(0.3) ? undefined : { initScale: 2 ** g.int(0, 16), growthInterval: g.int(1, 3) }),
      arg('loss', S.tensor(), loss), arg('optimizer', S.any({ custom: 'optimizer' }), opt)],
      call: ([o, l, op]) => { const s = new c.L.GradScaler(o); const sl = c.track(s.scale(l)); sl.backward(); const stepped = s.step(op); s.update(); return { stepped, scale: s.getScale() }; } };
  } },
  { name: 'setGradEnabled', weight: 1, make(g, c) { return { args: [arg('enabled', S.bool(), g.chance(0.5))], call: ([e]) => c.L.setGradEnabled(e) }; } },
  { name: 'noGrad', weight: 1, make(g, c, h) {
    const x = h.t([2], { requiresGrad: true });
    return { args: [arg('fn', S.fn(), () => x.relu())], call: ([f]) => c.L.noGrad(f) };
  } },
  { name: 'manualSeed', weight: 1, make(g, c) { return { args: [arg('seed', S.int(0, 2 ** 64), g.int(0, 1000))], call: ([s]) => c.L.manualSeed(s) }; } },
  { name: 'setNumThreads', weight: 1, make(g, c) { return { args: [arg('threads', S.int(1, 1024), g.int(1, 2))], call: ([n]) => c.L.setNumThreads(n) }; } },
  { name: 'setDefaultDevice', weight: 1, make(g, c) { return { args: [arg('device', S.device({ nullable: true }), g.pick(['cpu', null]))], call: ([d]) => c.L.setDefaultDevice(d) }; } },
  ...['setBenchmark', 'setAllowTF32', 'setDeterministic'].map((m) => ({ name: `cudnn.${m}`, weight: 0.5, make(g, c) { return { args: [arg('enabled', S.bool(), g.chance(0.5))], call: ([e]) => c.L.cudnn[m](e) }; } })),
  // --- data
  { name: 'DataLoader', weight: 3, make(g, c, h) {
    const n = g.int(1, 5), hw = g.int(2, 5);
    const ds = { images: Uint8Array.from({ length: n * hw * hw }, () => g.int(0, 255)), labels: Uint8Array.from({ length: n }, () => g.int(0, 9)), n, height: hw, width: hw };
    return { args: [arg('dataset', S.any({ custom: 'dataset' }), ds), arg('dataset.n', S.int(0), n), arg('options', S.opts({ batchSize: S.int(1), shuffle: S.bool({ optional: true }), seed: S.int(0, undefined, { optional: true }), dropLast: S.bool({ optional: true }), device: S.device({ optional: true }), resize: S.pair(1, { optional: true }), mean: S.num({ optional: true, finite: true }), std: S.num({ optional: true, finite: true, min: 0, exclusiveMin: true }) }, { optional: false }), { batchSize: g.int(1, 3), shuffle: g.chance(0.5), seed: g.int(0, 9), dropLast: g.chance(0.3), ...(g.chance(0.3) ? { resize: g.int(1, 4) } : {}) })],
      call: ([d, nn, o]) => {
        if (d && typeof d === 'object' && d === ds) d.n = nn;
        const dl = new c.L.DataLoader(d, o);
        let count = 0;
        for (const b of dl) { count += b.size; b.dispose(); }
        return { batches: dl.length, count };
      } };
  } },
  { name: 'DataLoader#gather/order', weight: 1, make(g, c) {
    const ds = { images: new Uint8Array(3 * 4), labels: Uint8Array.of(0, 1, 2), n: 3, height: 2, width: 2 };
    return { args: [arg('indices', S.any({ custom: 'indices' }), [0, 2]), arg('epoch', S.int(0), g.int(0, 3))],
      call: ([i, e]) => { const dl = new c.L.DataLoader(ds, { batchSize: 2 }); return [dl.gather(i).labels.length, dl.order(e).length]; } };
  } },
  // --- checkpoints
  { name: 'save', weight: 2, make(g, c, h) {
    return { args: [arg('model', S.module({ duck: true }), h.conv(1, 2, 3)), arg('path', S.path({ write: true }), h.tmp(`save-${g.int(0, 1e6)}.safetensors`)), arg('options', S.opts({ metadata: S.any({ optional: true, custom: 'metadata' }) }), g.chance(0.5) ? undefined : { metadata: { epoch: '1' } })],
      call: ([m, p, o]) => c.L.save(m, p, o) };
  } },
  { name: 'load', weight: 3, make(g, c, h) {
    const src = h.conv(1, 2, 3);
    const file = h.tmp(`load-${g.int(0, 1e6)}.safetensors`);
    c.L.save(src, file);
    const same = g.chance(0.7);
    const dst = same ? h.conv(1, 2, 3) : h.conv(2, 2, 3);
    return { expectCheckpointError: !same, args: [arg('model', S.module({ duck: true }), dst), arg('path', S.path(), file), arg('options', S.opts({ strict: S.bool({ optional: true }) }), g.chance(0.5) ? undefined : { strict: true })],
      call: ([m, p, o]) => c.L.load(m, p, o) };
  } },
  { name: 'load(corrupted file)', weight: 3, make(g, c, h) {
    const src = h.conv(1, 2, 3);
    const file = h.tmp(`bad-${g.int(0, 1e6)}.safetensors`);
    c.L.save(src, file);
    const bytes = fs.readFileSync(file);
    const how = g.pick(['flip bytes in header', 'truncate', 'huge header length', 'flip bytes in data', 'empty file', 'header not JSON', 'bad offsets']);
    let out = Buffer.from(bytes);
    const hlen = Number(bytes.readBigUInt64LE(0));
    if (how === 'flip bytes in header') { for (let i = 0; i < g.int(1, 4); i++) out[8 + g.int(0, hlen - 1)] = g.int(0, 255); }
    if (how === 'truncate') out = out.subarray(0, g.int(0, out.length - 1));
    if (how === 'huge header length') out.writeBigUInt64LE(BigInt(g.pick([2 ** 32, 2 ** 53, hlen + 1, 0])), 0);
    if (how === 'flip bytes in data') { out[8 + hlen + g.int(0, out.length - 9 - hlen)] ^= 0xff; }
    if (how === 'empty file') out = Buffer.alloc(0);
    if (how === 'header not JSON') out.write('{{', 8);
    if (how === 'bad offsets') {
      const hdr = out.subarray(8, 8 + hlen).toString();
      const s = hdr.replace(/"data_offsets":\[(\d+),(\d+)\]/, (_m, a, b) => `"data_offsets":[${b},${g.pick([a, '1e20', '-1', String(2 ** 53), '0.5'])}]`);
      const hb = Buffer.from(s);
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(hb.length));
      out = Buffer.concat([len, hb, out.subarray(8 + hlen)]);
    }
    fs.writeFileSync(file, out);
    const dst = h.conv(1, 2, 3);
    return { what: how, checkpoint: how !== 'flip bytes in data', modelUnchanged: dst, args: [arg('model', S.module(), dst), arg('path', S.path(), file)], call: ([m, p]) => c.L.load(m, p), noMutate: true };
  } },
];

module.exports = { TARGETS, S, DTYPES, helpers };
