// Mixed precision options: accepted everywhere (float32 compute on the CPU backend), validated,
// and the loss scaler's arithmetic.
import { expect } from 'chai';
import { createRequire } from 'node:module';
import { forEachDevice } from './support/devices.mjs';

const require = createRequire(import.meta.url);
const lib = require('../dist/index.js');
const { autocast, isAutocastEnabled, GradScaler, ResidualBlock, SGD, randn, rand, tensor, manualSeed, noGrad, resnet18, crossEntropy } = lib;

describe('autocast options', function () {
  it('validates its options and restores the previous state, also after a throw', function () {
    expect(() => autocast({ dtype: 'int8' }, () => 0)).to.throw(RangeError, /options\.dtype/);
    expect(() => autocast({ enabled: 'yes' }, () => 0)).to.throw(TypeError, /options\.enabled/);
    expect(() => autocast('bfloat16')).to.throw(TypeError, /fn/);
    expect(autocast('float16', () => isAutocastEnabled())).to.equal(true);
    expect(() => autocast('bfloat16', () => { throw new Error('boom'); })).to.throw('boom');
    expect(isAutocastEnabled()).to.equal(false);
  });
});

forEachDevice('mixed precision', (device) => {
  it('model.to({ dtype: "bfloat16", memoryFormat: "channelsLast" }) keeps float32 masters', function () {
    manualSeed(0);
    const blk = new ResidualBlock(3, 6, { use1x1conv: true, strides: 2, device });
    blk.to({ device, dtype: 'bfloat16', memoryFormat: device === 'cpu' ? 'channelsLast' : 'contiguous' });
    for (const p of blk.parameters()) expect(p.dtype).to.equal('float32');
    expect(blk.conv1.computeDtype).to.equal('bfloat16');
    expect(() => blk.to({ dtype: 'int8' })).to.throw(RangeError, /dtype/);
    blk.dispose();
  });

  it('the mixed-precision block matches the float32 block (exactly on CPU, within bf16 tolerance on CUDA)', function () {
    manualSeed(1);
    const blk = new ResidualBlock(8, 8, { device });
    const x = randn([4, 8, 10, 10], { device });
    const ref = noGrad(() => blk.forward(x)).toArraySync();
    blk.to({ dtype: 'bfloat16' });
    const mixed = noGrad(() => blk.forward(x)).toArraySync();
    const scoped = noGrad(() => autocast('bfloat16', () => { blk.to({ dtype: 'float32' }); return blk.forward(x); })).toArraySync();
    let maxDiff = 0;
    let scale = 0;
    for (let i = 0; i < ref.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(mixed[i] - ref[i]), Math.abs(scoped[i] - ref[i]));
      scale = Math.max(scale, Math.abs(ref[i]));
    }
    if (device === 'cpu') expect(maxDiff).to.equal(0);
    else expect(maxDiff / scale).to.be.below(1e-2);
  });

  it('GradScaler scales the loss, unscales the gradients, skips steps on overflow and adapts the scale', function () {
    const p = tensor([1, 2], { device, requiresGrad: true });
    const opt = new SGD([p], { lr: 0.5 });
    const scaler = new GradScaler({ initScale: 1024, growthInterval: 2 });
    const loss = p.sum();
    scaler.scale(loss).backward();
    expect(Array.from(p.grad.toArraySync())).to.deep.equal([1024, 1024]);
    expect(scaler.step(opt)).to.equal(true);
    expect(Array.from(p.toArraySync())).to.deep.equal([0.5, 1.5]);
    scaler.update();
    opt.zeroGrad();
    p.grad = tensor([Infinity, 1], { device });
    expect(scaler.step(opt)).to.equal(false);
    expect(Array.from(p.toArraySync())).to.deep.equal([0.5, 1.5]);
    scaler.update();
    expect(scaler.getScale()).to.equal(512);
    for (let i = 0; i < 2; i++) {
      p.grad = tensor([0, 0], { device });
      scaler.step(opt);
      scaler.update();
    }
    expect(scaler.getScale()).to.equal(1024);
    expect(() => new GradScaler({ backoffFactor: 2 })).to.throw(RangeError, /backoffFactor/);
  });
});

forEachDevice('channels-last memory format', (device) => {
  it('round-trips values through channelsLast and back to the CPU', function () {
    const values = Float32Array.from({ length: 2 * 3 * 4 * 5 }, (_, i) => i);
    const x = tensor(values, [2, 3, 4, 5], { device });
    const cl = x.to({ memoryFormat: 'channelsLast' });
    expect(cl.memoryFormat).to.equal('channelsLast');
    // the CPU keeps channelsLast too: toArraySync reads memory order, so ask for NCHW
    expect(cl.to('cpu').memoryFormat).to.equal('channelsLast');
    expect(Array.from(cl.to({ device: 'cpu', memoryFormat: 'contiguous' }).toArraySync())).to.deep.equal(Array.from(values));
    expect(Array.from(cl.to({ memoryFormat: 'contiguous' }).toArraySync())).to.deep.equal(Array.from(values));
  });

  it('a channels-last block computes what the contiguous block computes, forward and backward', function () {
    manualSeed(2);
    const blk = new ResidualBlock(4, 8, { use1x1conv: true, strides: 2, device });
    const x = randn([2, 4, 9, 9], { device, requiresGrad: true });
    const y = blk.forward(x);
    const ref = y.toArraySync();
    y.sum().backward();
    const gref = x.grad.toArraySync();
    x.zeroGrad();
    blk.to({ memoryFormat: 'channelsLast' });
    const y2 = blk.forward(x);
    y2.sum().backward();
    const a = y2.to({ device: 'cpu', memoryFormat: 'contiguous' }).toArraySync();
    const g = x.grad.toArraySync();
    const tol = device === 'cuda' ? 1e-2 : 1e-5;  // the CPU sums NHWC in another order
    for (let i = 0; i < ref.length; i++) expect(Math.abs(a[i] - ref[i])).to.be.at.most(tol * (1 + Math.abs(ref[i])));
    for (let i = 0; i < g.length; i++) expect(Math.abs(g[i] - gref[i])).to.be.at.most(tol * (1 + Math.abs(gref[i])) + 1e-6);
  });

  it('a channels-last ResNet-18 training step matches the contiguous one (pooling, Flatten and the head included)', function () {
    // float64 on the CPU, so only a wrong result (not float32 rounding through 18 layers) can differ
    const dtype = device === 'cuda' ? 'float32' : 'float64';
    const x = rand([2, 1, 28, 28], { device, dtype });
    const labels = tensor(Int32Array.from([3, 7]), [2], { device, dtype: 'int32' });
    const step = (memoryFormat) => {
      manualSeed(4);
      const model = resnet18({ numClasses: 10, inChannels: 1, device }).to({ memoryFormat, dtype });
      const loss = crossEntropy(model.forward(x), labels);
      loss.backward();
      const w = model.parameters()[0];
      const out = { loss: loss.itemSync(), grad: w.grad.to({ device: 'cpu', memoryFormat: 'contiguous' }).toArraySync() };
      expect(w.memoryFormat).to.equal(memoryFormat);
      model.dispose();
      return out;
    };
    const ref = step('contiguous');
    const cl = step('channelsLast');
    const tol = device === 'cuda' ? 1e-2 : 1e-9;
    expect(Math.abs(cl.loss - ref.loss)).to.be.at.most(tol * (1 + Math.abs(ref.loss)));
    let big = 0;
    for (const v of ref.grad) big = Math.max(big, Math.abs(v));
    for (let i = 0; i < ref.grad.length; i++) expect(Math.abs(cl.grad[i] - ref.grad[i])).to.be.at.most(tol * big);
  });
});
