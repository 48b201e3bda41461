'use strict';
// Builds and runs one fuzz case, deterministically from (seed, id): picks a target, builds a
// mostly-valid call, mutates one argument with a value from the bad-value pool, runs it and
// classifies the outcome. Used by the child (child.cjs) and by the reproducer (repro.cjs).
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const pool = require('./pool.cjs');
const { TARGETS, DTYPES, helpers } = require('./targets.cjs');

// --- a small seeded generator (mulberry32 over a hash of seed and case id)
function hash32(seed, id) {
  let h = 2166136261;
  for (const v of [seed >>> 0, id >>> 0, Math.floor(id / 2 ** 32), 0x9e3779b9]) {
    h = Math.imul(h ^ v, 16777619);
    h ^= h >>> 13;
    h = Math.imul(h, 0x5bd1e995);
    h ^= h >>> 15;
  }
  return h >>> 0;
}
class Gen {
  constructor(seed, id) { this.s = hash32(seed, id); }
  next() {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(a, b) { return a + Math.floor(this.next() * (b - a + 1)); }
  chance(p) { return this.next() < p; }
  pick(arr) { return arr[Math.floor(this.next() * arr.length)]; }
  weighted(items) {
    const total = items.reduce((s, x) => s + x.weight, 0);
    let r = this.next() * total;
    for (const x of items) { r -= x.weight; if (r < 0) return x; }
    return items[items.length - 1];
  }
}

// --- errors
/** Messages of errors the engine (V8) or node-addon-api raise: no argument check ran. */
const ENGINE_MESSAGES = [
  /Cannot read propert(y|ies) of/, /Cannot set propert(y|ies) of/, /is not a function/, /is not iterable/, /Maximum call stack size exceeded/,
  /Invalid array length/, /Invalid typed array length/, /is not a constructor/, /Cannot convert .* to/, /Cannot mix BigInt/, /Invalid string length/,
  /Array buffer allocation failed/, /Cannot create property/, /Cannot assign to read only/, /object is not extensible/, /Cannot destructure/,
  /Cannot use 'in' operator/, /Converting circular structure/, /Do not know how to serialize a BigInt/, /Invalid count value/,
  /Right-hand side of 'instanceof'/, /Cannot redefine property/, /private member/, /Private field/, /Cannot convert a (Symbol|BigInt) value/,
  /Start offset .* is outside the bounds/, /offset is out of bounds/, /Invalid DataView/, /Invalid atomic access/, /Reduce of empty array/,
  /is not defined$/, /Class constructor .* cannot be invoked/, /^(A|An) \w+ (was expected|expected)\.?$/, /^Invalid argument\.?$/,
  /The "\w+" argument must be/, /Cannot access '.*' before initialization/, /Spread syntax requires/, /Function\.prototype\.apply/,
  /BigInt: not a safe integer|The number .* cannot be converted to a BigInt/, /is not a valid (array|typed array) length/, /out of memory/i,
];

function classify(e, L) {
  if (e instanceof pool.FuzzTrap) return { cls: 'FuzzTrap (propagated)', good: true };
  if (!(e instanceof Error)) return { cls: `non-Error thrown (${typeof e})`, msg: safeString(e), good: false };
  const cls = safeString(e.constructor && e.constructor.name) || safeString(e.name);
  const msg = safeString(e.message);
  if (e instanceof L.BackendError || e instanceof L.CheckpointError) return { cls, msg, good: true };
  if (e instanceof TypeError || e instanceof RangeError) {
    if (typeof e.code === 'string' && e.code.startsWith('ERR_')) return { cls: `${cls} (Node.js ${e.code})`, msg, good: false };
    const engine = ENGINE_MESSAGES.find((re) => re.test(msg));
    if (engine) return { cls: `${cls} (engine: ${engine.source})`, msg, good: false };
    return { cls, msg, good: true };
  }
  return { cls, msg, good: false };
}

function safeString(v) {
  try { return typeof v === 'string' ? v.slice(0, 400) : String(v).slice(0, 400); } catch { return '<unprintable>'; }
}

// --- describing values for case descriptions
function fmt(v, L, depth = 0) {
  try {
    if (v === undefined) return 'undefined';
    if (v === null) return 'null';
    if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
    if (typeof v === 'string') return JSON.stringify(v);
    if (typeof v === 'bigint') return `${v}n`;
    if (typeof v === 'boolean') return String(v);
    if (typeof v === 'function') return 'fn';
    if (typeof v === 'symbol') return 'Symbol()';
    if (v instanceof L.Tensor) return v.isDisposed ? 'Tensor<disposed>' : `Tensor<${v.dtype} [${v.shape.join(', ')}]${v.requiresGrad ? ' grad' : ''}>`;
    if (v instanceof L.Module) return `${v.constructor.name}(...)`;
    if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${v.length})`;
    if (depth > 2) return '…';
    if (Array.isArray(v)) return `[${v.slice(0, 6).map((x) => fmt(x, L, depth + 1)).join(', ')}${v.length > 6 ? ', …' : ''}]`;
    if (typeof v === 'object') {
      const ks = Object.keys(v);
      return `{ ${ks.slice(0, 8).map((k) => `${k}: ${fmt(v[k], L, depth + 1)}`).join(', ')}${ks.length > 8 ? ', …' : ''} }`.replace('{  }', '{}');
    }
  } catch { /* fallthrough */ }
  return '<?>';
}

// --- which bad values fit a slot, and which of them the library must reject
const PAIRS = [['[1]', () => [1]], ['[1, 2, 3]', () => [1, 2, 3]], ['[NaN, 1]', () => [NaN, 1]], ['[1, -1]', () => [1, -1]], ['[2 ** 31, 1]', () => [2 ** 31, 1]], ['[1.5, 1]', () => [1.5, 1]], ["['1', '1']", () => ['1', '1']], ['[ , 1]', () => [, 1]]]; // eslint-disable-line no-sparse-arrays
// Paths for save() and load(). Paths outside the case's directory are only read, never written:
// save() renames its temporary file onto the target, which as root replaces even /dev/null with
// a regular file (it did, in an early run of this fuzzer).
const PATHS_READ_ONLY = [["'/'", () => '/'], ["os.tmpdir()", () => os.tmpdir()], ["'/proc/self/mem'", () => '/proc/self/mem'], ["'/dev/null'", () => '/dev/null']];
const PATHS = [
  ["'/nonexistent-dir/x.safetensors'", () => '/nonexistent-dir/x.safetensors'], ["'a\\0b'", () => 'a\0b'], ["'x'.repeat(5000)", () => 'x'.repeat(5000)],
  ["new URL('file://<case dir>/x')", (c) => new URL(`file://${c.tmpdir}/x`)], ["Buffer.from('<case dir>/x')", (c) => Buffer.from(`${c.tmpdir}/x`)],
  ["'<case dir>' (a directory)", (c) => c.tmpdir], ["'<case dir>/sub/' (trailing slash)", (c) => `${c.tmpdir}/sub/`], ["'.'", () => '.'], ["'..'", () => '..'],
];
function modulePool() {
  return [
    ['{ forward(x) { return x; } } (a module look-alike)', () => ({ forward: (x) => x, stateDict: () => ({}), loadStateDict: () => ({}) })],
    ['Object.create(Module.prototype)', (c) => Object.create(c.L.Module.prototype)],
    ['(a disposed Conv2d(1, 2, 3))', (c) => { const m = new c.L.Conv2d(1, 2, 3); m.dispose(); return m; }],
    ['randn([2])', (c) => c.track(c.L.randn([2]))],
    ['new ReLU()', (c) => new c.L.ReLU()],
    ['new Linear(3, 3)', (c) => c.track(new c.L.Linear(3, 3))],
  ];
}
function customPool(custom) {
  switch (custom) {
    case 'toTarget': case 'moduleTo': return [...pool.DTYPE_BAD, ...pool.DEVICE_BAD, ["{ memoryFormat: 'nhwc' }", () => ({ memoryFormat: 'nhwc' })], ["{ dtype: 'float64', memoryFormat: 'channelsLast', extra: 1 }", () => ({ dtype: 'float64', memoryFormat: 'channelsLast', extra: 1 })], ["Object.create({ dtype: 'float64' })", () => Object.create({ dtype: 'float64' })], ["{ dtype: 'int32' }", () => ({ dtype: 'int32' })], ["'uint8'", () => 'uint8']];
    case 'autocastOptions': return [["'float32'", () => 'float32'], ["'int8'", () => 'int8'], ["{ dtype: 'float32' }", () => ({ dtype: 'float32' })], ["{ enabled: 'false' }", () => ({ enabled: 'false' })], ["{ enabld: false }", () => ({ enabld: false })]];
    case 'optimizer': return [['{ lr: 0.1, step() {}, zeroGrad() {} } (look-alike)', () => ({ lr: 0.1, initialLr: 0.1, step() {}, zeroGrad() {} })], ['{ lr: NaN, params: [] }', () => ({ lr: NaN, initialLr: NaN, params: [], step() {}, zeroGrad() {} })], ['(a disposed SGD)', (c) => { const o = new c.L.SGD([c.track(c.L.randn([1], { requiresGrad: true }))], { lr: 0.1 }); o.dispose(); return o; }]];
    case 'params': return [['[randn([2])] (no requiresGrad)', (c) => [c.track(c.L.randn([2]))]], ['[(a disposed tensor)]', (c) => { const t = c.L.randn([2], { requiresGrad: true }); t.dispose(); return [t]; }], ['[1, 2]', () => [1, 2]], ['new Set()', () => new Set()], ["'ab'", () => 'ab'], ['(function*() { throw })()', () => (function* () { throw new pool.FuzzTrap('iterator'); })()], ['[randn([1], { requiresGrad: true }) x2 (same tensor twice)]', (c) => { const t = c.track(c.L.randn([1], { requiresGrad: true })); return [t, t]; }], ['[zeros([2], { dtype: "int32" })]', (c) => [c.track(c.L.zeros([2], { dtype: 'int32' }))]]];
    case 'stateDict': return [['{}', () => ({})], ['new Map()', () => new Map()], ["{ weight: 'x' }", () => ({ weight: 'x' })], ['{ "__proto__": ... } (JSON)', () => JSON.parse('{"__proto__": {"weight": 1}}')], ['Object.create({ weight: randn([2, 2, 3, 3]) })', (c) => Object.create({ weight: c.track(c.L.randn([2, 2, 3, 3])) })]];
    case 'dataset': return [['{ images: new Uint8Array(0), labels: new Uint8Array(0), n: 0, height: 2, width: 2 }', () => ({ images: new Uint8Array(0), labels: new Uint8Array(0), n: 0, height: 2, width: 2 })], ['{ images: new Uint8Array(4), labels: Uint8Array.of(0), n: 1, height: 1e9, width: 1e9 }', () => ({ images: new Uint8Array(4), labels: Uint8Array.of(0), n: 1, height: 1e9, width: 1e9 })], ['{ images: new Float32Array(4), labels: [0], n: 1, height: 2, width: 2 }', () => ({ images: new Float32Array(4), labels: [0], n: 1, height: 2, width: 2 })], ['{ images: new Uint8Array(4), labels: Uint8Array.of(0), n: 1, height: -2, width: -2 }', () => ({ images: new Uint8Array(4), labels: Uint8Array.of(0), n: 1, height: -2, width: -2 })], ['{ n: 1 }', () => ({ n: 1 })]];
    case 'indices': return [['[0, 99]', () => [0, 99]], ['[-1]', () => [-1]], ['[0.5]', () => [0.5]], ['[NaN]', () => [NaN]], ['new Array(2 ** 32 - 1)', () => new Array(2 ** 32 - 1)], ["{ length: -1 }", () => ({ length: -1 })], ['{ length: 2 ** 53 }', () => ({ length: 2 ** 53 })], ['Uint32Array.of(0, 1)', () => Uint32Array.of(0, 1)]];
    case 'metadata': return [['{ epoch: 1 }', () => ({ epoch: 1 })], ["{ __metadata__: 'x' }", () => ({ __metadata__: 'x' })], ["{ ['k'.repeat(1e5)]: 'v' }", () => ({ ['k'.repeat(1e5)]: 'v' })], ["{ e: '\\ud800' } (lone surrogate)", () => ({ e: '\ud800' })], ['{ n: null }', () => ({ n: null })]];
    default: return [];
  }
}
function poolFor(slot, c) {
  switch (slot.kind) {
    case 'shape': return [...pool.SHAPES, ...pool.NUMBERS.slice(0, 6)];
    case 'int': case 'number': return pool.NUMBERS;
    case 'pair': return [...pool.NUMBERS, ...PAIRS];
    case 'bool': return [...pool.TYPES.filter(([l]) => /false|Boolean|null|undefined|^""|^0|1n/.test(l)), ['0', () => 0], ['1', () => 1], ["'true'", () => 'true']];
    case 'tensor': return pool.tensorPool();
    // a method called on a non-tensor is not a call a user can make: only real, bad tensors
    case 'self': return pool.tensorPool().filter(([l]) => /disposed|dtype|tensor\(|randn|zeros/.test(l) && !/Object\.create|look-alike/.test(l));
    case 'options': return pool.optionsPool(Object.keys(slot.keys));
    case 'dtype': return pool.DTYPE_BAD;
    case 'device': return pool.DEVICE_BAD;
    case 'fn': return pool.FUNCTIONS;
    case 'path': return slot.write ? PATHS : [...PATHS, ...PATHS_READ_ONLY];
    case 'data': return [...pool.SHAPES, ...pool.NUMBERS.slice(0, 4)];
    case 'module': return slot.self ? modulePool().filter(([l]) => /disposed/.test(l)) : modulePool();
    case 'any': return customPool(slot.custom);
    default: return [];
  }
}
const GENERIC = [...pool.TYPES, ...pool.NUMBERS];

function isDenseArray(v) {
  if (!Array.isArray(v)) return false;
  if (v.length > 1e6) return false;
  for (let i = 0; i < v.length; i++) if (!(i in v)) return false;
  return true;
}
function isPlain(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v) && !(v instanceof Boolean) && !(v instanceof Number) && !(v instanceof String);
}
/** Objects that are no options object but that a lenient check may take for an empty one. */
function isExotic(v) {
  return v instanceof Map || v instanceof Set || v instanceof Date || v instanceof RegExp || v instanceof Promise || v instanceof ArrayBuffer || v instanceof URL || v instanceof Error;
}
function isProxyTrap(label) { return /throwingHandler|throw/.test(label); }

/** true: the library must reject this value for this slot; false: valid; null: unknown. */
function mustReject(slot, v, c, label = '') {
  try { return mustReject1(slot, v, c, label); } catch { return null; }
}
function mustReject1(slot, v, c, label) {
  const L = c.L;
  if (isProxyTrap(label)) return null; // the library may not read it at all, or propagate the trap
  if (v === undefined) return !slot.optional;
  if (v === null) return !slot.nullable;
  switch (slot.kind) {
    case 'shape': {
      // an array, or a typed array of numbers (main accepts Int32Array.of(2, 3) as a shape)
      if (ArrayBuffer.isView(v) && !(v instanceof DataView) && !(v instanceof BigInt64Array) && !(v instanceof BigUint64Array)) v = Array.from(v);
      // tensor(data, options): there a plain object in the shape's place is the options
      if (slot.orOptions && isPlain(v)) return null;
      if (!isDenseArray(v)) return true;
      if (v.length > 16) return true;
      let minus = 0;
      for (const d of v) {
        if (slot.allowMinus1 && d === -1) { minus++; continue; }
        if (typeof d !== 'number' || !Number.isInteger(d) || d < 0) return true;
      }
      if (minus > 1) return true;
      const numel = v.reduce((a, d) => a * Math.max(d, 1), 1);
      if (numel > 2 ** 33 && !v.includes(0)) return true; // cannot fit in 3 GB of address space
      return null;
    }
    case 'int': return typeof v !== 'number' || !Number.isInteger(v) || v < slot.min || v > slot.max;
    case 'number':
      if (typeof v !== 'number') return true;
      if (Number.isNaN(v)) return slot.allowNaN ? false : true;
      if (!Number.isFinite(v) && slot.finite) return true;
      if (slot.min !== undefined && (v < slot.min || (slot.exclusiveMin && v === slot.min))) return true;
      if (slot.max !== undefined && v > slot.max) return true;
      return null;
    case 'bool': return typeof v !== 'boolean';
    case 'pair': {
      const okInt = (x) => typeof x === 'number' && Number.isInteger(x) && x >= slot.min && x < 2 ** 31;
      if (typeof v === 'number') return !Number.isInteger(v) || v < slot.min ? true : null;
      if (isDenseArray(v) && v.length === 2) return !(okInt(v[0]) && okInt(v[1])) ? true : null;
      return true;
    }
    case 'tensor': case 'self':
      if (!(v instanceof L.Tensor)) return true;
      try { if (v.isDisposed) return !slot.allowDisposed; void v.shape; } catch { return true; }
      return null;
    case 'options': {
      if (!isPlain(v)) return true;
      if (isExotic(v)) return null;
      for (const k of Object.keys(v)) {
        if (!Object.prototype.hasOwnProperty.call(slot.keys, k)) return true;
        const sub = v[k] === null ? null : mustReject(slot.keys[k], v[k], c);
        if (sub) return true;
      }
      return null;
    }
    case 'dtype': return !DTYPES.includes(v);
    case 'device': return !(v === 'cpu' || ((v === 'cuda' || v === 'cuda:0') && L.cuda.isAvailable()));
    case 'fn': return typeof v !== 'function';
    case 'path': return typeof v !== 'string' || v === '' || v.includes('\0');
    case 'data': {
      if (typeof v === 'number') return false;
      if (ArrayBuffer.isView(v)) return !(v instanceof Float32Array || v instanceof Float64Array || v instanceof Int32Array || v instanceof BigInt64Array || v instanceof Uint8Array);
      if (!Array.isArray(v)) return true;
      let depth = 0;
      for (let x = v; Array.isArray(x); x = x[0]) { if (++depth > 16) return true; if (x.length === 0) break; }
      const walk = (x, d) => {
        if (d > 17) return true;
        if (Array.isArray(x)) { if (!isDenseArray(x)) return true; return x.some((y) => walk(y, d + 1)); }
        return !(typeof x === 'number' || typeof x === 'boolean');
      };
      try { return walk(v, 0) ? true : null; } catch { return null; }
    }
    case 'module':
      // save/load take any object with stateDict/loadStateDict (StateDictModule)
      if (slot.duck && v !== null && typeof v === 'object' && typeof v.stateDict === 'function') return null;
      return !(v instanceof L.Module) ? true : null;
    case 'any':
      switch (slot.custom) {
        case 'toTarget': case 'moduleTo':
          if (typeof v === 'string') return !(DTYPES.includes(v) || v === 'cpu' || (/^cuda(:0)?$/.test(v) && L.cuda.isAvailable())) || (slot.custom === 'moduleTo' && DTYPES.includes(v) ? null : false);
          if (!isPlain(v)) return true;
          for (const k of Object.keys(v)) if (!['device', 'dtype', 'memoryFormat'].includes(k)) return true;
          if (v.dtype !== undefined && !DTYPES.includes(v.dtype)) return true;
          if (v.memoryFormat !== undefined && !['contiguous', 'channelsLast'].includes(v.memoryFormat)) return true;
          if (v.device !== undefined && mustReject({ kind: 'device' }, v.device, c)) return true;
          return null;
        case 'autocastOptions':
          if (typeof v === 'string') return !['bfloat16', 'float16'].includes(v);
          if (!isPlain(v)) return true;
          for (const k of Object.keys(v)) if (!['enabled', 'dtype'].includes(k)) return true;
          if (v.enabled !== undefined && typeof v.enabled !== 'boolean') return true;
          if (v.dtype !== undefined && !['bfloat16', 'float16'].includes(v.dtype)) return true;
          return null;
        case 'optimizer': return v === null || typeof v !== 'object' ? true : null; // Optimizer is an interface: look-alikes are fine
        case 'params':
          if (v === null || typeof v !== 'object' || typeof v[Symbol.iterator] !== 'function') return true;
          if (Array.isArray(v) && v.some((t) => !(t instanceof L.Tensor) || t.isDisposed)) return true;
          return null;
        case 'stateDict': return !isPlain(v) ? true : null;
        case 'dataset': return !isPlain(v) || isExotic(v) ? true : null;
        case 'indices': return v === null || typeof v !== 'object' ? true : null;
        case 'metadata':
          if (!isPlain(v)) return true;
          return Object.values(v).some((x) => typeof x !== 'string') ? true : null;
        case 'string': return typeof v !== 'string';
        default: return null;
      }
    default: return null;
  }
}

/** Picks the mutation for a case and applies it to `args` (in place). */
function mutate(g, args, c, target) {
  if (target.noMutate || target.disposed || g.chance(0.1)) return { mode: 'valid', arg: null, label: null, reject: false };
  const candidates = args.map((a, i) => i);
  const i = g.pick(candidates);
  const a = args[i];
  const deepable = (a.slot.kind === 'options' && isPlain(a.value)) || (['shape', 'pair', 'data'].includes(a.slot.kind) && Array.isArray(a.value) && a.value.length > 0) || (a.slot.custom === 'params' && Array.isArray(a.value) && a.value.length > 0);
  if (deepable && g.chance(0.35)) {
    if (a.slot.kind === 'options') {
      const keys = Object.keys(a.slot.keys);
      const r = g.next();
      if (r < 0.6 && keys.length) {
        const k = g.pick(keys);
        const sub = a.slot.keys[k];
        const p = poolFor(sub, c);
        const [label, make] = p.length && g.chance(0.8) ? g.pick(p) : g.pick(GENERIC);
        const v = make(c);
        a.value = { ...a.value, [k]: v };
        // null for an option may mean "not given" (PyTorch's None: maxPool2d's stride): no oracle
        return { mode: 'key', arg: `${a.name}.${k}`, label, reject: v === null ? null : mustReject(sub, v, c, label) };
      }
      if (r < 0.85) {
        const k = g.pick(['dtpye', 'requiresgrad', 'strides', 'Padding', 'momentun', 'lR', 'bias_', 'unknown', '__proto__x', 'constructor'].map((x) => (keys.includes(x) ? `${x}_` : x)));
        a.value = { ...a.value, [k]: g.pick([1, true, 'float64']) };
        return { mode: 'unknown key', arg: `${a.name}.${k}`, label: fmt(a.value[k], c.L), reject: true };
      }
      const inherited = Object.create(a.value);
      a.value = inherited;
      return { mode: 'inherited keys', arg: a.name, label: `Object.create(${fmt(Object.getPrototypeOf(inherited), c.L)})`, reject: null };
    }
    const j = g.int(0, a.value.length - 1);
    const [label, make] = g.pick(a.slot.kind === 'params' || a.slot.custom === 'params' ? [...pool.tensorPool(), ...pool.TYPES] : GENERIC);
    const v = make(c);
    const copy = a.value.slice();
    copy[j] = v;
    a.value = copy;
    const reject = a.slot.kind === 'any' ? mustReject(a.slot, copy, c) : mustReject(a.slot, copy, c, label);
    return { mode: 'element', arg: `${a.name}[${j}]`, label, reject };
  }
  const p = poolFor(a.slot, c);
  const [label, make] = p.length && (g.chance(0.75) || a.slot.kind === 'self' || a.slot.self) ? g.pick(p) : g.pick(GENERIC);
  const v = make(c);
  a.value = v;
  return { mode: 'replace', arg: a.name, label, reject: mustReject(a.slot, v, c, label) };
}

// --- the context of one case: tracked objects, temp dir, global state to restore
function makeContext(L, tmpdir) {
  const tracked = [];
  return {
    L,
    tmpdir,
    track(x) { tracked.push(x); return x; },
    cleanup() {
      for (const x of tracked.reverse()) {
        try { if (x && typeof x.dispose === 'function') x.dispose(); } catch { /* disposed twice, bad state: ignore */ }
      }
      tracked.length = 0;
    },
  };
}

function checkResult(r, L) {
  if (r instanceof L.Tensor) {
    const s = r.shape;
    if (!Array.isArray(s) || s.some((d) => !Number.isInteger(d) || d < 0)) return `result shape ${fmt(s, L)} is not an array of non-negative integers`;
    const n = s.reduce((a, b) => a * b, 1);
    if (r.numel !== n) return `result numel ${r.numel} != product of shape ${n}`;
    if (n <= 1e5) {
      const a = r.toArraySync();
      if (!a || a.length !== n) return `result toArraySync() gave ${a && a.length} values for shape [${s}]`;
    }
  }
  return null;
}

function snapshot(m) {
  const out = {};
  for (const [k, t] of Object.entries(m.stateDict())) out[k] = Array.from(t.toArraySync(), Number);
  return out;
}

/**
 * Builds case `id`: returns { rec, run } where rec describes it (target, mutated argument,
 * call text) and run() performs the call and fills in the outcome.
 */
function buildCase(L, seed, id, tmpdir) {
  const g = new Gen(seed, id);
  const target = g.weighted(TARGETS);
  const c = makeContext(L, tmpdir);
  const h = helpers(g, c);
  const rec = { id, target: target.name };
  let built;
  try {
    built = target.make(g, c, h);
  } catch (e) {
    c.cleanup();
    const k = classify(e, L);
    return { rec: { ...rec, mode: 'setup', desc: `${target.name} (setup)`, outcome: 'error', cls: k.cls, msg: k.msg, failure: `setup failed: ${k.cls}` }, run: null, c };
  }
  const { args } = built;
  let m;
  try {
    m = mutate(g, args, c, { ...target, ...built });
  } catch (e) {
    c.cleanup();
    const k = classify(e, L);
    return { rec: { ...rec, mode: 'setup', desc: `${target.name} (mutation setup)`, outcome: 'error', cls: k.cls, msg: k.msg, failure: `fuzzer setup failed: ${k.cls}: ${k.msg}` }, run: null, c };
  }
  rec.mode = m.mode;
  rec.arg = m.arg;
  rec.value = m.label;
  rec.what = built.what;
  const shown = args.map((a) => `${a.name}=${a.name === m.arg || (m.arg && m.arg.startsWith(a.name + '.')) || (m.arg && m.arg.startsWith(a.name + '[')) ? (m.mode === 'replace' ? m.label : fmt(a.value, L)) : fmt(a.value, L)}`);
  rec.desc = `${target.name}${built.what ? ` [${built.what}]` : ''}(${shown.join(', ')})${m.arg ? `  <- ${m.mode} ${m.arg} = ${m.label}` : ''}`;
  const run = async () => {
    const before = built.modelUnchanged ? snapshot(built.modelUnchanged) : null;
    const t0 = process.hrtime.bigint();
    try {
      let r = built.call(args.map((a) => a.value));
      if (r && typeof r.then === 'function') r = await r;
      rec.outcome = 'ok';
      const bad = checkResult(r, L);
      if (bad) rec.failure = `wrong result: ${bad}`;
      else if (target.disposed) rec.failure = 'use after dispose accepted (expected DisposedTensorError)';
      else if (built.expectCheckpointError) rec.failure = 'loading a checkpoint that does not fit the model was accepted (expected CheckpointError)';
      else if (built.checkpoint && !/^flip bytes/.test(built.what)) rec.failure = `a corrupted checkpoint (${built.what}) loaded without an error`;
      else if (m.reject === true) rec.failure = 'silently accepted an invalid argument';
      if (r instanceof L.Tensor || r instanceof L.Module) c.track(r);
    } catch (e) {
      const k = classify(e, L);
      rec.outcome = 'error';
      rec.cls = k.cls;
      rec.msg = k.msg;
      if (!k.good) rec.failure = 'untyped error';
      else if (target.disposed && !(e instanceof L.DisposedTensorError)) rec.failure = `use after dispose gave ${k.cls} (expected DisposedTensorError)`;
      else if ((built.checkpoint || built.expectCheckpointError) && m.mode === 'valid' && !(e instanceof L.CheckpointError)) rec.failure = `bad checkpoint gave ${k.cls} (expected CheckpointError)`;
      if (before) {
        try {
          const after = snapshot(built.modelUnchanged);
          if (JSON.stringify(after) !== JSON.stringify(before)) rec.failure = (rec.failure ? rec.failure + '; ' : '') + 'the model changed although load threw';
        } catch (e2) { rec.failure = (rec.failure ? rec.failure + '; ' : '') + `the model is unreadable after a failed load: ${safeString(e2 && e2.message)}`; }
      }
    } finally {
      rec.ms = Number(process.hrtime.bigint() - t0) / 1e6;
      c.cleanup();
    }
    // global state: a failed callback must not leave grad mode or autocast switched
    if (target.name !== 'setGradEnabled' && !L.isGradEnabled()) rec.failure = (rec.failure ? rec.failure + '; ' : '') + 'grad mode left disabled';
    if (L.isAutocastEnabled()) rec.failure = (rec.failure ? rec.failure + '; ' : '') + 'autocast left enabled';
    return rec;
  };
  return { rec, run, c };
}

/** Puts the global switches back after a case (setGradEnabled, setDefaultDevice, threads). */
function restoreGlobals(L, threads) {
  try { L.setGradEnabled(true); } catch { /* reported by the case */ }
  try { L.setDefaultDevice(null); } catch { /* idem */ }
  try { if (L.getNumThreads() !== threads) L.setNumThreads(threads); } catch { /* idem */ }
}

/** A temporary directory for a child's files, under the parent's (CRB_FUZZ_TMP) when given, so
 * that the parent removes it even when the child was killed. */
function makeTmpdir() {
  return fs.mkdtempSync(path.join(process.env.CRB_FUZZ_TMP || os.tmpdir(), 'crb-fuzz-'));
}

module.exports = { Gen, classify, buildCase, restoreGlobals, makeTmpdir, ENGINE_MESSAGES, TARGETS };
