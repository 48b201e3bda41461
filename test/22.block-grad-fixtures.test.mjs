// ResidualBlock backward against PyTorch (tools/gen_fixtures.py): one train-mode forward,
// y.backward(gy) with the fixture's fixed upstream gradient, then x.grad and every parameter's
// .grad. Every backend in availableDevices() runs every case, in channels-last too where the
// backend computes it natively.
import { expect } from 'chai';

import { availableDevices, capabilities, ResidualBlock } from '../dist/index.js';
import {
  BLOCK_CASES, TOLERANCE, blockArgs, deviceFormats, deviceTitle, loadBlockFixture, maxAbs, maxRelErr, values,
} from './helpers/block-fixtures.mjs';

for (const [device, memoryFormat] of deviceFormats(availableDevices(), capabilities)) {
  describe(deviceTitle('ResidualBlock gradients vs PyTorch', device, memoryFormat), () => {
    for (const name of BLOCK_CASES) {
      it(`block_${name}: dx and the gradient of every parameter`, () => {
        const fx = loadBlockFixture(name);
        const blk = new ResidualBlock(...blockArgs(fx.params, device));
        const sd = fx.stateDict(device);
        const x = fx.tensor('x', device, { requiresGrad: true, memoryFormat });
        const gy = fx.tensor('gy', device, { memoryFormat });
        try {
          blk.loadStateDict(sd);
          blk.to({ memoryFormat });
          blk.train();
          const y = blk.forward(x);
          expect(y.shape).to.deep.equal(fx.outputShape);
          y.backward(gy);
          y.dispose();

          expect(x.grad, 'x.grad').to.not.equal(null);
          expect(x.grad.shape).to.deep.equal(fx.entry('dx').shape);
          expect(x.grad.memoryFormat).to.equal(memoryFormat);
          expect(maxRelErr(values(x.grad), fx.entry('dx').data), 'dx max rel err').to.be.at.most(TOLERANCE);

          const params = blk.namedParameters();
          expect(params.map(([n]) => n)).to.have.members(fx.gradKeys);
          for (const [pname, p] of params) {
            const expected = fx.entry(`grad.${pname}`);
            expect(p.grad, `${pname}.grad`).to.not.equal(null);
            expect(p.grad.shape, pname).to.deep.equal(expected.shape);
            // conv1/conv2 biases feed a train-mode BN: their exact gradient is 0, so measure the
            // error against that BN's beta gradient (same channels, same upstream sum).
            const scaleKey = fx.zeroGrads[`grad.${pname}`];
            const scale = scaleKey === undefined ? undefined : maxAbs(fx.entry(scaleKey).data);
            const err = maxRelErr(values(p.grad), expected.data, scale);
            expect(err, `grad.${pname} max rel err`).to.be.at.most(TOLERANCE);
          }
        } finally {
          for (const t of Object.values(sd)) t.dispose();
          x.zeroGrad();
          x.dispose();
          gy.dispose();
          blk.zeroGrad();
          blk.dispose();
        }
      });
    }

    it('accumulates: two backward passes give twice the gradients', () => {
      const fx = loadBlockFixture('5_7_1x1_s2');
      const blk = new ResidualBlock(...blockArgs(fx.params, device));
      const sd = fx.stateDict(device);
      const x = fx.tensor('x', device, { requiresGrad: true });
      const gy = fx.tensor('gy', device);
      blk.loadStateDict(sd);
      blk.train();
      for (let i = 0; i < 2; i++) {
        const y = blk.forward(x);
        y.backward(gy);
        y.dispose();
      }
      const twice = Float64Array.from(fx.entry('grad.conv1.weight').data, (v) => 2 * v);
      expect(maxRelErr(blk.conv1.weight.grad.toArraySync(), twice)).to.be.at.most(TOLERANCE);
      const dx2 = Float64Array.from(fx.entry('dx').data, (v) => 2 * v);
      expect(maxRelErr(x.grad.toArraySync(), dx2)).to.be.at.most(TOLERANCE);
      for (const t of Object.values(sd)) t.dispose();
      for (const t of [x, gy]) { t.zeroGrad(); t.dispose(); }
      blk.zeroGrad();
      blk.dispose();
    });
  });
}
