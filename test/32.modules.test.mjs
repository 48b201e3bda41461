import { expect } from 'chai';
import { createRequire } from 'node:module';
import { forEachDevice } from './support/devices.mjs';

const require = createRequire(import.meta.url);
const lib = require('../dist/index.js');
const { Tensor, tensor, randn, zeros, manualSeed, noGrad, ResidualBlock, Conv2d, BatchNorm2d, Linear, resnet18, Sequential, ReLU } = lib;

forEachDevice('modules', (device) => {
  it("gives the seed's shapes: (3,3) keeps [1,3,224,224]; (3,6,use1x1conv,strides 2) gives [1,6,112,112]", () => {
    manualSeed(0);
    const X = Tensor.randn([1, 3, 224, 224], { device });
    noGrad(() => {
      const y1 = new ResidualBlock(3, 3, { device }).forward(X);
      expect(y1.shape).to.deep.equal([1, 3, 224, 224]);
      const y2 = new ResidualBlock(3, 6, { use1x1conv: true, strides: 2, device }).forward(X);
      expect(y2.shape).to.deep.equal([1, 6, 112, 112]);
      // The block ends with ReLU.
      expect(Math.min(...y2.toArraySync())).to.be.at.least(0);
    });
  });

  it("names its state like PyTorch's block, including num_batches_tracked as int64", () => {
    const blk = new ResidualBlock(3, 6, { use1x1conv: true, strides: 2, device });
    const sd = blk.stateDict();
    expect(Object.keys(sd)).to.deep.equal([
      'conv1.weight', 'conv1.bias',
      'bn1.weight', 'bn1.bias', 'bn1.running_mean', 'bn1.running_var', 'bn1.num_batches_tracked',
      'conv2.weight', 'conv2.bias',
      'bn2.weight', 'bn2.bias', 'bn2.running_mean', 'bn2.running_var', 'bn2.num_batches_tracked',
      'conv3.weight', 'conv3.bias',
    ]);
    expect(sd['bn1.num_batches_tracked'].dtype).to.equal('int64');
    expect(sd['conv1.weight'].shape).to.deep.equal([6, 3, 3, 3]);
    expect(sd['conv3.weight'].shape).to.deep.equal([6, 3, 1, 1]);
    expect(Object.keys(new ResidualBlock(3, 3, { device }).stateDict())).to.not.include('conv3.weight');
    expect(blk.parameters().length).to.equal(10);
  });

  it("uses PyTorch's default init: kaiming-uniform(a=sqrt 5) weights, uniform bias, BN 1/0", () => {
    manualSeed(1);
    const conv = new Conv2d(64, 64, 3, { device });
    const bound = 1 / Math.sqrt(64 * 9);
    const w = conv.weight.toArraySync();
    expect(Math.max(...w)).to.be.at.most(bound).and.above(bound * 0.99);
    expect(Math.min(...w)).to.be.at.least(-bound).and.below(-bound * 0.99);
    const b = conv.bias.toArraySync();
    expect(Math.max(...b.map(Math.abs))).to.be.at.most(bound);
    const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
    expect(std).to.be.closeTo(bound / Math.sqrt(3), bound * 0.02);
    const bn = new BatchNorm2d(4, { device });
    expect(Array.from(bn.weight.toArraySync())).to.deep.equal([1, 1, 1, 1]);
    expect(Array.from(bn.bias.toArraySync())).to.deep.equal([0, 0, 0, 0]);
    expect(Array.from(bn.runningVar.toArraySync())).to.deep.equal([1, 1, 1, 1]);
  });

  it('train() updates running statistics and num_batches_tracked; eval() uses them', () => {
    const bn = new BatchNorm2d(2, { device });
    // channel 0 holds 1..8, channel 1 holds 10.
    const data = new Float32Array(16);
    for (let i = 0; i < 8; i++) { data[i] = i + 1; data[8 + i] = 10; }
    const x = tensor(data, [1, 2, 2, 4], { device });
    bn.train();
    const y = bn.forward(x).toArraySync();
    const mean = 4.5;
    const biasedVar = 5.25;
    expect(y[0]).to.be.closeTo((1 - mean) / Math.sqrt(biasedVar + 1e-5), 1e-5);
    expect(bn.numBatchesTracked).to.equal(1);
    const rm = bn.runningMean.toArraySync();
    const rv = bn.runningVar.toArraySync();
    expect(rm[0]).to.be.closeTo(0.1 * mean, 1e-6);
    expect(rm[1]).to.be.closeTo(1.0, 1e-6);
    expect(rv[0]).to.be.closeTo(0.9 + 0.1 * (biasedVar * 8 / 7), 1e-6);
    expect(rv[1]).to.be.closeTo(0.9, 1e-6);
    bn.eval();
    const ye = bn.forward(x).toArraySync();
    expect(ye[0]).to.be.closeTo((1 - rm[0]) / Math.sqrt(rv[0] + 1e-5), 1e-5);
    expect(bn.numBatchesTracked).to.equal(1);
  });

  it("builds d2l's ResNet-18 with PyTorch's nn.Sequential names and 11.18M parameters", () => {
    const net = resnet18({ numClasses: 10, inChannels: 1, device });
    const keys = Object.keys(net.stateDict());
    expect(keys[0]).to.equal('0.0.weight');
    expect(keys).to.include.members(['0.1.running_var', '1.0.conv1.weight', '2.0.conv3.weight', '4.1.bn2.num_batches_tracked', '7.weight', '7.bias']);
    expect(net.numParameters()).to.equal(11178378);
    const x = randn([2, 1, 32, 32], { device });
    const logits = noGrad(() => net.eval().forward(x));
    expect(logits.shape).to.deep.equal([2, 10]);
    net.dispose();
  });

  it('rejects bad arguments with TypeError/RangeError naming the argument', () => {
    expect(() => new ResidualBlock(0, 3)).to.throw(RangeError, /inputChannels.*received 0/);
    expect(() => new ResidualBlock(3, -1)).to.throw(RangeError, /numChannels.*received -1/);
    expect(() => new ResidualBlock(3, 2.5)).to.throw(RangeError, /numChannels.*received 2.5/);
    expect(() => new ResidualBlock('3', 3)).to.throw(TypeError, /inputChannels/);
    expect(() => new ResidualBlock(3, 3, { strides: 0 })).to.throw(RangeError, /strides.*received 0/);
    expect(() => new ResidualBlock(3, 3, { strides: 1.5 })).to.throw(RangeError, /strides.*received 1.5/);
    expect(() => new ResidualBlock(3, 3, { use1x1conv: 'yes' })).to.throw(TypeError, /use1x1conv/);
    const blk = new ResidualBlock(3, 3, { device });
    expect(() => blk.forward(zeros([3, 8, 8], { device }))).to.throw(RangeError, /x.*4-D tensor \(N, 3, H, W\).*\[3, 8, 8\]/);
    expect(() => blk.forward(zeros([1, 4, 8, 8], { device }))).to.throw(RangeError, /x.*\(N, 3, H, W\).*\[1, 4, 8, 8\]/);
    expect(() => blk.forward('x')).to.throw(TypeError, /x/);
    const dead = zeros([1, 3, 8, 8], { device });
    dead.dispose();
    expect(() => blk.forward(dead)).to.throw(/disposed/);
    expect(() => tensor(new Float32Array(5), [2, 3], { device })).to.throw(RangeError, /length 6/);
  });

  it('loadStateDict rejects missing, extra and mis-shaped entries and changes nothing', () => {
    const a = new ResidualBlock(3, 3, { device });
    const b = new ResidualBlock(3, 3, { device });
    const before = Array.from(b.conv1.weight.toArraySync());
    const sd = a.stateDict();
    const { ['bn2.bias']: _dropped, ...missing } = sd;
    expect(() => b.loadStateDict(missing)).to.throw(RangeError, /"bn2\.bias".*missing/);
    expect(() => b.loadStateDict({ ...sd, 'conv9.weight': sd['conv1.weight'] })).to.throw(RangeError, /unexpected key "conv9\.weight"/);
    expect(() => b.loadStateDict({ ...sd, 'bn1.weight': zeros([4], { device }) })).to.throw(RangeError, /shape \[3\] for stateDict\["bn1\.weight"\] but received shape \[4\]/);
    expect(() => b.loadStateDict({ ...sd, 'conv1.bias': [1, 2, 3] })).to.throw(TypeError, /a Tensor for stateDict\["conv1\.bias"\]/);
    expect(() => b.loadStateDict(null)).to.throw(TypeError, /stateDict/);
    expect(Array.from(b.conv1.weight.toArraySync())).to.deep.equal(before);
    b.loadStateDict(sd);
    expect(Array.from(b.conv1.weight.toArraySync())).to.deep.equal(Array.from(a.conv1.weight.toArraySync()));
  });

  it('Sequential composes and disposes intermediates; module.to moves parameters in place', () => {
    const net = new Sequential(new Conv2d(1, 2, 3, { padding: 1, device }), new ReLU(), new BatchNorm2d(2, { device }));
    const w = net.parameters()[0];
    const x = randn([2, 1, 5, 5], { device });
    const y = net.forward(x);
    expect(y.shape).to.deep.equal([2, 2, 5, 5]);
    expect(x.isDisposed).to.equal(false);
    net.to({ dtype: 'float64' });
    expect(net.parameters()[0]).to.equal(w);
    expect(w.dtype).to.equal('float64');
    expect(String(net)).to.match(/Conv2d\(1, 2, kernelSize=\[3,3\]/);
    const lin = new Linear(4, 2, { device });
    expect(() => lin.forward(zeros([3, 5], { device }))).to.throw(RangeError, /\(N, 4\) for Linear: x/);
  });
});
