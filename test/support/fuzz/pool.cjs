'use strict';
// The bad-value pool of the fuzzer: every entry is [label, make(ctx)] where `label` is a JS
// expression for reproducers and make() builds a fresh value in the child (tensors need the
// library, and disposed tensors or throwing getters must be new per case).

/** Thrown by the pool's booby traps (Proxy traps, getters, valueOf): propagating it is fine. */
class FuzzTrap extends Error {
  constructor(what) {
    super(`fuzz trap: ${what}`);
    this.name = 'FuzzTrap';
  }
}

const trapHandler = {
  get(_t, key) { throw new FuzzTrap(`get ${String(key)}`); },
  has(_t, key) { throw new FuzzTrap(`has ${String(key)}`); },
  ownKeys() { throw new FuzzTrap('ownKeys'); },
  getOwnPropertyDescriptor(_t, key) { throw new FuzzTrap(`getOwnPropertyDescriptor ${String(key)}`); },
  getPrototypeOf() { throw new FuzzTrap('getPrototypeOf'); },
};

function deepNested(levels) {
  let a = [1];
  for (let i = 0; i < levels; i++) a = [a];
  return a;
}
function cyclic() {
  const a = [1, 2];
  a.push(a);
  return a;
}
function throwingElement() {
  const a = [2, 2];
  Object.defineProperty(a, '0', { get() { throw new FuzzTrap('element getter'); }, enumerable: true });
  return a;
}
function lengthLies() {
  // An array-like whose length says 2 but that is not an array.
  return { length: 2, 0: 2, 1: 2 };
}

const TYPED = ['Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array'];

/** Values of the wrong type for almost any argument. */
const TYPES = [
  ['"abc"', () => 'abc'],
  ["'false'", () => 'false'],
  ['""', () => ''],
  ["'2'", () => '2'],
  ['null', () => null],
  ['undefined', () => undefined],
  ['true', () => true],
  ['false', () => false],
  ['{}', () => ({})],
  ['[]', () => []],
  ['Object.create(null)', () => Object.create(null)],
  ["Symbol('fuzz')", () => Symbol('fuzz')],
  ['1n', () => 1n],
  ['2n ** 64n', () => 2n ** 64n],
  ['() => {}', () => () => {}],
  ['new Boolean(false)', () => new Boolean(false)],
  ['new Number(2)', () => new Number(2)],
  ["new String('cpu')", () => new String('cpu')],
  ['new Date(0)', () => new Date(0)],
  ['/re/', () => /re/],
  ['new Map()', () => new Map()],
  ['Promise.resolve(1)', () => Promise.resolve(1)],
  ['new ArrayBuffer(8)', () => new ArrayBuffer(8)],
  ['new DataView(new ArrayBuffer(8))', () => new DataView(new ArrayBuffer(8))],
  ...TYPED.map((n) => [`new ${n}(4)`, () => new globalThis[n](4)]),
  ['new Proxy({}, throwingHandler)', () => new Proxy({}, trapHandler)],
  ['new Proxy([2, 2], throwingHandler)', () => new Proxy([2, 2], trapHandler)],
  ['{ valueOf() { throw } }', () => ({ valueOf() { throw new FuzzTrap('valueOf'); }, toString() { throw new FuzzTrap('toString'); } })],
  ['{ [Symbol.toPrimitive]() { throw } }', () => ({ [Symbol.toPrimitive]() { throw new FuzzTrap('toPrimitive'); } })],
  ['{ length: 2, 0: 2, 1: 2 }', lengthLies],
];

/** Numbers, for numeric arguments and shape elements. */
const NUMBERS = [
  ['NaN', () => NaN],
  ['Infinity', () => Infinity],
  ['-Infinity', () => -Infinity],
  ['-1', () => -1],
  ['0', () => 0],
  ['0.5', () => 0.5],
  ['-0', () => -0],
  ['1', () => 1],
  ['3', () => 3],
  ['2 ** 31 - 1', () => 2 ** 31 - 1],
  ['2 ** 31', () => 2 ** 31],
  ['2 ** 32', () => 2 ** 32],
  ['2 ** 53', () => 2 ** 53],
  ['2 ** 53 + 2', () => 2 ** 53 + 2],
  ['-(2 ** 31)', () => -(2 ** 31)],
  ['1e9', () => 1e9],
  ['1e308', () => 1e308],
  ['-1e308', () => -1e308],
  ['Number.MIN_VALUE', () => Number.MIN_VALUE],
  ['Number.EPSILON', () => Number.EPSILON],
];

/** Shapes (and nested data): huge, too many dims, negative, sparse, cyclic, deep, holey. */
const SHAPES = [
  ['[2 ** 31]', () => [2 ** 31]],
  ['[2 ** 31 - 1, 2 ** 31 - 1]', () => [2 ** 31 - 1, 2 ** 31 - 1]],
  ['[65536, 65536]', () => [65536, 65536]],
  ['[1e5, 1e5]', () => [1e5, 1e5]],
  ['[2 ** 53]', () => [2 ** 53]],
  ['[1e9, 1e9, 1e9]', () => [1e9, 1e9, 1e9]],
  ['[0, 2 ** 31 - 1, 2 ** 31 - 1]', () => [0, 2 ** 31 - 1, 2 ** 31 - 1]],
  ['new Array(17).fill(1)', () => new Array(17).fill(1)],
  ['new Array(64).fill(1)', () => new Array(64).fill(1)],
  ['[-1]', () => [-1]],
  ['[2, -3]', () => [2, -3]],
  ['[1.5]', () => [1.5]],
  ['[NaN]', () => [NaN]],
  ['[Infinity]', () => [Infinity]],
  ["['2', '2']", () => ['2', '2']],
  ['[2n]', () => [2n]],
  ['[null]', () => [null]],
  ['[[2], [2]]', () => [[2], [2]]],
  ['[1, , 2]', () => [1, , 2]], // eslint-disable-line no-sparse-arrays
  ['new Array(3)', () => new Array(3)],
  ['new Array(2 ** 32 - 1)', () => new Array(2 ** 32 - 1)],
  ['Object.assign([], { length: 1e6 })', () => Object.assign([], { length: 1e6 })],
  ['cyclic [1, 2, <self>]', cyclic],
  ['20000-deep nested [[[...[1]...]]]', () => deepNested(20000)],
  ['[2, 2] with a throwing element getter', throwingElement],
  ['Int32Array.of(2, 2)', () => Int32Array.of(2, 2)],
  ['[]', () => []],
  ['[0]', () => [0]],
  ['[0, 3]', () => [0, 3]],
];

const DTYPE_BAD = [
  ["'float'", () => 'float'], ["'Float32'", () => 'Float32'], ["'int8'", () => 'int8'], ["'complex64'", () => 'complex64'],
  ["'float32 '", () => 'float32 '], ["'F32'", () => 'F32'], ["'__proto__'", () => '__proto__'], ["'toString'", () => 'toString'],
];
const DEVICE_BAD = [
  ["'gpu'", () => 'gpu'], ["'CPU'", () => 'CPU'], ["'cuda:1'", () => 'cuda:1'], ["'cuda:-1'", () => 'cuda:-1'], ["'cuda:0x0'", () => 'cuda:0x0'],
  ["'cuda'", () => 'cuda'], ["'cuda:0'", () => 'cuda:0'], ["'cpu:0'", () => 'cpu:0'], ["'constructor'", () => 'constructor'],
];

/** Options objects that are not what they seem. `keys` are the allowed option names. */
function optionsPool(keys) {
  const k = keys[0] ?? 'dtype';
  const misspelt = k.length > 2 ? k.slice(0, -2) + k.slice(-1) + k.slice(-2, -1) : k + 'x';
  return [
    [`{ ${misspelt}: 1 } (misspelt)`, () => ({ [misspelt]: 1 })],
    [`{ ${k.toUpperCase()}: 1 }`, () => ({ [k.toUpperCase()]: 1 })],
    ['{ unknownOption: true }', () => ({ unknownOption: true })],
    [`Object.create({ ${k}: 'inherited' })`, () => Object.create({ [k]: 'inherited' })],
    ["Object.create({ dtype: 'float64', device: 'cuda', requiresGrad: true })", () => Object.create({ dtype: 'float64', device: 'cuda', requiresGrad: true })],
    ["JSON.parse('{\"__proto__\": {\"x\": 1}}')", () => JSON.parse('{"__proto__": {"x": 1}}')],
    ['{ constructor: 1 }', () => ({ constructor: 1 })],
    ['{ toString: 1 }', () => ({ toString: 1 })],
    ['{ hasOwnProperty: 1 }', () => ({ hasOwnProperty: 1 })],
    [`{ get ${k}() { throw } }`, () => Object.defineProperty({}, k, { get() { throw new FuzzTrap(`getter ${k}`); }, enumerable: true })],
    [`new (class Opts { ${k} = undefined })()`, () => { const C = class Opts {}; const o = new C(); o[k] = undefined; return o; }],
    ['{ [Symbol("k")]: 1 }', () => ({ [Symbol('k')]: 1 })],
    ['Object.freeze({})', () => Object.freeze({})],
    ['new Proxy({}, throwingHandler)', () => new Proxy({}, trapHandler)],
  ];
}

/** Tensors that are wrong for the slot: disposed, other dtype, rank or device, or fakes. */
function tensorPool() {
  return [
    ['(a disposed float32 [2, 3] tensor)', (c) => { const t = c.L.randn([2, 3]); t.dispose(); return t; }],
    ['(a disposed float32 [1, 2, 4, 4] tensor)', (c) => { const t = c.L.randn([1, 2, 4, 4]); t.dispose(); return t; }],
    ['randn([2, 3], { dtype: "float64" })', (c) => c.track(c.L.randn([2, 3], { dtype: 'float64' }))],
    ['zeros([1, 2, 4, 4], { dtype: "int32" })', (c) => c.track(c.L.zeros([1, 2, 4, 4], { dtype: 'int32' }))],
    ['zeros([2, 3], { dtype: "int64" })', (c) => c.track(c.L.zeros([2, 3], { dtype: 'int64' }))],
    ['zeros([2, 3], { dtype: "uint8" })', (c) => c.track(c.L.zeros([2, 3], { dtype: 'uint8' }))],
    ['zeros([1, 2, 4, 4], { dtype: "float16" })', (c) => c.track(c.L.zeros([1, 2, 4, 4], { dtype: 'float16' }))],
    ['zeros([1, 2, 4, 4], { dtype: "bfloat16" })', (c) => c.track(c.L.zeros([1, 2, 4, 4], { dtype: 'bfloat16' }))],
    ['tensor(3) (0-d)', (c) => c.track(c.L.tensor(3))],
    ['randn([5])', (c) => c.track(c.L.randn([5]))],
    ['randn([1, 1, 1, 1, 1])', (c) => c.track(c.L.randn([1, 1, 1, 1, 1]))],
    ['zeros([0, 3])', (c) => c.track(c.L.zeros([0, 3]))],
    ['zeros([0, 2, 4, 4])', (c) => c.track(c.L.zeros([0, 2, 4, 4]))],
    ['randn([3, 7, 5, 5])', (c) => c.track(c.L.randn([3, 7, 5, 5]))],
    ['tensor(new Float32Array(32).fill(NaN), [1, 2, 4, 4])', (c) => c.track(c.L.tensor(new Float32Array(32).fill(NaN), [1, 2, 4, 4]))],
    ['randn([1, 2, 4, 4]).to({ memoryFormat: "channelsLast" })', (c) => c.track(c.track(c.L.randn([1, 2, 4, 4])).to({ memoryFormat: 'channelsLast' }))],
    ['randn([2, 3], { requiresGrad: true })', (c) => c.track(c.L.randn([2, 3], { requiresGrad: true }))],
    ['Object.create(Tensor.prototype)', (c) => Object.create(c.L.Tensor.prototype)],
    ["{ shape: [2, 3], dtype: 'float32', device: 'cpu' } (a tensor look-alike)", () => ({ shape: [2, 3], dtype: 'float32', device: 'cpu', ndim: 2, numel: 6 })],
    ['new Float32Array(6)', () => new Float32Array(6)],
    ['[[1, 2, 3], [4, 5, 6]]', () => [[1, 2, 3], [4, 5, 6]]],
  ];
}

/** Functions that misbehave, for callbacks (noGrad, autocast, LambdaLR). */
const FUNCTIONS = [
  ['() => NaN', () => () => NaN],
  ['() => Infinity', () => () => Infinity],
  ['() => -1', () => () => -1],
  ["() => 'x'", () => () => 'x'],
  ['() => undefined', () => () => undefined],
  ['() => { throw new FuzzTrap() }', () => () => { throw new FuzzTrap('callback'); }],
  ['async () => 1', () => async () => 1],
  ['function* () {}', () => function* () {}],
];

module.exports = { FuzzTrap, TYPES, NUMBERS, SHAPES, DTYPE_BAD, DEVICE_BAD, FUNCTIONS, optionsPool, tensorPool, TYPED };
