import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { forEachDevice, maxRelErr } from './support/devices.mjs';

const require = createRequire(import.meta.url);
const lib = require('../dist/index.js');
const { tensor, noGrad, SGD, StepLR, functional: F } = lib;
const sgdFixture = JSON.parse(readFileSync(new URL('./fixtures/sgd.json', import.meta.url), 'utf8'));

const camel = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k.replace(/_(\w)/g, (_, c) => c.toUpperCase()), v]));

forEachDevice('autograd and SGD', (device) => {
  it('accumulates gradients across backward calls until zeroGrad, as PyTorch', () => {
    const w = tensor([1, 2, 3], { device, requiresGrad: true });
    const x = tensor([4, 5, 6], { device });
    F.add(w, x).relu().sum().backward();
    expect(Array.from(w.grad.toArraySync())).to.deep.equal([1, 1, 1]);
    F.add(w, w).sum().backward();
    expect(Array.from(w.grad.toArraySync())).to.deep.equal([3, 3, 3]);
    w.zeroGrad();
    expect(w.grad).to.equal(null);
  });

  it('sums a node\'s incoming gradients in place only into storage no one else holds', () => {
    const native = require('../dist/native.js').native;
    const accumulate = native.accumulate;
    const inPlace = [];
    native.accumulate = (dst, src) => { const r = accumulate(dst, src); inPlace.push(r); return r; };
    try {
      // add(t, t) hands t's node the same gradient twice: shared storage, summed out of place
      const x = tensor([1, -2, 3], { device, requiresGrad: true });
      const gy = tensor([0.5, 0.25, 2], { device });
      F.add(x.relu(), x.relu()).backward(gy);  // two fresh gradients for x: in place
      expect(inPlace).to.deep.equal([true]);
      expect(Array.from(x.grad.toArraySync())).to.deep.equal([1, 0, 4]);
      x.zeroGrad();
      const t = x.relu();
      F.add(t, t).backward(gy);
      expect(inPlace).to.deep.equal([true, false]);
      expect(Array.from(x.grad.toArraySync())).to.deep.equal([1, 0, 4]);
      expect(Array.from(gy.toArraySync()), 'the caller\'s gradient').to.deep.equal([0.5, 0.25, 2]);
    } finally {
      native.accumulate = accumulate;
    }
  });

  it('backward(gradient) never writes into the caller\'s gradient, through a view or on a leaf', () => {
    const x = tensor([1, 2, 3, 4], { device, requiresGrad: true });
    const gy = tensor([[1, 2], [3, 4]], { device });
    x.reshape([2, 2]).backward(gy);  // x.grad would be a view of gy's storage
    x.reshape([2, 2]).backward(gy);  // and accumulated in place
    expect(Array.from(x.grad.toArraySync())).to.deep.equal([2, 4, 6, 8]);
    const g1 = tensor([1, 1, 1, 1], { device });
    x.backward(g1);
    expect(Array.from(x.grad.toArraySync())).to.deep.equal([3, 5, 7, 9]);
    expect(Array.from(gy.toArraySync())).to.deep.equal([1, 2, 3, 4]);
    expect(Array.from(g1.toArraySync())).to.deep.equal([1, 1, 1, 1]);
    const leaf = tensor([5, 6], { device, requiresGrad: true });
    const g2 = tensor([1, 2], { device });
    leaf.backward(g2);
    leaf.backward(g2);
    expect(Array.from(leaf.grad.toArraySync())).to.deep.equal([2, 4]);
    expect(Array.from(g2.toArraySync())).to.deep.equal([1, 2]);
  });

  it('post-accumulate-grad hooks see the accumulated .grad; queueCallback runs after backward; remove() stops a hook', () => {
    const w = tensor([1, 2], { device, requiresGrad: true });
    const b = tensor([3], { device, requiresGrad: true });
    const seen = [];
    const h = w.registerPostAccumulateGradHook((t) => {
      seen.push(['w', Array.from(t.grad.toArraySync())]);
      lib.queueCallback(() => seen.push(['end', b.grad ? Array.from(b.grad.toArraySync()) : null]));
    });
    b.registerPostAccumulateGradHook((t) => seen.push(['b', Array.from(t.grad.toArraySync())]));
    F.add(F.add(w, w), tensor([0, 0], { device })).sum().backward();
    F.add(b, b).sum().backward();
    expect(seen).to.deep.equal([['w', [2, 2]], ['end', null], ['b', [2]]]); // add(w, w): one hook call with the sum
    h.remove();
    F.add(w, w).sum().backward();
    expect(seen).to.have.length(3);
    expect(Array.from(w.grad.toArraySync())).to.deep.equal([4, 4]);
    expect(() => lib.queueCallback(() => {})).to.throw(Error, /no backward pass is running/);
    expect(() => F.add(w, w).registerPostAccumulateGradHook(() => {})).to.throw(TypeError, /leaf/);
    expect(() => w.registerPostAccumulateGradHook(1)).to.throw(TypeError, /hook/);
  });

  it('needs a gradient for a non-scalar backward and frees the graph after backward', () => {
    const w = tensor([1, -2], { device, requiresGrad: true });
    const y = w.relu();
    expect(() => y.backward()).to.throw(TypeError, /gradient/);
    y.backward(tensor([5, 7], { device }));
    expect(Array.from(w.grad.toArraySync())).to.deep.equal([5, 0]);
    expect(() => y.backward(tensor([1, 1], { device }))).to.throw(/already freed/);
  });

  it('records nothing under noGrad', () => {
    const w = tensor([1, 2], { device, requiresGrad: true });
    const y = noGrad(() => w.relu());
    expect(y.requiresGrad).to.equal(false);
    expect(y.gradFn).to.equal(null);
    expect(lib.isGradEnabled()).to.equal(true);
  });

  for (const { options, trajectory } of sgdFixture.cases) {
    it(`SGD ${JSON.stringify(options)} follows torch.optim.SGD for 4 steps`, () => {
      for (const dtype of ['float64', 'float32']) {
        const p = tensor(Float64Array.from(sgdFixture.p0), [5], { device, dtype, requiresGrad: true });
        const opt = new SGD([p], camel(options));
        sgdFixture.grads.forEach((g, step) => {
          p.grad = tensor(Float64Array.from(g), [5], { device, dtype });
          opt.step();
          expect(maxRelErr(p.toArraySync(), trajectory[step]), `${dtype} step ${step}`).to.be.below(dtype === 'float64' ? 1e-12 : 1e-6);
        });
        opt.dispose();
      }
    });
  }

  it('cross-entropy rejects labels that are not class indices', () => {
    const z = tensor([[1, 2, 3], [0, 0, 0]], { device });
    expect(() => F.crossEntropy(z, tensor([0, 1], { device }))).to.throw(TypeError, /int32 tensor of class indices for labels/);
    expect(() => F.crossEntropy(z, tensor(Int32Array.of(0), [1], { device }))).to.throw(RangeError, /shape \[2\]/);
    if (device === 'cpu') expect(() => F.crossEntropy(z, tensor(Int32Array.of(0, 3), [2], { device }))).to.throw(RangeError, /\[0, 3\) for labels\[1\] but received 3/);
    else expect(F.crossEntropy(z, tensor(Int32Array.of(0, 3), [2], { device })).itemSync()).to.be.NaN;
  });

  it('validates SGD options and drives the learning rate from a scheduler', () => {
    const p = tensor([1], { device, requiresGrad: true });
    expect(() => new SGD([p], {})).to.throw(TypeError, /options\.lr/);
    expect(() => new SGD([p], { lr: -1 })).to.throw(RangeError, /options\.lr/);
    expect(() => new SGD([p], { lr: 0.1, nesterov: true })).to.throw(RangeError, /nesterov/);
    expect(() => new SGD([tensor([1], { device })], { lr: 0.1 })).to.throw(RangeError, /requires grad/);
    const opt = new SGD([p], { lr: 1 });
    const sched = new StepLR(opt, 2, 0.5);
    sched.step();
    expect(opt.lr).to.equal(1);
    sched.step();
    expect(opt.lr).to.equal(0.5);
  });
});
