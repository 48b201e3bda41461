// ResidualBlock forward against PyTorch (tools/gen_fixtures.py): train-mode output, running
// statistics and num_batches_tracked after one train forward, then eval-mode output with those
// updated statistics. Every backend in availableDevices() runs every case, in channels-last too
// where the backend computes it natively.
import { expect } from 'chai';

import { availableDevices, capabilities, noGrad, ResidualBlock, randn, manualSeed } from '../dist/index.js';
import {
  BLOCK_CASES, TOLERANCE, blockArgs, deviceFormats, deviceTitle, loadBlockFixture, maxRelErr, values,
} from './helpers/block-fixtures.mjs';

for (const [device, memoryFormat] of deviceFormats(availableDevices(), capabilities)) {
  describe(deviceTitle('ResidualBlock forward vs PyTorch', device, memoryFormat), () => {
    for (const name of BLOCK_CASES) {
      it(`block_${name}: y_train, running stats, num_batches_tracked, y_eval`, () => {
        const fx = loadBlockFixture(name);
        const blk = new ResidualBlock(...blockArgs(fx.params, device));
        const sd = fx.stateDict(device);
        const x = fx.tensor('x', device, { memoryFormat });
        try {
          expect(Object.keys(blk.stateDict())).to.have.members(fx.sdKeys);
          blk.loadStateDict(sd);
          blk.to({ memoryFormat });

          blk.train();
          const yTrain = noGrad(() => blk.forward(x));
          expect(yTrain.shape).to.deep.equal(fx.outputShape);
          expect(yTrain.device).to.equal(device);
          expect(yTrain.memoryFormat).to.equal(memoryFormat);
          const errTrain = maxRelErr(values(yTrain), fx.entry('y_train').data);
          expect(errTrain, `y_train max rel err`).to.be.at.most(TOLERANCE);
          yTrain.dispose();

          const after = blk.stateDict();
          for (const key of fx.afterKeys) {
            const expected = fx.entry(`after.${key}`);
            const actual = after[key];
            expect(actual, key).to.not.equal(undefined);
            expect(actual.shape, key).to.deep.equal(expected.shape);
            if (key.endsWith('num_batches_tracked')) {
              expect(actual.dtype, key).to.equal('int64');
              expect(Array.from(actual.toArraySync()), key).to.deep.equal(Array.from(expected.data));
            } else {
              expect(maxRelErr(values(actual), expected.data), `${key} max rel err`).to.be.at.most(TOLERANCE);
            }
          }

          blk.eval();
          const yEval = noGrad(() => blk.forward(x));
          expect(maxRelErr(values(yEval), fx.entry('y_eval').data), 'y_eval max rel err').to.be.at.most(TOLERANCE);
          yEval.dispose();
          // eval does not touch the running statistics
          expect(Array.from(blk.bn1.runningMean.toArraySync())).to.deep.equal(Array.from(after['bn1.running_mean'].toArraySync()));
        } finally {
          for (const t of Object.values(sd)) t.dispose();
          x.dispose();
          blk.dispose();
        }
      });
    }

    it('loads the PyTorch state dict exactly', () => {
      const fx = loadBlockFixture('5_7_1x1_s2_perturbed');
      const blk = new ResidualBlock(...blockArgs(fx.params, device));
      const sd = fx.stateDict(device);
      blk.loadStateDict(sd);
      const mine = blk.stateDict();
      for (const key of fx.sdKeys) {
        expect(Array.from(mine[key].toArraySync()), key).to.deep.equal(Array.from(fx.entry(`sd.${key}`).data));
      }
      expect(blk.bn1.numBatchesTracked).to.equal(5);
      for (const t of Object.values(sd)) t.dispose();
      blk.dispose();
    });

    // The seed notebook's 224x224 shapes are too big for a numeric fixture; check shapes only.
    it("seed notebook shapes: [1, 3, 224, 224] -> (3, 3): [1, 3, 224, 224]; (3, 6, use1x1conv, strides 2): [1, 6, 112, 112]", () => {
      manualSeed(0);
      const x = randn([1, 3, 224, 224], { device }).to({ memoryFormat });
      const same = new ResidualBlock(3, 3, { device }).to({ memoryFormat });
      const strided = new ResidualBlock(3, 6, { use1x1conv: true, strides: 2, device }).to({ memoryFormat });
      const y1 = noGrad(() => same.forward(x));
      const y2 = noGrad(() => strided.forward(x));
      expect(y1.shape).to.deep.equal([1, 3, 224, 224]);
      expect(y2.shape).to.deep.equal([1, 6, 112, 112]);
      for (const t of [x, y1, y2]) t.dispose();
      same.dispose();
      strided.dispose();
    });
  });
}

describe('block fixtures', () => {
  it('are consistent with themselves (PyTorch float32 is within the tolerance of the float64 reference)', () => {
    for (const name of BLOCK_CASES) {
      const fx = loadBlockFixture(name);
      for (const [key, err] of Object.entries(fx.torchFloor)) expect(err, `${name} ${key}`).to.be.below(TOLERANCE / 10);
      expect(fx.entry('gy').shape).to.deep.equal(fx.outputShape);
      expect(fx.entry('sd.bn1.num_batches_tracked')).to.deep.include({ dtype: 'I64', shape: [] });
    }
  });
});
