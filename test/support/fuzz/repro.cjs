'use strict';
// Reproduces one fuzz case in this process, printing what it calls and what happened:
//   CRB_FUZZ_SEED=<seed> node test/support/fuzz/repro.cjs <case id>
// A crash or a hang shows here as it does in the fuzzer (run under `timeout 10` for hangs).
const path = require('node:path');
const fs = require('node:fs');
const L = require(path.join(__dirname, '..', '..', '..', 'dist', 'index.js'));
const { buildCase, makeTmpdir } = require('./engine.cjs');

const seed = Number(process.env.CRB_FUZZ_SEED ?? process.argv[3]) >>> 0;
const id = Number(process.argv[2]);
if (!Number.isInteger(id)) {
  console.error('usage: CRB_FUZZ_SEED=<seed> node test/support/fuzz/repro.cjs <case id>');
  process.exit(2);
}
const tmpdir = makeTmpdir();
// relative paths a case passes to save() land in the temporary directory, not the checkout
process.chdir(tmpdir);
const { rec, run } = buildCase(L, seed, id, tmpdir);
console.log(`case ${id} of seed ${seed}: ${rec.desc}`);
(run ? run() : Promise.resolve(rec)).then((r) => {
  console.log(JSON.stringify({ outcome: r.outcome, cls: r.cls, msg: r.msg, failure: r.failure ?? null }, null, 1));
  fs.rmSync(tmpdir, { recursive: true, force: true });
  process.exitCode = r.failure ? 1 : 0;
});
