// One rank of a test/90 scenario: node gloo-child.cjs SCENARIO RANK WORLD STORE, STORE being
// tcp:PORT or file:DIR. Prints one JSON line {ok, ...} (or {error, name, fields}) and exits.
'use strict';
const path = require('node:path');

const native = require('node-gyp-build')(path.join(__dirname, '..', '..'));
const { DistError, BackendError, CudaError, CudnnError, OutOfMemoryError } = require('../../dist/errors.js');
native.setErrorClasses({ BackendError, CudaError, CudnnError, OutOfMemoryError, DistError });

const [scenario, rankArg, worldArg, storeArg, timeoutArg] = process.argv.slice(2);
const rank = Number(rankArg);
const worldSize = Number(worldArg);
const [kind, where] = [storeArg.slice(0, storeArg.indexOf(':')), storeArg.slice(storeArg.indexOf(':') + 1)];
const store = kind === 'tcp' ? { kind, host: '127.0.0.1', port: Number(where) } : { kind, path: where };
const timeoutMs = Number(timeoutArg ?? 20000);

const tensor = (values, dtype, shape = [values.length]) =>
  native.fromArray(dtype === 'float64' ? new Float64Array(values) : new Float32Array(values), shape, dtype, 'cpu');
const read = (h) => Array.from(native.readSync(h), Number);
const report = (o) => process.stdout.write(JSON.stringify(o) + '\n');

async function run() {
  const t0 = Date.now();
  const pg = native.distInit({ rank, worldSize, store, timeoutMs, prefix: `test-${scenario}` });
  const out = { rank: pg.rank, worldSize: pg.worldSize };
  if (scenario === 'collectives') {
    for (const dtype of ['float32', 'float64']) {
      for (const op of ['sum', 'avg', 'max', 'min']) {
        const t = tensor([rank + 1, -rank, 10 * rank, 0.5], dtype);
        await native.distWait(native.distAllReduce(pg, t, op));
        out[`${op}-${dtype}`] = read(t);
      }
    }
    const b = tensor(rank === 1 ? [7, 8, 9] : [0, 0, 0], 'float32');
    native.distWaitSync(native.distBroadcast(pg, b, 1));
    out.broadcast = read(b);
    const input = tensor([rank, rank + 0.5], 'float32', [1, 2]);
    const gathered = native.empty([worldSize, 2], 'float32', 'cpu');
    await native.distWait(native.distAllGather(pg, gathered, input));
    out.allGather = read(gathered);
    const i32 = native.fromArray(new Int32Array([rank, 100]), [2], 'int32', 'cpu');
    await native.distWait(native.distAllReduce(pg, i32, 'sum'));
    out.sumInt32 = read(i32);
    const w = native.distBarrier(pg);
    await native.distWait(w);
    out.barrierDone = native.distIsCompleted(w);
  } else if (scenario === 'order') {
    // Many works in flight at once: they run in submission order on every rank.
    const ts = [];
    const works = [];
    for (let i = 0; i < 50; i++) {
      const t = tensor([i * (rank + 1)], 'float32');
      ts.push(t);
      works.push(native.distAllReduce(pg, t, i % 2 ? 'max' : 'sum'));
    }
    works.push(native.distBarrier(pg));
    await Promise.all(works.map((w) => native.distWait(w)));
    out.values = ts.map((t) => read(t)[0]);
  } else if (scenario === 'stall') {
    // Rank 1 is alive but never joins the collective: rank 0 times out instead of hanging.
    if (rank === 1) {
      await new Promise((resolve) => setTimeout(resolve, timeoutMs * 2));
    } else {
      const start = Date.now();
      try {
        native.distWaitSync(native.distAllReduce(pg, tensor([1], 'float32'), 'sum'));
        out.unexpected = 'the collective succeeded';
      } catch (e) {
        out.error = { name: e.name, message: e.message, op: e.op, rank: e.rank, code: e.code };
        out.failedAfterMs = Date.now() - start;
      }
    }
  } else if (scenario === 'die') {
    // Rank 1 leaves mid-training; rank 0's next collective must fail, not hang.
    const t = tensor(new Array(1 << 20).fill(1), 'float32');
    await native.distWait(native.distAllReduce(pg, t, 'sum'));
    if (rank === 1) process.exit(0);
    const start = Date.now();
    try {
      await native.distWait(native.distAllReduce(pg, t, 'sum'));
      out.unexpected = 'the collective succeeded';
    } catch (e) {
      out.error = { name: e.name, message: e.message, op: e.op, rank: e.rank, worldSize: e.worldSize, peer: e.peer, code: e.code, isDistError: e instanceof DistError };
      out.failedAfterMs = Date.now() - start;
    }
    try {
      native.distWaitSync(native.distBarrier(pg));
    } catch (e) {
      out.after = e.message;
    }
  }
  native.distDestroy(pg);
  native.distDestroy(pg);
  out.ms = Date.now() - t0;
  return out;
}

run().then((o) => report({ ok: true, ...o }), (e) => {
  report({ ok: false, error: { name: e.name, message: e.message, op: e.op, rank: e.rank, worldSize: e.worldSize, peer: e.peer, code: e.code, isDistError: e instanceof DistError } });
});
