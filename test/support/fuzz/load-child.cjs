'use strict';
// Loads one safetensors file into fresh models in this process and prints one JSON line per
// model: { model, outcome: 'ok' | 'error', cls, checkpointError, msg, unchanged }.
//   node test/support/fuzz/load-child.cjs <file>
const path = require('node:path');
const fs = require('node:fs');
const L = require(path.join(__dirname, '..', '..', '..', 'dist', 'index.js'));

/** The models the corpus may be written for: its own (index.json "model") and the block fixtures'. */
const MODELS = [
  ['Sequential(Conv2d(1, 2, 1), BatchNorm2d(2))', () => new L.Sequential(new L.Conv2d(1, 2, 1), new L.BatchNorm2d(2))],
  ['ResidualBlock(3, 3)', () => new L.ResidualBlock(3, 3)],
  ['ResidualBlock(3, 6, { use1x1conv: true, strides: 2 })', () => new L.ResidualBlock(3, 6, { use1x1conv: true, strides: 2 })],
  ['ResidualBlock(5, 7, { use1x1conv: true, strides: 2 })', () => new L.ResidualBlock(5, 7, { use1x1conv: true, strides: 2 })],
];

function snapshot(m) {
  return JSON.stringify(Object.entries(m.stateDict()).map(([k, t]) => [k, t.dtype, t.shape, Array.from(t.toArraySync(), Number)]));
}

const file = process.argv[2];
L.manualSeed(0);
for (const [name, make] of MODELS) {
  const m = make();
  const before = snapshot(m);
  const out = { model: name };
  fs.writeSync(1, `start ${name}\n`);
  try {
    L.load(m, file);
    out.outcome = 'ok';
  } catch (e) {
    out.outcome = 'error';
    out.cls = e && e.constructor ? e.constructor.name : typeof e;
    out.checkpointError = e instanceof L.CheckpointError;
    out.msg = String(e && e.message).slice(0, 300);
    try { out.unchanged = snapshot(m) === before; } catch (e2) { out.unchanged = false; out.unreadable = String(e2 && e2.message); }
  }
  fs.writeSync(1, JSON.stringify(out) + '\n');
  m.dispose();
}
