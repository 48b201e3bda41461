// One rank of bench/ddp-cpu.mjs (started by `cudnn-resblock launch`): torchvision's ResNet-18 on
// float32 [B/world, 3, 32, 32] with DDP. Times, per step, (a) the DDP step (all-reduces overlap
// backward), (b) the same step with backward under noSync and then one all-reduce of every
// gradient (no overlap), and (c) that all-reduce alone. Rank 0 prints JSON.
const lib = require('../dist/index.js');
const { distributed: dist } = lib;
const [batch, warmup, iters] = process.argv.slice(2).map(Number);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

(async () => {
  await dist.initProcessGroup();
  const world = dist.getWorldSize();
  lib.manualSeed(0);
  const model = lib.models.resnet18({ numClasses: 10 });
  const ddp = world > 1 ? new lib.DistributedDataParallel(model) : model;
  const opt = new lib.SGD(model.parameters(), { lr: 0.01 });
  const per = batch / world;
  const x = lib.randn([per, 3, 32, 32]);
  const y = lib.tensor(Int32Array.from({ length: per }, (_, i) => i % 10), [per], { dtype: 'int32' });
  const grads = () => model.parameters().map((p) => p.grad);
  const step = (overlap) => {
    const logits = ddp.forward(x);
    const loss = lib.crossEntropy(logits, y);
    opt.zeroGrad();
    if (overlap || world === 1) loss.backward();
    else {
      ddp.noSync(() => loss.backward());
      dist.allReduceCoalescedAsync(grads(), 'avg').waitSync();
    }
    opt.step();
    loss.itemSync();
    logits.dispose();
    loss.dispose();
  };
  const t = { overlap: [], sequential: [], allReduce: [] };
  for (let i = 0; i < warmup + iters; i++) {
    let t0 = process.hrtime.bigint();
    step(true);
    if (i >= warmup) t.overlap.push(ms(t0));
    if (world > 1) {
      t0 = process.hrtime.bigint();
      step(false);
      if (i >= warmup) t.sequential.push(ms(t0));
      t0 = process.hrtime.bigint();
      dist.allReduceCoalescedAsync(grads(), 'avg').waitSync();
      if (i >= warmup) t.allReduce.push(ms(t0));
    }
  }
  if (dist.getRank() === 0) {
    process.stdout.write(JSON.stringify({
      world, batch, threads: lib.getNumThreads(), buckets: world > 1 ? ddp.numBuckets : 0,
      step_ms: median(t.overlap), sequential_ms: world > 1 ? median(t.sequential) : null, allreduce_ms: world > 1 ? median(t.allReduce) : null,
    }) + '\n');
  }
  dist.destroyProcessGroup();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
