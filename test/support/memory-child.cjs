// Runs in a child process (test/34.memory.test.mjs): trains a small network for many steps, or
// drops tensors without dispose(), and prints RSS samples as JSON.
const lib = require('../../dist/index.js');

const { Sequential, Conv2d, BatchNorm2d, ReLU, MaxPool2d, Flatten, Linear, AdaptiveAvgPool2d, SGD, crossEntropy, randn, full, tensor, manualSeed } = lib;
const [mode, stepsArg] = process.argv.slice(2);
const steps = Number(stepsArg);
const rss = () => process.memoryUsage().rss;
const samples = [];

// 'train' and 'gc' await (data, `await loss.item()`), as real training loops do. 'sync-dispose',
// 'sync-keep' and 'sync-gc' never yield to the event loop: handles are freed by garbage
// collection itself (Note [handles are freed in GC] in native/binding/tensor_handle.h).
const makeNet = () =>
  new Sequential(
    new Conv2d(1, 8, 3, { padding: 1 }), new BatchNorm2d(8), new ReLU(), new MaxPool2d(2),
    new Conv2d(8, 8, 3, { padding: 1 }), new BatchNorm2d(8), new ReLU(),
    new AdaptiveAvgPool2d(1), new Flatten(), new Linear(8, 4),
  );

/** One SGD step of a small net on a fixed batch, per call; the caller owns logits and loss. */
function trainer() {
  const net = makeNet();
  const opt = new SGD(net.parameters(), { lr: 0.01, momentum: 0.9 });
  const x = randn([8, 1, 8, 8]);
  const y = tensor(Int32Array.of(0, 1, 2, 3, 0, 1, 2, 3), [8]);
  return () => {
    const logits = net.forward(x);
    const loss = crossEntropy(logits, y);
    opt.zeroGrad();
    loss.backward();
    opt.step();
    return { logits, loss };
  };
}

async function main() {
manualSeed(0);
if (mode === 'sync-dispose' || mode === 'sync-keep') {
  const step = trainer();
  for (let i = 0; i < steps; i++) {
    const { logits, loss } = step();
    loss.itemSync();
    if (mode === 'sync-dispose') {
      logits.dispose();
      loss.dispose();
    }
    if (i % Math.floor(steps / 10) === 0) samples.push(rss());
  }
  samples.push(rss());
  console.log(JSON.stringify({ samples, cpu: lib.cpuMemoryStats() }));
} else if (mode === 'sync-gc') {
  // 1 MB tensors dropped without dispose() in a loop that never yields.
  for (let i = 0; i < steps; i++) {
    full([512, 512], 1);
    if (i % Math.floor(steps / 10) === 0) samples.push(rss());
  }
  samples.push(rss());
  console.log(JSON.stringify({ samples }));
} else if (mode === 'train') {
  const step = trainer();
  let first = 0;
  let last = 0;
  for (let i = 0; i < steps; i++) {
    const { logits, loss } = step();
    const value = await loss.item();
    if (i === 0) first = value;
    if (i === steps - 1) last = value;
    logits.dispose();
    loss.dispose();
    if (i % Math.floor(steps / 10) === 0) samples.push(rss());
  }
  samples.push(rss());
  console.log(JSON.stringify({ samples, first, last, cpu: lib.cpuMemoryStats() }));
} else {
  // No dispose(): only garbage collection (the safety net) frees these 4 MB tensors.
  for (let i = 0; i < steps; i++) {
    randn([1024, 1024]);
    if (i % 10 === 0) await new Promise(setImmediate);
    if (i % Math.floor(steps / 10) === 0) samples.push(rss());
  }
  samples.push(rss());
  console.log(JSON.stringify({ samples }));
}
}

main();
