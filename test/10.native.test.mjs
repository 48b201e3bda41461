// Low-level tests of the addon itself (lib/native.ts contract), straight through node-gyp-build:
// handles, creation, reads, casts, views, disposal, argument checks, error mapping, and every op
// on tiny inputs against values worked out by hand.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { expect } from 'chai';
import { expectThrow } from './support/expect-throw.mjs';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const native = require('node-gyp-build')(root);
const ABI_VERSION = Number(/#define CRB_ABI_VERSION (\d+)/.exec(readFileSync(join(root, 'native', 'backend', 'backend_api.h'), 'utf8'))[1]);

// The addon's functions, from the manifest every export is registered from.
const CONTRACT = [...readFileSync(join(root, 'native', 'binding', 'functions.def'), 'utf8').matchAll(/^CRB_JS\((\w+)\)/gm)]
  .map((m) => m[1]);

// The method names of lib/native.ts's NativeAddon interface (its members start at two spaces).
function nativeAddonMethods() {
  const source = readFileSync(join(root, 'lib', 'native.ts'), 'utf8');
  const body = /^export interface NativeAddon \{\n([\s\S]*?)^\}/m.exec(source)[1];
  return [...body.matchAll(/^ {2}(\w+)\(/gm)].map((m) => m[1]);
}

const f32 = (values, shape = [values.length]) => native.fromArray(new Float32Array(values), shape, 'float32', 'cpu');
const f64 = (values, shape = [values.length]) => native.fromArray(new Float64Array(values), shape, 'float64', 'cpu');
const i32 = (values, shape = [values.length]) => native.fromArray(new Int32Array(values), shape, 'int32', 'cpu');
const read = (h) => Array.from(native.readSync(h));

function expectClose(actual, expected, tol = 1e-5) {
  const a = Array.from(actual, Number);
  expect(a).to.have.length(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(a[i] - expected[i]);
    if (!(err <= tol * Math.max(1, Math.abs(expected[i])))) {
      throw new Error(`element ${i}: ${a[i]} != ${expected[i]} (|diff| ${err}); got [${a}], want [${expected}]`);
    }
  }
}


describe('native addon: surface', function () {
  it('exports the functions of functions.def and nothing else, each declared in lib/native.ts', function () {
    expect(CONTRACT.length, 'rows of functions.def').to.be.at.least(40);
    expect(new Set(CONTRACT).size, 'functions.def rows are unique').to.equal(CONTRACT.length);
    for (const name of CONTRACT) expect(native[name], name).to.be.a('function');
    expect(Object.keys(native).sort(), 'the addon\'s exports').to.deep.equal([...CONTRACT].sort());
    expect(nativeAddonMethods().sort(), 'NativeAddon in lib/native.ts').to.deep.equal([...CONTRACT].sort());
  });

  it('backendInfo describes the CPU backend and why CUDA is or is not there', function () {
    const info = native.backendInfo();
    expect(info.cpu.available).to.equal(true);
    expect(info.cpu.threads).to.be.a('number').that.is.at.least(1);
    expect(['avx512', 'avx2', 'sse2']).to.include(info.cpu.simd);
    expect(info.cpu.abiVersion).to.equal(ABI_VERSION);
    expect(info.cuda.available).to.be.a('boolean');
    expect(info.cuda.attempts).to.be.an('array');
    expect(info.cuda.devices).to.be.an('array');
    if (info.cuda.available) {
      expect(info.cuda.abiVersion).to.equal(ABI_VERSION);
      expect(info.cuda.devices.length).to.be.at.least(1);
      expect(info.cuda.devices[0].computeCapability).to.match(/^\d+\.\d+$/);
    } else {
      expect(info.cuda.reason).to.be.a('string').that.is.not.empty;
      expect(info.cuda.devices).to.have.length(0);
    }
  });

  it('capabilities(device) says what each backend computes natively, as backendInfo() does', function () {
    const cpu = native.capabilities('cpu');
    expect(cpu).to.deep.equal({ channelsLast: true, maxPoolKeepsIndices: true, fusedBnAddRelu: true, fusedBnRelu: true, hostVisibleMemory: true });
    const info = native.backendInfo();
    expect(info.cpu.capabilities).to.deep.equal(cpu);
    if (info.cuda.available) {
      const cuda = native.capabilities('cuda');
      expect(cuda).to.deep.equal({ channelsLast: true, maxPoolKeepsIndices: true, fusedBnAddRelu: true, fusedBnRelu: false, hostVisibleMemory: false });
      expect(info.cuda.capabilities).to.deep.equal(cuda);
    } else {
      expect(info.cuda.capabilities).to.equal(undefined);
      expectThrow(() => native.capabilities('cuda'), Error, 'CUDA is not available');
    }
    expectThrow(() => native.capabilities('tpu'), RangeError, 'argument "device"', 'tpu');
  });

  it('setOption, memoryStats, emptyCache and synchronize route to the CPU backend', function () {
    const before = native.backendInfo().cpu.threads;
    native.setOption('cpu', 'numThreads', 1);
    expect(native.backendInfo().cpu.threads).to.equal(1);
    native.setOption('cpu', 'numThreads', before);
    expect(native.backendInfo().cpu.threads).to.equal(before);
    const stats = native.memoryStats('cpu');
    for (const k of ['allocated', 'reserved', 'peakAllocated', 'allocCount', 'cacheHits']) expect(stats[k]).to.be.a('number');
    native.emptyCache('cpu');
    native.synchronize('cpu');
    expectThrow(() => native.setOption('cpu', 'fastMath', 1), RangeError, 'argument "name"', 'numThreads', 'fastMath');
    expectThrow(() => native.memoryStats('tpu'), RangeError, 'argument "device"', '"cpu" or "cuda"', 'tpu');
  });

  it('using cuda without a usable backend throws an Error with the reason', function () {
    const info = native.backendInfo().cuda;
    if (info.available) this.skip();
    const e = expectThrow(() => native.empty([2], 'float32', 'cuda'), Error, 'CUDA is not available', info.reason);
    expect(e).to.not.be.instanceOf(TypeError);
    expectThrow(() => native.to(f32([1]), 'cuda', 'float32', false), Error, 'CUDA is not available');
  });
});

describe('backend tables (native/backend/backend_table.inc)', function () {
  // Both backends build their table with backend_table.inc; this builds one for a fake backend
  // whose every op throws what it is told, so the guard is checked without a failing allocation.
  it('fill every ops.def entry, each behind the guard: bad_alloc -> CRB_ERR_OOM, others -> CRB_ERR_INTERNAL', function () {
    if (spawnSync('c++', ['--version']).error) this.skip();
    const dir = mkdtempSync(join(tmpdir(), 'crb-guard-'));
    try {
      writeFileSync(join(dir, 'guard.cc'), `
        #include <stdexcept>
        #include "backend_guard.h"
        namespace fake {
        crb_error error;
        int mode = 0;
        const crb_error* last_error() { return &error; }
        int device_count() { return 0; }
        crb_status record_exception(crb_status code, const char* op, const char* status, const char* message) {
          error.code = code;
          std::snprintf(error.op, sizeof error.op, "%s", op);
          std::snprintf(error.status, sizeof error.status, "%s", status);
          std::snprintf(error.message, sizeof error.message, "%s", message);
          return code;
        }
        crb_status act() {
          if (mode == 1) throw std::bad_alloc();
          if (mode == 2) throw std::runtime_error("boom");
          if (mode == 3) throw 42;
          return CRB_OK;
        }
        #define CRB_OP(name, params, args) crb_status name params { return act(); }
        #include "ops.def"
        #undef CRB_OP
        namespace {
        #include "backend_table.inc"
        }
        }
        int main() {
          const crb_backend t = fake::make_backend_table("fake", crb_capabilities{});
          int entries = 0, missing = 0;
        #define CRB_OP(name, params, args) ++entries; if (!t.name) ++missing;
        #include "ops.def"
        #undef CRB_OP
          std::printf("entries=%d\\nmissing=%d\\nabi=%u\\nname=%s\\n", entries, missing, t.abi_version, t.name);
          for (fake::mode = 0; fake::mode < 4; ++fake::mode) {
            fake::error = crb_error{};
            crb_status st = t.conv2d_forward(nullptr, nullptr, nullptr, nullptr, nullptr);
            std::printf("mode%d=%d|%s|%s|%s\\n", fake::mode, int(st), fake::error.op, fake::error.status, fake::error.message);
          }
          return 0;
        }`);
      const exe = join(dir, 'guard');
      const cc = spawnSync('c++', ['-std=c++17', '-I', join(root, 'native', 'backend'), '-o', exe, join(dir, 'guard.cc')],
        { encoding: 'utf8' });
      expect(cc.status, cc.stderr).to.equal(0);
      const run = spawnSync(exe, { encoding: 'utf8' });
      expect(run.status, run.stderr).to.equal(0);
      const out = Object.fromEntries(run.stdout.trim().split('\n').map((line) => line.split(/=(.*)/s).slice(0, 2)));
      const rows = [...readFileSync(join(root, 'native', 'backend', 'ops.def'), 'utf8').matchAll(/^CRB_OP\(/gm)].length;
      expect(out).to.include({ entries: String(rows), missing: '0', abi: String(ABI_VERSION), name: 'fake' });
      expect(out.mode0).to.equal('0|||');
      expect(out.mode1).to.equal('2|conv2d_forward|std::bad_alloc|out of host memory');
      expect(out.mode2).to.equal('6|conv2d_forward|exception|unexpected C++ exception: boom');
      expect(out.mode3).to.equal('6|conv2d_forward|exception|unexpected C++ exception');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('native addon: creation and reading', function () {
  it('empty gives a handle with shape, dtype, device, numel and nbytes', function () {
    const h = native.empty([2, 3, 4], 'float64', 'cpu');
    expect(h.shape).to.deep.equal([2, 3, 4]);
    expect(h.dtype).to.equal('float64');
    expect(h.device).to.equal('cpu');
    expect(h.channelsLast).to.equal(false);
    expect(h.numel).to.equal(24);
    expect(h.nbytes).to.equal(192);
    expect(h.disposed).to.equal(false);
    const scalar = native.empty([], 'int32', 'cpu');
    expect(scalar.shape).to.deep.equal([]);
    expect(scalar.numel).to.equal(1);
    const none = native.empty([0, 5], 'float32', 'cpu');
    expect(none.numel).to.equal(0);
    expect(native.readSync(none)).to.be.instanceOf(Float32Array).with.length(0);
  });

  it('fromArray + readSync round-trips every dtype into the right typed array', function () {
    const cases = [
      ['float32', new Float32Array([1.5, -2, 3.25]), Float32Array],
      ['float64', new Float64Array([Math.PI, -1e300, 5e-324]), Float64Array],
      ['int32', new Int32Array([-2147483648, 0, 2147483647]), Int32Array],
      ['int64', new BigInt64Array([-(2n ** 63n), 1n, 2n ** 62n + 1n]), BigInt64Array],
      ['uint8', new Uint8Array([0, 128, 255]), Uint8Array],
    ];
    for (const [dtype, data, Type] of cases) {
      const h = native.fromArray(data, [3], dtype, 'cpu');
      const back = native.readSync(h);
      expect(back, dtype).to.be.instanceOf(Type);
      expect(Array.from(back), dtype).to.deep.equal(Array.from(data));
    }
  });

  it('float16 and bfloat16 round to nearest even and read back widened to Float32Array', function () {
    const values = [1, -2, 1 / 3, 65504, 65520, 1e-8, 2 ** -24, 0.1];
    const half = native.readSync(native.fromArray(new Float64Array(values), [8], 'float16', 'cpu'));
    expect(half).to.be.instanceOf(Float32Array);
    expect(Array.from(half)).to.deep.equal([1, -2, 0.333251953125, 65504, Infinity, 0, 2 ** -24, 0.0999755859375]);
    const bf = native.readSync(native.fromArray(new Float32Array(values), [8], 'bfloat16', 'cpu'));
    expect(Array.from(bf)).to.deep.equal([1, -2, 0.333984375, 65536, 65536, 1.0011717677116394e-8,
      5.960464477539063e-8, 0.10009765625]);
    // Uint16Array carries raw bits: 0x3c00 = 1, 0xc000 = -2, 0x7c00 = inf, 0x0001 = smallest subnormal.
    const raw = native.fromArray(new Uint16Array([0x3c00, 0xc000, 0x7c00, 0x0001]), [4], 'float16', 'cpu');
    expect(Array.from(native.readSync(raw))).to.deep.equal([1, -2, Infinity, 2 ** -24]);
    const rawBf = native.fromArray(new Uint16Array([0x3f80, 0x4049]), [2], 'bfloat16', 'cpu');
    expect(Array.from(native.readSync(rawBf))).to.deep.equal([1, 3.140625]);
    expect(Number.isNaN(native.readSync(native.fromArray(new Float32Array([NaN]), [1], 'float16', 'cpu'))[0])).to.equal(true);
  });

  it('read() resolves with the same values as readSync, also for float16', async function () {
    const h = f32([1, 2, 3, 4], [2, 2]);
    const p = native.read(h);
    expect(p).to.be.instanceOf(Promise);
    expect(Array.from(await p)).to.deep.equal([1, 2, 3, 4]);
    const half = native.fromArray(new Float32Array([0.5, 3]), [2], 'float16', 'cpu');
    const back = await native.read(half);
    expect(back).to.be.instanceOf(Float32Array);
    expect(Array.from(back)).to.deep.equal([0.5, 3]);
    const big = native.fromArray(new BigInt64Array([7n]), [1], 'int64', 'cpu');
    expect(Array.from(await native.read(big))).to.deep.equal([7n]);
    expect(Array.from(await native.read(native.empty([0], 'float32', 'cpu')))).to.deep.equal([]);
  });

  it('a read in flight keeps the storage alive when the handle is disposed', async function () {
    const h = f64(Array.from({ length: 1000 }, (_, i) => i));
    const p = native.read(h);
    h.dispose();
    const values = await p;
    expect(values[999]).to.equal(999);
    expectThrow(() => native.read(h), Error, 'argument "h"', 'Tensor is disposed');
  });

  it('full fills with the value; integer dtypes need integers in range', function () {
    expect(read(native.full([2, 2], 'float32', 'cpu', 2.5))).to.deep.equal([2.5, 2.5, 2.5, 2.5]);
    expect(read(native.full([3], 'int32', 'cpu', -7))).to.deep.equal([-7, -7, -7]);
    expect(read(native.full([2], 'uint8', 'cpu', 255))).to.deep.equal([255, 255]);
    expectThrow(() => native.full([2], 'uint8', 'cpu', 256), RangeError, 'argument "value"', 'uint8', '256');
    expectThrow(() => native.full([2], 'int32', 'cpu', 0.5), RangeError, 'argument "value"');
    expectThrow(() => native.full([2], 'float32', 'cpu', '1'), TypeError, 'argument "value"', 'a number');
  });

  it('randn/rand are seeded, device independent in value, and have the right statistics', function () {
    native.manualSeed(42);
    const a = native.readSync(native.randn([10000], 'float64', 'cpu', 1, 2));
    native.manualSeed(42);
    const b = native.readSync(native.randn([10000], 'float64', 'cpu', 1, 2));
    expect(Array.from(a)).to.deep.equal(Array.from(b));
    const mean = a.reduce((s, v) => s + v, 0) / a.length;
    const std = Math.sqrt(a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length);
    expect(mean).to.be.closeTo(1, 0.06);
    expect(std).to.be.closeTo(2, 0.06);
    // The float32 draw is the float64 draw rounded: values come from the host generator.
    native.manualSeed(42);
    const c = native.readSync(native.randn([10000], 'float32', 'cpu', 1, 2));
    expect(Array.from(c)).to.deep.equal(Array.from(a, Math.fround));
    native.manualSeed(43);
    expect(native.readSync(native.randn([4], 'float64', 'cpu', 0, 1))[0]).to.not.equal(a[0]);
    native.manualSeed(7);
    const u = native.readSync(native.rand([5000], 'float32', 'cpu', -3, 5));
    expect(Math.min(...u)).to.be.at.least(-3);
    expect(Math.max(...u)).to.be.below(5);
    expect(u.reduce((s, v) => s + v, 0) / u.length).to.be.closeTo(1, 0.15);
    expectThrow(() => native.randn([2], 'int32', 'cpu', 0, 1), TypeError, 'argument "dtype"', 'float');
    expectThrow(() => native.randn([2], 'float32', 'cpu', 0, -1), RangeError, 'argument "std"');
    expectThrow(() => native.rand([2], 'float32', 'cpu', 1, 0), RangeError, 'argument "high"');
    expectThrow(() => native.manualSeed(-1), RangeError, 'argument "seed"');
    expectThrow(() => native.manualSeed('1'), TypeError, 'argument "seed"');
  });
});

describe('native addon: to, view, copyInto, fill, axpby', function () {
  it('to() casts on the same device, including float16/bfloat16 round trips', function () {
    const x = f32([1.5, -2.75, 1 / 3, 100000]);
    const d = native.to(x, 'cpu', 'float64', false);
    expect(d.dtype).to.equal('float64');
    expect(Array.from(native.readSync(d))).to.deep.equal(Array.from(new Float32Array([1.5, -2.75, 1 / 3, 100000])));
    const h = native.to(x, 'cpu', 'float16', false);
    expect(h.dtype).to.equal('float16');
    expect(h.nbytes).to.equal(8);
    expect(read(native.to(h, 'cpu', 'float32', false))).to.deep.equal([1.5, -2.75, 0.333251953125, Infinity]);
    const bf = native.to(x, 'cpu', 'bfloat16', false);
    expect(read(native.to(bf, 'cpu', 'float32', false))).to.deep.equal([1.5, -2.75, 0.333984375, 99840]);
    expect(read(native.to(f32([1.9, -1.9, 3]), 'cpu', 'int32', false))).to.deep.equal([1, -1, 3]);
    expect(read(native.to(i32([5, -6]), 'cpu', 'float32', false))).to.deep.equal([5, -6]);
    // Same dtype: a fresh copy, not shared storage.
    const copy = native.to(x, 'cpu', 'float32', false);
    native.fill(x, 0);
    expect(read(copy)[0]).to.equal(1.5);
  });

  it('channelsLast: the CPU stores NHWC (values in memory order); only 4-D tensors may ask', function () {
    const x = f32([1, 2, 3, 4, 5, 6], [1, 2, 1, 3]);
    const y = native.to(x, 'cpu', 'float32', true);
    expect(y.channelsLast).to.equal(true);
    expect(read(y)).to.deep.equal([1, 4, 2, 5, 3, 6]);
    expect(read(native.to(y, 'cpu', 'float32', false))).to.deep.equal([1, 2, 3, 4, 5, 6]);
    // a same-shape view keeps the memory order (autograd saves inputs that way)
    expect(native.view(y, [1, 2, 1, 3]).channelsLast).to.equal(true);
    expectThrow(() => native.to(f32([1, 2]), 'cpu', 'float32', true), RangeError, 'argument "channelsLast"');
    expectThrow(() => native.to(x, 'cpu', 'float32', 1), TypeError, 'argument "channelsLast"', 'a boolean');
  });

  it('view shares storage, keeps it alive after the original is disposed, and checks numel', function () {
    const x = f32([1, 2, 3, 4, 5, 6], [2, 3]);
    const v = native.view(x, [3, 2]);
    expect(v.shape).to.deep.equal([3, 2]);
    native.fill(x, 9);
    expect(read(v)).to.deep.equal([9, 9, 9, 9, 9, 9]);
    x.dispose();
    expect(read(v)).to.deep.equal([9, 9, 9, 9, 9, 9]);
    expectThrow(() => native.view(v, [4, 2]), RangeError, 'argument "shape"', '6 elements', '[4, 2]');
  });

  it('copyInto, fill and axpby work in place', function () {
    const dst = f32([0, 0, 0]);
    native.copyInto(dst, f32([1, 2, 3]));
    expect(read(dst)).to.deep.equal([1, 2, 3]);
    native.axpby(dst, f32([10, 20, 30]), 2, 3);
    expect(read(dst)).to.deep.equal([23, 46, 69]);
    native.fill(dst, -1);
    expect(read(dst)).to.deep.equal([-1, -1, -1]);
    expectThrow(() => native.copyInto(dst, f32([1, 2])), RangeError, 'copyInto: argument "src" expected shape [3]', 'received [2]');
    expectThrow(() => native.copyInto(dst, f64([1, 2, 3])), TypeError, 'argument "src"', 'float32', 'float64');
  });

  it('accumulate adds in place only into storage no other handle holds; exclusive says whether one does', function () {
    const dst = f32([1, 2, 3]);
    expect(native.exclusive(dst)).to.equal(true);
    expect(native.accumulate(dst, f32([10, 20, 30]))).to.equal(true);
    expect(read(dst)).to.deep.equal([11, 22, 33]);
    const v = native.view(dst, [3]);
    expect(native.exclusive(dst)).to.equal(false);
    expect(native.accumulate(dst, f32([1, 1, 1]))).to.equal(false);  // v would see it
    expect(read(v)).to.deep.equal([11, 22, 33]);
    v.dispose();
    expect(native.accumulate(dst, dst)).to.equal(false);  // its own storage as src
    const x = f32([1, 2, 3, 4, 5, 6], [1, 2, 1, 3]);
    expect(native.accumulate(native.to(x, 'cpu', 'float32', true), x)).to.equal(false);  // memory orders differ
    expectThrow(() => native.accumulate(dst, f32([1, 2])), RangeError, 'accumulate: argument "src" expected shape [3]', 'received [2]');
    expectThrow(() => native.accumulate(dst, f64([1, 2, 3])), TypeError, 'accumulate: argument "src"', 'float32', 'float64');
    expectThrow(() => native.accumulate(dst, 'x'), TypeError, 'accumulate: argument "src"', 'a tensor handle');
    expectThrow(() => native.exclusive(5), TypeError, 'exclusive: argument "h"', 'a tensor handle', 'number 5');
    const gone = f32([1, 2, 3]);
    gone.dispose();
    expectThrow(() => native.accumulate(gone, dst), Error, 'accumulate: argument "dst"', 'Tensor is disposed');
    expectThrow(() => native.exclusive(gone), Error, 'exclusive: argument "h"', 'Tensor is disposed');
  });

  it('empty(..., channelsLast) allocates NHWC storage; only 4-D shapes may ask', function () {
    expect(native.empty([1, 2, 3, 4], 'float32', 'cpu', true).channelsLast).to.equal(true);
    expect(native.empty([1, 2, 3, 4], 'float32', 'cpu', false).channelsLast).to.equal(false);
    expect(native.empty([1, 2, 3, 4], 'float32', 'cpu').channelsLast).to.equal(false);
    expectThrow(() => native.empty([2], 'float32', 'cpu', true), RangeError, 'empty: argument "channelsLast"', 'not 4-D', '[2]');
    expectThrow(() => native.empty([1, 2, 3, 4], 'float32', 'cpu', 1), TypeError, 'empty: argument "channelsLast"', 'a boolean');
  });
});

describe('native addon: handles and argument checks', function () {
  it('dispose is idempotent; a disposed handle is refused naming the argument', function () {
    const h = f32([1, 2]);
    h.dispose();
    h.dispose();
    expect(h.disposed).to.equal(true);
    expect(h.shape).to.deep.equal([2]);
    const e = expectThrow(() => native.add(f32([1, 2]), h), Error, 'add: argument "b"', 'Tensor is disposed');
    expect(e).to.not.be.instanceOf(TypeError);
    expectThrow(() => native.readSync(h), Error, 'argument "h"', 'Tensor is disposed');
  });

  it('only handles made by the addon are accepted (type tag)', function () {
    const h = f32([1]);
    expectThrow(() => native.readSync({ shape: [1], dtype: 'float32' }), TypeError, 'readSync: argument "h" expected a tensor handle', 'received object');
    expectThrow(() => native.readSync(Object.create(Object.getPrototypeOf(h))), TypeError, 'argument "h"');
    expectThrow(() => native.sum(3), TypeError, 'sum: argument "x" expected a tensor handle, received number 3');
    expectThrow(() => new h.constructor(), TypeError, 'created by the addon');
  });

  it('bad dtype, device and shape arguments name the argument, the expectation and the value', function () {
    expectThrow(() => native.empty([2], 'float8', 'cpu'), RangeError, 'empty: argument "dtype" expected one of float32', 'received string "float8"');
    expectThrow(() => native.empty([2], 5, 'cpu'), TypeError, 'argument "dtype"', 'number 5');
    expectThrow(() => native.empty([2], 'float32', 'tpu'), RangeError, 'argument "device"', 'tpu');
    expectThrow(() => native.empty([2, -1], 'float32', 'cpu'), RangeError, 'argument "shape"', 'element 1');
    expectThrow(() => native.empty([2.5], 'float32', 'cpu'), RangeError, 'argument "shape"');
    expectThrow(() => native.empty('abc', 'float32', 'cpu'), TypeError, 'argument "shape"', 'an array of non-negative integers');
    expectThrow(() => native.fromArray([1, 2], [2], 'float32', 'cpu'), TypeError, 'argument "data"', 'Float32Array', 'array of length 2');
    expectThrow(() => native.fromArray(new Float32Array(3), [2, 2], 'float32', 'cpu'), RangeError, 'argument "data"', '4 elements', 'Float32Array(3)');
    expectThrow(() => native.fromArray(new Float64Array(2), [2], 'int32', 'cpu'), TypeError, 'argument "data"', 'Int32Array');
  });

  it('conv2dForward checks ranks, channels, pairs and output size', function () {
    const x = native.full([1, 3, 5, 5], 'float32', 'cpu', 1);
    const w7 = native.full([7, 5, 3, 3], 'float32', 'cpu', 1);
    const w = native.full([2, 3, 3, 3], 'float32', 'cpu', 1);
    expectThrow(() => native.conv2dForward(x, w7, null, [1, 1], [0, 0], [1, 1], 1), RangeError,
      'conv2d: argument "weight" expected shape [k, 3, r, s] (x has 3 channels), received [7, 5, 3, 3]');
    expectThrow(() => native.conv2dForward(f32([1, 2]), w, null, [1, 1], [0, 0], [1, 1], 1), RangeError,
      'argument "x" expected 4-D shape [n, c, h, w], received [2]');
    expectThrow(() => native.conv2dForward(x, w, null, [1, 0], [0, 0], [1, 1], 1), RangeError,
      'argument "stride" expected an array of 2 positive integers, received [1, 0]');
    expectThrow(() => native.conv2dForward(x, w, null, [1], [0, 0], [1, 1], 1), RangeError, 'argument "stride"');
    expectThrow(() => native.conv2dForward(x, w, null, 1, [0, 0], [1, 1], 1), TypeError, 'argument "stride"');
    expectThrow(() => native.conv2dForward(x, w, null, [1, 1], [-1, 0], [1, 1], 1), RangeError, 'argument "padding"', 'non-negative');
    expectThrow(() => native.conv2dForward(x, w, null, [1, 1], [0, 0], [1, 1], 2), RangeError, 'argument "groups"');
    expectThrow(() => native.conv2dForward(x, w, f32([1, 2, 3]), [1, 1], [0, 0], [1, 1], 1), RangeError, 'argument "bias"', 'received [3]');
    expectThrow(() => native.conv2dForward(x, w, null, [1, 1], [0, 0], [3, 3], 1), RangeError, 'argument "x"', 'output size');
    expectThrow(() => native.conv2dForward(i32([1], [1, 1, 1, 1]), w, null, [1, 1], [0, 0], [1, 1], 1), TypeError, 'argument "x"', 'float');
    expectThrow(() => native.conv2dForward(x, f64(new Array(54).fill(0), [2, 3, 3, 3]), null, [1, 1], [0, 0], [1, 1], 1),
      TypeError, 'argument "weight" expected dtype float32', 'received float64');
  });

  it('other ops check their shapes and dtypes', function () {
    expectThrow(() => native.add(f32([1, 2]), f32([1, 2, 3])), RangeError, 'add: argument "b" expected shape [2]');
    expectThrow(() => native.reluForward(i32([1])), TypeError, 'reluForward: argument "x" expected a float tensor', 'int32');
    expectThrow(() => native.linearForward(f32([1, 2], [1, 2]), f32([1, 2, 3], [1, 3]), null), RangeError, 'argument "weight" expected shape [n, 2]');
    const logits = f32([0, 0, 0, 0], [2, 2]);
    expectThrow(() => native.crossEntropyForward(logits, f32([0, 1])), TypeError, 'argument "labels" expected dtype int32');
    expectThrow(() => native.crossEntropyForward(logits, i32([0, 1, 0])), RangeError, 'argument "labels" expected shape [2]');
    expectThrow(() => native.maxPool2dForward(f32([1], [1, 1, 1, 1]), [2, 2], [2, 2], [0, 0]), RangeError, 'argument "x"');
    expectThrow(() => native.maxPool2dForward(f32(new Array(16).fill(0), [1, 1, 4, 4]), [2, 2], [2, 2], [2, 0]), RangeError, 'argument "padding"', 'half the kernel');
    const x = f32([1, 2, 3, 4], [2, 1, 1, 2]);
    expectThrow(() => native.batchNormForwardTrain(x, f64([1]), f32([0]), null, null, 0.1, 1e-5), TypeError, 'argument "weight" expected dtype float32');
    expectThrow(() => native.batchNormForwardTrain(x, f32([1, 1]), f32([0]), null, null, 0.1, 1e-5), RangeError, 'argument "weight" expected shape [1]');
    expectThrow(() => native.adaptiveAvgPool2dBackward(f32([1], [1, 1, 1, 1]), [2, 1, 4, 4]), RangeError, 'argument "inputShape"');
    expectThrow(() => native.sgdStep([f32([1])], [], [null], [false], { lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false }),
      RangeError, 'argument "grads" expected 1 entries');
    expectThrow(() => native.sgdStep([f32([1])], [f32([1])], [null], [false], { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: false, maximize: false }),
      TypeError, 'argument "bufs[0]" expected a momentum buffer');
    expectThrow(() => native.sgdStep([f32([1])], [f32([1])], [null], [false], { lr: 'x' }), TypeError, 'argument "opts.lr" expected a number');
    expectThrow(() => native.imagesU8ToFloat(f32([1], [1, 1, 1, 1]), [2, 2], 0, 1, 'float32'), TypeError, 'argument "images" expected dtype uint8');
  });
});

describe('native addon: backend errors', function () {
  it('without setErrorClasses a backend failure is a plain Error with op, status, code, device', function () {
    // A child process: this process sets the classes in the next test and they stay set.
    const script = `
      const n = require('node-gyp-build')(${JSON.stringify(root)});
      try { n.empty([1 << 21, 1 << 22], 'float32', 'cpu'); console.log('no throw'); }
      catch (e) { console.log(JSON.stringify({ name: e.constructor.name, message: e.message, op: e.op, status: e.status, code: e.code, device: e.device })); }`;
    const out = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', cwd: root });
    const e = JSON.parse(out.stdout.trim());
    expect(e.name).to.equal('Error');
    expect(e.code).to.equal('CRB_ERR_OOM');
    expect(e.op).to.equal('alloc');
    expect(e.device).to.equal('cpu');
    expect(e.status).to.be.a('string').that.is.not.empty;
    expect(e.message).to.include('empty: alloc failed on cpu');
  });

  it('backend failures throw the classes given to setErrorClasses', function () {
    class BackendError extends Error {
      constructor(message, props) {
        super(message);
        this.name = 'BackendError';
        this.props = props;
      }
    }
    class CudaError extends BackendError {}
    class CudnnError extends BackendError {}
    class OutOfMemoryError extends BackendError {}
    expectThrow(() => native.setErrorClasses({ BackendError }), TypeError, 'argument "classes.CudaError"');
    native.setErrorClasses({ BackendError, CudaError, CudnnError, OutOfMemoryError });

    const oom = expectThrow(() => native.empty([1 << 21, 1 << 22], 'float32', 'cpu'), OutOfMemoryError, 'alloc failed on cpu');
    expect(oom.code).to.equal('CRB_ERR_OOM');
    expect(oom.props).to.include({ op: 'alloc', code: 'CRB_ERR_OOM', device: 'cpu' });
    expect(oom.message).to.include('[2097152, 4194304]');

    // The CPU backend has no float16 convolution: UNSUPPORTED comes back as a BackendError
    // whose message names the op and the shapes.
    const x = native.to(native.full([1, 1, 3, 3], 'float32', 'cpu', 1), 'cpu', 'float16', false);
    const w = native.to(native.full([1, 1, 2, 2], 'float32', 'cpu', 1), 'cpu', 'float16', false);
    const e = expectThrow(() => native.conv2dForward(x, w, null, [1, 1], [0, 0], [1, 1], 1), BackendError,
      'conv2d: conv2d_forward failed on cpu', 'x: float16 [1, 1, 3, 3], weight: float16 [1, 1, 2, 2]');
    expect(e).to.not.be.instanceOf(OutOfMemoryError);
    expect(e.code).to.equal('CRB_ERR_UNSUPPORTED');
    expect(e.op).to.equal('conv2d_forward');
    expect(e.device).to.equal('cpu');
  });
});

describe('native addon: ops on tiny inputs', function () {
  const x9 = () => f32([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 3, 3]);
  const ones = (shape) => native.full(shape, 'float32', 'cpu', 1);

  it('add, sum, relu forward and backward', function () {
    expect(read(native.add(f32([1, 2, 3]), f32([10, 20, 30])))).to.deep.equal([11, 22, 33]);
    const s = native.sum(f32([1, 2, 3, 4.5], [2, 2]));
    expect(s.shape).to.deep.equal([]);
    expect(read(s)).to.deep.equal([10.5]);
    expect(read(native.sum(f64([0.1, 0.2])))).to.deep.equal([0.1 + 0.2]);
    const y = native.reluForward(f32([-1, 0, 2, -3, 4]));
    expect(read(y)).to.deep.equal([0, 0, 2, 0, 4]);
    expect(read(native.reluBackward(f32([1, 2, 3, 4, 5]), y))).to.deep.equal([0, 0, 3, 0, 5]);
  });

  it('conv2dForward: plain, bias + padding + stride, groups, dilation', function () {
    const y = native.conv2dForward(x9(), ones([1, 1, 2, 2]), f32([1]), [1, 1], [0, 0], [1, 1], 1);
    expect(y.shape).to.deep.equal([1, 1, 2, 2]);
    expect(read(y)).to.deep.equal([13, 17, 25, 29]);
    // out = floor((3 + 2 - 1 - 1) / 2) + 1 = 2; windows over the zero-padded input.
    const ps = native.conv2dForward(x9(), ones([1, 1, 2, 2]), f32([1]), [2, 2], [1, 1], [1, 1], 1);
    expect(read(ps)).to.deep.equal([2, 6, 12, 29]);
    const g = native.conv2dForward(f32([1, 2], [1, 2, 1, 1]), f32([3, 4], [2, 1, 1, 1]), null, [1, 1], [0, 0], [1, 1], 2);
    expect(read(g)).to.deep.equal([3, 8]);
    const d = native.conv2dForward(x9(), ones([1, 1, 2, 2]), null, [1, 1], [0, 0], [2, 2], 1);
    expect(d.shape).to.deep.equal([1, 1, 1, 1]);
    expect(read(d)).to.deep.equal([20]);
    const f64y = native.conv2dForward(native.to(x9(), 'cpu', 'float64', false), native.full([1, 1, 2, 2], 'float64', 'cpu', 1), null,
      [1, 1], [0, 0], [1, 1], 1);
    expect(f64y.dtype).to.equal('float64');
    expect(read(f64y)).to.deep.equal([12, 16, 24, 28]);
  });

  it('conv2dBackward gives dx, dw, db and skips what is not needed', function () {
    const r = native.conv2dBackward(x9(), ones([1, 1, 2, 2]), ones([1, 1, 2, 2]), [1, 1], [0, 0], [1, 1], 1, true, true, true);
    expect(read(r.dx)).to.deep.equal([1, 2, 1, 2, 4, 2, 1, 2, 1]);
    expect(read(r.dw)).to.deep.equal([12, 16, 24, 28]);
    expect(r.db.shape).to.deep.equal([1]);
    expect(read(r.db)).to.deep.equal([4]);
    const only = native.conv2dBackward(x9(), ones([1, 1, 2, 2]), ones([1, 1, 2, 2]), [1, 1], [0, 0], [1, 1], 1, false, true, false);
    expect(only.dx).to.equal(null);
    expect(only.db).to.equal(null);
    expect(read(only.dw)).to.deep.equal([12, 16, 24, 28]);
    expectThrow(() => native.conv2dBackward(x9(), ones([1, 1, 2, 2]), ones([1, 1, 3, 3]), [1, 1], [0, 0], [1, 1], 1, true, true, true),
      RangeError, 'argument "dy" expected shape [1, 1, 2, 2]');
  });

  it('batch norm: train forward updates running stats; eval forward; both backwards', function () {
    const eps = 1e-5;
    const xs = [1, 2, 3, 4];
    const x = f32(xs, [2, 1, 1, 2]);
    const rm = f32([0]);
    const rv = f32([1]);
    const r = native.batchNormForwardTrain(x, f32([2]), f32([1]), rm, rv, 0.1, eps);
    const invstd = 1 / Math.sqrt(1.25 + eps);
    expectClose(native.readSync(r.y), xs.map((v) => (v - 2.5) * invstd * 2 + 1));
    expectClose(native.readSync(r.saveMean), [2.5]);
    expectClose(native.readSync(r.saveInvstd), [invstd]);
    expectClose(native.readSync(rm), [0.25]);
    expectClose(native.readSync(rv), [0.9 + 0.1 * (5 / 3)]);  // unbiased variance 5/3
    const noTrack = native.batchNormForwardTrain(x, f32([2]), f32([1]), null, null, 0.1, eps);
    expectClose(native.readSync(noTrack.y), xs.map((v) => (v - 2.5) * invstd * 2 + 1));

    const ev = native.batchNormForwardEval(x, f32([2]), f32([1]), f32([1]), f32([4]), eps);
    expectClose(native.readSync(ev), xs.map((v) => ((v - 1) / Math.sqrt(4 + eps)) * 2 + 1));

    const dys = [1, 0, -1, 2];
    const dy = f32(dys, [2, 1, 1, 2]);
    const bt = native.batchNormBackwardTrain(x, dy, f32([2]), r.saveMean, r.saveInvstd, eps);
    const xhat = xs.map((v) => (v - 2.5) * invstd);
    const sumDy = dys.reduce((a, b) => a + b, 0);
    const sumDyXhat = dys.reduce((a, v, i) => a + v * xhat[i], 0);
    expectClose(native.readSync(bt.dx), dys.map((v, i) => (2 * invstd / 4) * (4 * v - sumDy - xhat[i] * sumDyXhat)), 1e-4);
    expectClose(native.readSync(bt.dgamma), [sumDyXhat]);
    expectClose(native.readSync(bt.dbeta), [sumDy]);

    const be = native.batchNormBackwardEval(x, dy, f32([2]), f32([1]), f32([4]), eps);
    const s = 1 / Math.sqrt(4 + eps);
    expectClose(native.readSync(be.dx), dys.map((v) => v * 2 * s));
    expectClose(native.readSync(be.dgamma), [dys.reduce((a, v, i) => a + v * (xs[i] - 1) * s, 0)]);
    expectClose(native.readSync(be.dbeta), [sumDy]);
  });

  it('max pooling forward (with indices) and backward', function () {
    const x = f32(Array.from({ length: 16 }, (_, i) => i), [1, 1, 4, 4]);
    const r = native.maxPool2dForward(x, [2, 2], [2, 2], [0, 0]);
    expect(r.y.shape).to.deep.equal([1, 1, 2, 2]);
    expect(read(r.y)).to.deep.equal([5, 7, 13, 15]);
    expect(r.indices.dtype).to.equal('int32');
    expect(read(r.indices)).to.deep.equal([5, 7, 13, 15]);
    const dx = native.maxPool2dBackward(x, r.y, f32([1, 2, 3, 4], [1, 1, 2, 2]), r.indices, [2, 2], [2, 2], [0, 0]);
    const want = new Array(16).fill(0);
    want[5] = 1; want[7] = 2; want[13] = 3; want[15] = 4;
    expect(read(dx)).to.deep.equal(want);
    // 3x3 kernel, stride 1, padding 1 keeps the size.
    const same = native.maxPool2dForward(x, [3, 3], [1, 1], [1, 1]);
    expect(read(same.y)).to.deep.equal([5, 6, 7, 7, 9, 10, 11, 11, 13, 14, 15, 15, 13, 14, 15, 15]);
  });

  it('adaptive average pooling forward and backward', function () {
    const x = f32(Array.from({ length: 16 }, (_, i) => i), [1, 1, 4, 4]);
    expect(read(native.adaptiveAvgPool2dForward(x, [1, 1]))).to.deep.equal([7.5]);
    expect(read(native.adaptiveAvgPool2dForward(x, [2, 2]))).to.deep.equal([2.5, 4.5, 10.5, 12.5]);
    const dx = native.adaptiveAvgPool2dBackward(f32([16], [1, 1, 1, 1]), [1, 1, 4, 4]);
    expect(dx.shape).to.deep.equal([1, 1, 4, 4]);
    expect(read(dx)).to.deep.equal(new Array(16).fill(1));
  });

  it('linear forward and backward', function () {
    const x = f32([1, 2, 3, 4, 5, 6], [2, 3]);
    const w = f32([1, 0, 0, 0, 1, 1], [2, 3]);
    expect(read(native.linearForward(x, w, f32([10, 20])))).to.deep.equal([11, 25, 14, 31]);
    expect(read(native.linearForward(x, w, null))).to.deep.equal([1, 5, 4, 11]);
    const g = native.linearBackward(x, w, ones([2, 2]), true, true, true);
    expect(read(g.dx)).to.deep.equal([1, 1, 1, 1, 1, 1]);
    expect(read(g.dw)).to.deep.equal([5, 7, 9, 5, 7, 9]);
    expect(read(g.db)).to.deep.equal([2, 2]);
    const none = native.linearBackward(x, w, ones([2, 2]), false, false, true);
    expect(none.dx).to.equal(null);
    expect(none.dw).to.equal(null);
    expect(read(none.db)).to.deep.equal([2, 2]);
  });

  it('cross-entropy forward/backward and the accuracy count', function () {
    const logits = f32([0, 0, 0, Math.log(3)], [2, 2]);
    const labels = i32([0, 1]);
    const r = native.crossEntropyForward(logits, labels);
    expect(r.loss.shape).to.deep.equal([]);
    expectClose(native.readSync(r.loss), [(Math.log(2) - Math.log(0.75)) / 2]);
    expectClose(native.readSync(r.probs), [0.5, 0.5, 0.25, 0.75]);
    const d = native.crossEntropyBackward(r.probs, labels, f32([1], []));
    expectClose(native.readSync(d), [-0.25, 0.25, 0.125, -0.125]);
    const acc = native.accuracyCount(f32([1, 0, 0, Math.log(3)], [2, 2]), i32([0, 0]));
    expect(acc.dtype).to.equal('int32');
    expect(acc.shape).to.deep.equal([]);
    expect(read(acc)).to.deep.equal([1]);
  });

  it('sgdStep: plain, momentum (first and later steps), weight decay', function () {
    const opts = { lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false };
    const p = f32([1, 2]);
    native.sgdStep([p], [f32([0.5, 0.5])], [null], [false], opts);
    expectClose(native.readSync(p), [0.95, 1.95]);

    const q = f32([1]);
    const buf = f32([0]);
    const m = { ...opts, momentum: 0.9 };
    native.sgdStep([q], [f32([0.5])], [buf], [true], m);  // buf = g
    expectClose(native.readSync(buf), [0.5]);
    expectClose(native.readSync(q), [0.95]);
    native.sgdStep([q], [f32([0.5])], [buf], [false], m);  // buf = 0.9 * 0.5 + 0.5
    expectClose(native.readSync(buf), [0.95]);
    expectClose(native.readSync(q), [0.855]);

    const r = f32([2]);
    native.sgdStep([r], [f32([1])], [null], [false], { ...opts, weightDecay: 0.5 });  // g = 1 + 0.5 * 2
    expectClose(native.readSync(r), [1.8]);
  });

  it('imagesU8ToFloat normalizes and resizes bilinearly', function () {
    const img = native.fromArray(new Uint8Array([0, 255, 255, 0]), [1, 1, 2, 2], 'uint8', 'cpu');
    const same = native.imagesU8ToFloat(img, [2, 2], 0.5, 0.5, 'float32');
    expect(same.shape).to.deep.equal([1, 1, 2, 2]);
    expectClose(native.readSync(same), [-1, 1, 1, -1]);
    expectClose(native.readSync(native.imagesU8ToFloat(img, [1, 1], 0.5, 0.5, 'float32')), [0]);
    const up = native.imagesU8ToFloat(native.fromArray(new Uint8Array([51]), [1, 1, 1, 1], 'uint8', 'cpu'), [2, 3], 0, 1, 'float64');
    expect(up.dtype).to.equal('float64');
    expectClose(native.readSync(up), new Array(6).fill(0.2));
  });
});

describe('native addon: memory', function () {
  it('dispose frees the storage; a view keeps it until it goes too', function () {
    const base = native.memoryStats('cpu').allocated;
    const h = native.empty([1024], 'float64', 'cpu');
    expect(native.memoryStats('cpu').allocated).to.be.at.least(base + 8192);
    const v = native.view(h, [32, 32]);
    h.dispose();
    expect(native.memoryStats('cpu').allocated).to.be.at.least(base + 8192);
    v.dispose();
    expect(native.memoryStats('cpu').allocated).to.equal(base);
  });

  it('garbage collection frees handles that were never disposed (child process)', function () {
    const script = `
      const n = require('node-gyp-build')(${JSON.stringify(root)});
      const base = n.memoryStats('cpu').allocated;
      (async () => {
        for (let b = 0; b < 20; b++) {
          for (let i = 0; i < 10; i++) n.empty([256, 1024], 'float32', 'cpu');  // 1 MiB each
          await new Promise(setImmediate);
        }
        const peak = n.memoryStats('cpu').peakAllocated;
        global.gc();
        await new Promise(setImmediate);
        global.gc();
        await new Promise(setImmediate);
        console.log(JSON.stringify({ base, peak, after: n.memoryStats('cpu').allocated }));
      })();`;
    const out = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', cwd: root });
    expect(out.status, out.stderr).to.equal(0);
    const r = JSON.parse(out.stdout.trim());
    // 200 MiB allocated in all: the external memory reported to V8 made it collect along the way.
    expect(r.peak - r.base).to.be.below(200 * 1024 * 1024);
    expect(r.after).to.equal(r.base);
  });
});

describe('native addon: cuda @cuda', function () {
  before(function () {
    const info = native.backendInfo().cuda;
    if (!info.available) {
      if (process.env.REQUIRE_CUDA === '1') throw new Error(`CUDA required but unavailable: ${info.reason}`);
      console.log(`      skipped: CUDA unavailable: ${info.reason}`);
      this.skip();
    }
  });

  it('to() moves cpu <-> cuda with dtype conversion on the way', async function () {
    const x = f32([1.5, -2.75, 1 / 3, 100000]);
    const g = native.to(x, 'cuda', 'float32', false);
    expect(g.device).to.equal('cuda');
    expect(read(g)).to.deep.equal(read(x));
    expect(Array.from(await native.read(g))).to.deep.equal(read(x));
    const h = native.to(x, 'cuda', 'float16', false);
    expect(h.dtype).to.equal('float16');
    expect(read(h)).to.deep.equal([1.5, -2.75, 0.333251953125, Infinity]);
    const back = native.to(native.to(g, 'cuda', 'float64', false), 'cpu', 'float32', false);
    expect(back.device).to.equal('cpu');
    expect(read(back)).to.deep.equal(read(x));
  });

  it('creation and ops on cuda agree with the CPU', function () {
    native.manualSeed(5);
    const a = native.randn([2, 3, 5, 5], 'float32', 'cpu', 0, 1);
    native.manualSeed(5);
    const ag = native.randn([2, 3, 5, 5], 'float32', 'cuda', 0, 1);
    expect(read(ag)).to.deep.equal(read(a));
    const w = native.randn([4, 3, 3, 3], 'float32', 'cpu', 0, 1);
    const wg = native.to(w, 'cuda', 'float32', false);
    const y = native.conv2dForward(a, w, null, [1, 1], [1, 1], [1, 1], 1);
    native.setOption('cuda', 'allowTF32', 0);
    const yg = native.conv2dForward(ag, wg, null, [1, 1], [1, 1], [1, 1], 1);
    native.setOption('cuda', 'allowTF32', 1);
    expectClose(native.readSync(yg), Array.from(native.readSync(y)), 1e-4);
    expect(read(native.full([3], 'float32', 'cuda', 2))).to.deep.equal([2, 2, 2]);
    const pool = native.maxPool2dForward(ag, [2, 2], [2, 2], [0, 0]);
    expectClose(native.readSync(pool.y), Array.from(native.readSync(native.maxPool2dForward(a, [2, 2], [2, 2], [0, 0]).y)));
    const stats = native.memoryStats('cuda');
    expect(stats.allocated).to.be.above(0);
    native.synchronize('cuda');
  });

  it('inputs on different devices are refused naming the argument', function () {
    expectThrow(() => native.add(f32([1]), native.to(f32([1]), 'cuda', 'float32', false)), RangeError,
      'add: argument "b" expected a tensor on cpu (the device of "a")');
  });

  it('a layout change on cuda converts: NCHW -> channels-last on the GPU -> NCHW on the CPU keeps the values', function () {
    const values = Array.from({ length: 2 * 3 * 2 * 2 }, (_, i) => i - 7);
    const nhwc = native.to(f32(values, [2, 3, 2, 2]), 'cuda', 'float32', true);
    expect(nhwc.channelsLast).to.equal(true);
    expect(nhwc.shape).to.deep.equal([2, 3, 2, 2]);
    expect(read(native.to(nhwc, 'cpu', 'float32', false))).to.deep.equal(values);
  });
});
