// One rank of the NCCL tests (test/92), started with RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR
// and MASTER_PORT set (one rank per visible GPU). Runs every collective on CUDA tensors with
// values whose result is known, a CPU tensor over the same group's gloo half, and one DDP
// backward on CUDA; prints one JSON report on stdout.
const lib = require('../../dist/index.js');
const { distributed: dist, nn } = lib;

async function main() {
  await dist.initProcessGroup({ backend: 'nccl', timeout: 60000 });
  const rank = dist.getRank();
  const world = dist.getWorldSize();
  const cuda = (values, dtype = 'float32') => lib.tensor(values, [values.length], { dtype, device: 'cuda' });
  const read = (t) => Array.from(t.toArraySync(), Number);
  const report = { rank, world, backend: dist.getBackend() };

  const sum = cuda([rank + 1, 10 * (rank + 1)]);
  await dist.allReduce(sum, 'sum');
  report.sum = read(sum);
  const avg = cuda([rank, 2 * rank]);
  const w = dist.allReduceAsync(avg, 'avg');
  w.waitSync();
  report.avg = read(avg);
  report.avgCompleted = w.isCompleted();
  const max = cuda([rank, -rank]);
  await dist.allReduce(max, 'max');
  const min = cuda([rank, -rank]);
  await dist.allReduce(min, 'min');
  report.max = read(max);
  report.min = read(min);
  const half = cuda([rank + 0.5], 'float16');
  await dist.allReduce(half, 'sum');
  report.half = read(half);
  const ints = cuda([rank + 1], 'int64');
  await dist.allReduce(ints, 'sum');
  report.ints = read(ints);

  const a = cuda([rank, rank, rank]);
  const b = cuda([1, 2, 3, 4, 5].map((v) => v * (rank + 1)));
  await dist.allReduceCoalescedAsync([a, b], 'sum').wait();
  report.coalesced = [read(a), read(b)];

  const root = world - 1;
  const bc = cuda([rank * 7, rank * 7 + 1], 'int32');
  await dist.broadcast(bc, root);
  report.broadcast = read(bc);

  const input = cuda([rank, rank + 0.25]);
  const gathered = lib.zeros([2 * world], { device: 'cuda' });
  await dist.allGather(gathered, input);
  report.gathered = read(gathered);

  // The gloo half of the group still takes CPU tensors.
  const cpu = lib.tensor([rank + 1], [1]);
  await dist.allReduce(cpu, 'sum');
  report.cpuSum = read(cpu);
  await dist.barrier();

  // DDP over NCCL: the averaged gradient of a replicated Linear equals the plain module's
  // gradient on the whole batch, which every rank computes here too.
  lib.manualSeed(7);
  const plain = new nn.Linear(4, 3).to('cuda');
  lib.manualSeed(7);
  const ddp = new lib.DistributedDataParallel(new nn.Linear(4, 3).to('cuda'));
  const n = 2 * world;
  const x = lib.tensor(new Float32Array(n * 4).map((_, i) => Math.sin(i)), [n, 4], { device: 'cuda' });
  const y = lib.tensor(Int32Array.from({ length: n }, (_, i) => i % 3), [n], { dtype: 'int32', device: 'cuda' });
  lib.crossEntropy(plain.forward(x), y).backward();
  const mine = lib.tensor(new Float32Array(read(x).slice(rank * 8, rank * 8 + 8)), [2, 4], { device: 'cuda' });
  const myLabels = lib.tensor(Int32Array.from(read(y).slice(rank * 2, rank * 2 + 2)), [2], { dtype: 'int32', device: 'cuda' });
  lib.crossEntropy(ddp.forward(mine), myLabels).backward();
  report.ddpGrad = read(ddp.module.parameters()[0].grad);
  report.plainGrad = read(plain.parameters()[0].grad);

  dist.destroyProcessGroup();
  process.stdout.write(JSON.stringify(report));
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: e.message, code: e.code, op: e.op, name: e.name }));
  process.exitCode = 1;
});
