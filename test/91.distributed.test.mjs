// Data parallel over gloo: DistributedSampler, the launcher, and DDP against one process on the
// whole batch (ranks are child processes on loopback). Without the gloo library the DDP suite is
// skipped with the reason printed; REQUIRE_GLOO=1 makes it fail instead.
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { writeCifar10 } from './support/cifar.mjs';

const require = createRequire(import.meta.url);
const lib = require('../dist/index.js');
const { model, batch, dump } = require('./support/ddp-child.cjs');
const here = path.dirname(fileURLToPath(import.meta.url));
const cli = path.join(here, '..', 'dist', 'cli', 'main.js');
const child = path.join(here, 'support', 'ddp-child.cjs');
const { DistributedSampler } = lib;
const { freePort } = require('../dist/cli/launch.js');

/** Awaits fn() (which may also throw at once) and checks it failed with `type` matching `pattern`. */
async function expectReject(fn, type, pattern) {
  let caught = null;
  try {
    await fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, String(pattern)).to.be.instanceOf(type);
  expect(caught.message).to.match(pattern);
}

describe('91 distributed: DistributedSampler', function () {
  it('splits one seeded permutation into disjoint rank shares, padded to equal length, reshuffled per epoch', function () {
    const ds = { n: 10 };
    const shares = [0, 1, 2].map((rank) => new DistributedSampler(ds, { numReplicas: 3, rank, seed: 5 }));
    expect(shares.map((s) => s.length)).to.deep.equal([4, 4, 4]);
    const all = shares.flatMap((s) => Array.from(s.order(0)));
    expect(new Set(all).size).to.equal(10); // 12 slots: every example, two of them twice
    expect(all.length).to.equal(12);
    expect(Array.from(shares[0].order(1))).to.not.deep.equal(Array.from(shares[0].order(0)));
    const dropped = [0, 1, 2].map((rank) => new DistributedSampler(ds, { numReplicas: 3, rank, seed: 5, dropLast: true }));
    const kept = dropped.flatMap((s) => Array.from(s.order(0)));
    expect(kept.length).to.equal(9);
    expect(new Set(kept).size).to.equal(9);
    const plain = new DistributedSampler(ds, { numReplicas: 2, rank: 1, shuffle: false });
    expect(Array.from(plain.order(0))).to.deep.equal([1, 3, 5, 7, 9]);
    plain.setEpoch(3);
    expect(plain.epoch).to.equal(3);
  });

  it('drives a DataLoader (sampler excludes shuffle) and checks its options', function () {
    const images = new Uint8Array(10).map((_, i) => i * 20);
    const ds = new lib.ImageArrayDataset({ images, labels: Array.from({ length: 10 }, (_, i) => i % 2), n: 10, height: 1, width: 1 });
    const sampler = new DistributedSampler(ds, { numReplicas: 2, rank: 0, shuffle: false });
    const loader = new lib.DataLoader(ds, { batchSize: 2, sampler });
    expect(loader.length).to.equal(3);
    expect(Array.from(loader.order(0))).to.deep.equal([0, 2, 4, 6, 8]);
    expect(() => new lib.DataLoader(ds, { batchSize: 2, sampler, shuffle: true })).to.throw(TypeError, /sampler decides/);
    expect(() => new lib.DataLoader(ds, { batchSize: 2, sampler: {} })).to.throw(TypeError, /options\.sampler/);
    expect(() => new DistributedSampler(ds)).to.throw(Error, /numReplicas.*initProcessGroup/);
    expect(() => new DistributedSampler(ds, { numReplicas: 2, rank: 2 })).to.throw(RangeError, /rank/);
    expect(() => new DistributedSampler(ds, { numReplicas: 2, rank: 0, bogus: 1 })).to.throw(TypeError, /bogus/);
  });
});

describe('91 distributed: launch', function () {
  this.timeout(60000);
  let tmp;
  before(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'crb-launch-')); });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('starts N ranks with torchrun\'s environment', function () {
    const script = path.join(tmp, 'env.cjs');
    fs.writeFileSync(script, `require('fs').writeFileSync(${JSON.stringify(tmp)} + '/env' + process.env.RANK, JSON.stringify(process.env));`);
    const r = spawnSync(process.execPath, [cli, 'launch', '--nproc', '3', script], { encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    const envs = [0, 1, 2].map((k) => JSON.parse(fs.readFileSync(path.join(tmp, `env${k}`), 'utf8')));
    envs.forEach((e, k) => {
      expect(e).to.include({ RANK: String(k), LOCAL_RANK: String(k), WORLD_SIZE: '3', LOCAL_WORLD_SIZE: '3', MASTER_ADDR: '127.0.0.1' });
      expect(Number(e.MASTER_PORT)).to.be.within(1, 65535);
      expect(Number(e.CRB_NUM_THREADS)).to.be.at.least(1);
    });
    expect(new Set(envs.map((e) => e.MASTER_PORT)).size).to.equal(1);
  });

  it('a failing rank ends the others; launch exits with its code', function () {
    const script = path.join(tmp, 'fail.cjs');
    fs.writeFileSync(script, "if (process.env.RANK === '1') setTimeout(() => process.exit(7), 200); else setInterval(() => {}, 1000);");
    const t = Date.now();
    const r = spawnSync(process.execPath, [cli, 'launch', '--nproc', '2', script], { encoding: 'utf8', timeout: 30000 });
    expect(r.status, r.stderr).to.equal(7);
    expect(r.stderr).to.include('rank 1 exited with code 7; ending the other ranks');
    expect(Date.now() - t).to.be.below(15000);
  });

  it('forwards SIGINT to every rank once', async function () {
    const script = path.join(tmp, 'sigint.cjs');
    fs.writeFileSync(script, `let n = 0; process.on('SIGINT', () => { n++; setTimeout(() => { require('fs').writeFileSync(${JSON.stringify(tmp)} + '/int' + process.env.RANK, String(n)); process.exit(130); }, 300); });
      require('fs').writeFileSync(${JSON.stringify(tmp)} + '/up' + process.env.RANK, ''); setInterval(() => {}, 1000);`);
    const p = spawn(process.execPath, [cli, 'launch', '--nproc', '2', script], { stdio: 'ignore' });
    const up = () => fs.existsSync(path.join(tmp, 'up0')) && fs.existsSync(path.join(tmp, 'up1'));
    for (let i = 0; i < 100 && !up(); i++) await new Promise((r) => setTimeout(r, 100));
    p.kill('SIGINT');
    const code = await new Promise((resolve) => p.on('exit', (c) => resolve(c)));
    expect(code).to.equal(130);
    expect(fs.readFileSync(path.join(tmp, 'int0'), 'utf8')).to.equal('1');
    expect(fs.readFileSync(path.join(tmp, 'int1'), 'utf8')).to.equal('1');
  });

  it('usage errors exit 2', function () {
    expect(spawnSync(process.execPath, [cli, 'launch', 'x.js'], { encoding: 'utf8' }).stderr).to.match(/--nproc: expected the number of ranks/);
    expect(spawnSync(process.execPath, [cli, 'launch', '--nproc', '2'], { encoding: 'utf8' }).status).to.equal(2);
    expect(spawnSync(process.execPath, [cli, 'launch', '--nproc', 'two', 'x.js'], { encoding: 'utf8' }).stderr).to.match(/--nproc: expected an integer/);
  });
});

describe('91 distributed: DDP over gloo', function () {
  this.timeout(120000);
  const info = lib.distributed.glooInfo();
  let tmp;
  before(function () {
    if (!info.available) {
      if (process.env.REQUIRE_GLOO === '1') throw new Error(`gloo required but unavailable: ${info.reason}`);
      console.log(`      skipped: gloo unavailable: ${info.reason}`);
      this.skip();
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'crb-ddp-'));
  });
  after(() => tmp && fs.rmSync(tmp, { recursive: true, force: true }));

  function launch(mode, world = 2) {
    const out = path.join(tmp, `${mode}-`);
    const r = spawnSync(process.execPath, [cli, 'launch', '--nproc', String(world), '--threads-per-rank', '1', child, mode, out], { encoding: 'utf8', timeout: 100000 });
    return { r, read: (rank) => JSON.parse(fs.readFileSync(out + rank, 'utf8')) };
  }

  function maxDiff(a, b) {
    let m = 0;
    for (const k of Object.keys(a)) for (let i = 0; i < a[k].length; i++) m = Math.max(m, Math.abs(a[k][i] - b[k][i]));
    return m;
  }

  it('bad arguments are errors naming them, before and inside a (1-rank) group', async function () {
    const d = lib.distributed;
    const t = lib.tensor([1, 2]);
    await expectReject(() => d.allReduce(t), Error, /allReduce: no process group/);
    await expectReject(() => d.initProcessGroup({ bogus: 1 }), TypeError, /bogus/);
    await expectReject(() => d.initProcessGroup({ rank: 0, worldSize: 1, initMethod: 'http://x' }), RangeError, /options\.initMethod/);
    await expectReject(() => d.initProcessGroup({ rank: 2, worldSize: 2 }), RangeError, /options\.rank/);
    expect(() => new lib.DistributedDataParallel(new lib.nn.Linear(2, 2))).to.throw(Error, /no process group/);
    await d.initProcessGroup({ rank: 0, worldSize: 1, initMethod: `tcp://127.0.0.1:${await freePort()}`, timeout: 10000 });
    try {
      await d.allReduce(t, 'avg');
      expect(Array.from(t.toArraySync())).to.deep.equal([1, 2]);
      const gone = lib.tensor([1]);
      gone.dispose();
      await expectReject(() => d.allReduce([1, 2]), TypeError, /allReduce: tensor/);
      await expectReject(() => d.allReduce(gone), lib.DisposedTensorError, /disposed/);
      await expectReject(() => d.allReduce(t, 'mean'), RangeError, /op/);
      await expectReject(() => d.allReduce(lib.tensor([1], { dtype: 'int32' }), 'avg'), TypeError, /"t".*use "sum" for integers/);
      expect(() => d.allReduceCoalescedAsync([])).to.throw(TypeError, /tensors/);
      expect(() => d.allReduceCoalescedAsync([t, lib.tensor([1], { dtype: 'float64' })])).to.throw(TypeError, /tensors\[1\].*float32/);
      await expectReject(() => d.broadcast(t, 1), RangeError, /src/);
      await expectReject(() => d.allGather(lib.zeros([3]), t), RangeError, /allGather: expected output of 2 float32 elements/);
      await expectReject(() => d.initProcessGroup({ rank: 0, worldSize: 1 }), Error, /already initialized/);
      expect(() => new lib.DistributedDataParallel(new lib.nn.Linear(2, 2), { bogus: 1 })).to.throw(TypeError, /bogus/);
      expect(() => new lib.DistributedDataParallel({})).to.throw(TypeError, /Module/);
    } finally {
      d.destroyProcessGroup();
    }
  });

  it('2 ranks on half batches reach the parameters of one process on the whole batch after 3 SGD steps', function () {
    const { r, read } = launch('steps');
    expect(r.status, r.stderr).to.equal(0);
    const [r0, r1] = [read(0), read(1)];
    expect(r0.buckets).to.be.above(1); // small buckets: several all-reduces per backward
    // one process, whole batch
    const net = model(false);
    const opt = new lib.SGD(net.parameters(), { lr: 0.1, momentum: 0.9 });
    const { x, y } = batch(-1, 1);
    for (let s = 0; s < 3; s++) {
      opt.zeroGrad();
      lib.crossEntropy(net.forward(x), y).backward();
      opt.step();
    }
    const want = dump(net);
    expect(maxDiff(r0.params, r1.params)).to.equal(0);
    expect(maxDiff(r0.params, want)).to.be.below(1e-5);
  });

  it('with BatchNorm the gradients are the average of the ranks\' local gradients', function () {
    const { r, read } = launch('bngrad');
    expect(r.status, r.stderr).to.equal(0);
    const local = [0, 1].map((rank) => {
      const net = model(true);
      const { x, y } = batch(rank, 2);
      lib.crossEntropy(net.forward(x), y).backward();
      return dump(net, 'grad');
    });
    const avg = Object.fromEntries(Object.keys(local[0]).map((k) => [k, local[0][k].map((v, i) => (v + local[1][k][i]) / 2)]));
    expect(maxDiff(read(0).grads, avg)).to.be.below(1e-6);
    expect(maxDiff(read(1).grads, avg)).to.be.below(1e-6);
  });

  it('noSync accumulates locally; the next backward averages the sum', function () {
    const { r, read } = launch('accum');
    expect(r.status, r.stderr).to.equal(0);
    const [a, b] = [read(0), read(1)];
    expect(maxDiff(a.grads, b.grads)).to.equal(0);
    expect(maxDiff(a.local, b.local)).to.be.above(0); // before the sync each rank had its own
  });

  it('train --nproc 2: data-parallel CLI run, rank 0 prints and writes', function () {
    writeCifar10(path.join(tmp, 'cifar', 'cifar-10-batches-bin'), 16);
    const out = path.join(tmp, 'run-ddp');
    const r = spawnSync(process.execPath, [cli, 'train', '--data', `cifar10:${path.join(tmp, 'cifar')}`, '--nproc', '2', '--epochs', '1',
      '--batch-size', '8', '--device', 'cpu', '--out', out, '--no-progress'], { encoding: 'utf8', timeout: 170000 });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.include('data-parallel over 2 ranks (gloo; batch 8 per rank)');
    expect(r.stdout.match(/^epoch 1\/1:/gm)).to.have.length(1); // rank 0 only
    const log = JSON.parse(fs.readFileSync(path.join(out, 'log.json'), 'utf8'));
    expect(log.epochs[0]).to.include({ steps: 5, trainExamples: 40, complete: true }); // 80 images, half per rank
    expect(log.epochs[0].testAcc).to.be.within(0, 1);
    expect(fs.existsSync(path.join(out, 'checkpoint.safetensors'))).to.equal(true);
  });

  it('a rank that dies mid-step makes the other fail with a DistError, within the timeout', async function () {
    const out = path.join(tmp, 'die-');
    const port = await freePort();
    const env = (rank) => ({ ...process.env, RANK: String(rank), WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), CRB_NUM_THREADS: '1', TEST_DIST_TIMEOUT: '5000' });
    const t = Date.now();
    const procs = [0, 1].map((rank) => spawn(process.execPath, [child, 'die', out], { env: env(rank), stdio: 'ignore' }));
    const codes = await Promise.all(procs.map((p) => new Promise((resolve) => p.on('exit', (c) => resolve(c)))));
    expect(codes[1]).to.equal(9);
    expect(codes[0]).to.equal(3);
    const e = JSON.parse(fs.readFileSync(out + '0', 'utf8')).error;
    expect(e.name).to.equal('DistError');
    expect(Date.now() - t).to.be.below(30000);
  });
});
