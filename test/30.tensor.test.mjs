import { expect } from 'chai';
import { createRequire } from 'node:module';
import { forEachDevice } from './support/devices.mjs';

const require = createRequire(import.meta.url);
const lib = require('../dist/index.js');
const { Tensor, tensor, zeros, ones, full, randn, rand, manualSeed } = lib;

forEachDevice('Tensor', (device) => {
  it('round-trips typed arrays and nested arrays with shapes and dtypes', async () => {
    const a = tensor(Float32Array.of(1, 2, 3, 4, 5, 6), [2, 3], { device });
    expect(a.shape).to.deep.equal([2, 3]);
    expect(a.dtype).to.equal('float32');
    expect(a.device).to.equal(device);
    expect(Array.from(a.toArraySync())).to.deep.equal([1, 2, 3, 4, 5, 6]);
    expect(Array.from(await a.toArray())).to.deep.equal([1, 2, 3, 4, 5, 6]);
    const b = tensor([[1.5, -2], [3, 4]], { device });
    expect(b.shape).to.deep.equal([2, 2]);
    expect(b.tolistSync()).to.deep.equal([[1.5, -2], [3, 4]]);
    const c = tensor(Float64Array.of(0.1, 0.2), [2], { device });
    expect(c.dtype).to.equal('float64');
    expect(Array.from(c.toArraySync())).to.deep.equal([0.1, 0.2]);
    const d = tensor(Int32Array.of(7, -8), [2], { device });
    expect(d.dtype).to.equal('int32');
    expect(Array.from(d.toArraySync())).to.deep.equal([7, -8]);
    const e = tensor(7, { device });
    expect(e.shape).to.deep.equal([]);
    expect(e.itemSync()).to.equal(7);
    expect(await e.item()).to.equal(7);
    for (const t of [a, b, c, d, e]) t.dispose();
  });

  it('creates zeros, ones, full and seeded random tensors', () => {
    expect(Array.from(zeros([3], { device }).toArraySync())).to.deep.equal([0, 0, 0]);
    expect(Array.from(ones([2], { device, dtype: 'float64' }).toArraySync())).to.deep.equal([1, 1]);
    expect(Array.from(full([2], 2.5, { device }).toArraySync())).to.deep.equal([2.5, 2.5]);
    manualSeed(42);
    const r1 = randn([1000], { device }).toArraySync();
    manualSeed(42);
    const r2 = Tensor.randn([1000], { device }).toArraySync();
    expect(Array.from(r1)).to.deep.equal(Array.from(r2));
    const mean = r1.reduce((s, v) => s + v, 0) / r1.length;
    const variance = r1.reduce((s, v) => s + (v - mean) ** 2, 0) / r1.length;
    expect(Math.abs(mean)).to.be.below(0.1);
    expect(Math.abs(variance - 1)).to.be.below(0.15);
    const u = rand([1000], { device, low: -2, high: 3 }).toArraySync();
    expect(Math.min(...u)).to.be.at.least(-2);
    expect(Math.max(...u)).to.be.below(3);
  });

  it('dispose is idempotent, isDisposed tells, using disposes, and use after dispose throws', () => {
    const t = zeros([4], { device });
    expect(t.isDisposed).to.equal(false);
    t.dispose();
    t.dispose();
    expect(t.isDisposed).to.equal(true);
    expect(() => t.toArraySync()).to.throw(/disposed/);
    expect(() => lib.functional.relu(t)).to.throw(/disposed/);
    // `using u = ...` calls this at the end of the block (Node 20 parses `using` only in
    // compiled TypeScript, as in examples/seed.ts).
    const u = ones([2], { device });
    expect(typeof u[Symbol.dispose]).to.equal('function');
    u[Symbol.dispose]();
    expect(u.isDisposed).to.equal(true);
  });

  it('reshape, flatten and detach share storage; clone copies', () => {
    const a = tensor(Float32Array.from({ length: 24 }, (_, i) => i), [2, 3, 4], { device });
    const b = a.reshape([4, -1]);
    expect(b.shape).to.deep.equal([4, 6]);
    expect(a.flatten(1).shape).to.deep.equal([2, 12]);
    a.dispose();
    expect(b.toArraySync()[23]).to.equal(23);
    const c = b.clone();
    expect(Array.from(c.toArraySync())).to.deep.equal(Array.from(b.toArraySync()));
    expect(() => b.reshape([5, 5])).to.throw(RangeError, /24 elements/);
  });

  it('clone keeps the memory format, and its gradient flows back', () => {
    const x = tensor(Float32Array.from({ length: 24 }, (_, i) => i), [1, 2, 3, 4], { device, requiresGrad: true });
    const cl = x.to({ memoryFormat: 'channelsLast' });
    const c = cl.clone();
    expect(c.memoryFormat).to.equal(cl.memoryFormat);
    expect(Array.from(c.to({ memoryFormat: 'contiguous' }).toArraySync())).to.deep.equal(Array.from(x.toArraySync()));
    c.sum().backward();
    expect(Array.from(x.grad.toArraySync())).to.deep.equal(new Array(24).fill(1));
  });

  it('converts between dtypes and devices', () => {
    const a = tensor([1.25, -2.5, 3], { device });
    const b = a.to('float64');
    expect(b.dtype).to.equal('float64');
    expect(Array.from(b.toArraySync())).to.deep.equal([1.25, -2.5, 3]);
    const h = a.to('bfloat16');
    expect(Array.from(h.toArraySync())).to.deep.equal([1.25, -2.5, 3]);
    const c = a.to({ device: 'cpu' });
    expect(c.device).to.equal('cpu');
    expect(Array.from(c.toArraySync())).to.deep.equal([1.25, -2.5, 3]);
  });

  it('copy_ converts values into its own storage; set_ takes another tensor\'s storage, same object', () => {
    const target = zeros([3], { device });
    const src = tensor(Float64Array.of(1.5, -2, 4), [3], { device: 'cpu' });
    expect(target.copy_(src)).to.equal(target);
    expect(target.dtype).to.equal('float32');
    expect(target.device).to.equal(device);
    expect(Array.from(target.toArraySync())).to.deep.equal([1.5, -2, 4]);
    expect(() => target.copy_(zeros([2], { device }))).to.throw(RangeError, /shape \[3\] for src/);
    const other = tensor([[7, 8]], { device, dtype: 'float64' });
    expect(target.set_(other)).to.equal(target);
    expect(target.shape).to.deep.equal([1, 2]);
    expect(target.dtype).to.equal('float64');
    other.dispose();  // the storage is shared: target keeps it alive
    expect(target.tolistSync()).to.deep.equal([[7, 8]]);
    expect(() => target.set_(other)).to.throw(/disposed/);
    for (const t of [target, src]) t.dispose();
  });

  it('rejects bad input with errors naming the argument', () => {
    expect(() => tensor(Float32Array.of(1, 2, 3), [2, 2], { device })).to.throw(RangeError, /length 4.*for data but received length 3/);
    expect(() => tensor([[1, 2], [3]], { device })).to.throw(RangeError, /data\[1\]/);
    expect(() => zeros([2, -1], { device })).to.throw(RangeError, /shape\[1\]/);
    expect(() => zeros([2.5], { device })).to.throw(RangeError, /shape\[0\]/);
    expect(() => zeros([2], { device, dtype: 'float8' })).to.throw(RangeError, /options\.dtype.*float8/);
    expect(() => zeros([2], { device: 'tpu' })).to.throw(RangeError, /options\.device/);
    expect(() => tensor('abc', { device })).to.throw(TypeError, /data/);
    expect(() => tensor([1], { device }).itemSync.call(tensor([1, 2], { device }))).to.throw(RangeError, /one element/);
  });
});

describe('capabilities(device)', function () {
  it('says what the backend computes natively, as backendInfo() does, and names a bad device', function () {
    const cpu = lib.capabilities('cpu');
    expect(cpu).to.deep.equal({ channelsLast: true, maxPoolKeepsIndices: true, fusedBnAddRelu: true, fusedBnRelu: true, hostVisibleMemory: true });
    expect(lib.backendInfo().cpu.capabilities).to.deep.equal(cpu);
    expect(() => lib.capabilities('tpu')).to.throw(RangeError, /device/);
    if (lib.backendInfo().cuda.available) {
      expect(lib.capabilities('cuda')).to.deep.equal({ channelsLast: true, maxPoolKeepsIndices: true, fusedBnAddRelu: true, fusedBnRelu: false, hostVisibleMemory: false });
    } else {
      expect(() => lib.capabilities('cuda')).to.throw(RangeError, /CUDA is not available/);
    }
  });
});
