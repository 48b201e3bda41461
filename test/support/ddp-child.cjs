// One rank of the data-parallel tests (test/91), started with RANK/WORLD_SIZE/MASTER_* set.
// argv: mode outFile. Modes:
//   steps    3 SGD steps of a BN-free model on this rank's half of a fixed batch; writes the parameters
//   bngrad   one backward of a model with BatchNorm; writes the (averaged) gradients
//   die      rank 1 exits during the second step; rank 0 writes the error it got
//   accum    noSync over two micro-batches, then a synced one; writes the gradients
const fs = require('node:fs');
const lib = require('../../dist/index.js');
const { distributed: dist, nn } = lib;
const [mode, outFile] = process.argv.slice(2);

function model(withBn) {
  lib.manualSeed(rankIndependentSeed);
  const layers = [new nn.Conv2d(3, 4, 3, { padding: 1 })];
  if (withBn) layers.push(new nn.BatchNorm2d(4));
  layers.push(new nn.ReLU(), new nn.Flatten(), new nn.Linear(4 * 5 * 5, 3));
  return new nn.Sequential(...layers);
}
const rankIndependentSeed = 1234;

/** The fixed batch of 8 images and labels; this rank's half (all of it for rank -1). */
function batch(rank, world) {
  const n = 8;
  const x = new Float32Array(n * 3 * 5 * 5).map((_, i) => Math.sin(i * 0.37) * 2);
  const y = Int32Array.from({ length: n }, (_, i) => i % 3);
  if (rank < 0) return { x: lib.tensor(x, [n, 3, 5, 5]), y: lib.tensor(y, [n], { dtype: 'int32' }) };
  const per = n / world, a = rank * per, size = 3 * 5 * 5;
  return {
    x: lib.tensor(x.subarray(a * size, (a + per) * size), [per, 3, 5, 5]),
    y: lib.tensor(y.subarray(a, a + per), [per], { dtype: 'int32' }),
  };
}

function dump(m, what) {
  const out = {};
  for (const [name, p] of m.namedParameters()) out[name] = Array.from((what === 'grad' ? p.grad : p).toArraySync());
  return out;
}

module.exports = { model, batch, dump };

if (require.main === module) {
  (async () => {
    await dist.initProcessGroup({ timeout: Number(process.env.TEST_DIST_TIMEOUT ?? 20000) });
    const rank = dist.getRank(), world = dist.getWorldSize();
    const net = model(mode === 'bngrad');
    const ddp = new lib.DistributedDataParallel(net, { bucketCapMB: 0.001 });
    const opt = new lib.SGD(net.parameters(), { lr: 0.1, momentum: 0.9 });
    const { x, y } = batch(rank, world);
    try {
      if (mode === 'steps' || mode === 'die') {
        for (let s = 0; s < 3; s++) {
          if (mode === 'die' && s === 1 && rank === 1) process.exit(9);
          opt.zeroGrad();
          lib.crossEntropy(ddp.forward(x), y).backward();
          opt.step();
        }
        fs.writeFileSync(outFile + rank, JSON.stringify({ params: dump(net), buckets: ddp.numBuckets }));
      } else if (mode === 'bngrad') {
        lib.crossEntropy(ddp.forward(x), y).backward();
        fs.writeFileSync(outFile + rank, JSON.stringify({ grads: dump(net, 'grad') }));
      } else if (mode === 'accum') {
        const half = x.shape[0] / 2;
        const xs = [lib.tensor(x.toArraySync().slice(0, half * 75), [half, 3, 5, 5]), lib.tensor(x.toArraySync().slice(half * 75), [half, 3, 5, 5])];
        const ys = [lib.tensor(y.toArraySync().slice(0, half), [half], { dtype: 'int32' }), lib.tensor(y.toArraySync().slice(half), [half], { dtype: 'int32' })];
        ddp.noSync(() => lib.crossEntropy(ddp.forward(xs[0]), ys[0]).backward());
        const local = dump(net, 'grad');
        lib.crossEntropy(ddp.forward(xs[1]), ys[1]).backward();
        fs.writeFileSync(outFile + rank, JSON.stringify({ local, grads: dump(net, 'grad') }));
      }
    } catch (e) {
      fs.writeFileSync(outFile + rank, JSON.stringify({ error: { name: e.name, message: e.message } }));
      process.exitCode = 3;
    } finally {
      dist.destroyProcessGroup();
    }
  })().catch((e) => {
    fs.writeFileSync(outFile + (process.env.RANK ?? ''), JSON.stringify({ error: { name: e.name, message: e.message } }));
    process.exitCode = 4;
  });
}
