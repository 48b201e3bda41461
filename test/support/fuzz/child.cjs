'use strict';
// A fuzz child: runs cases [from, to) of a seed and reports on stdout, one line per event:
//   @@fuzz start <id>            (written synchronously before the case runs)
//   @@fuzz {"id":..., ...}       (the case's record)
// so the parent can pin a crash or hang to the case that was running.
const fs = require('node:fs');
const path = require('node:path');

const [seedArg, fromArg, toArg] = process.argv.slice(2);
const seed = Number(seedArg) >>> 0;
const from = Number(fromArg);
const to = Number(toArg);
const say = (line) => fs.writeSync(1, `@@fuzz ${line}\n`);

const L = require(path.join(__dirname, '..', '..', '..', 'dist', 'index.js'));
const { buildCase, restoreGlobals, makeTmpdir } = require('./engine.cjs');

const tmpdir = makeTmpdir();
// relative paths a case passes to save() land in the temporary directory, not the checkout
process.chdir(tmpdir);
let current = -1;
process.on('exit', () => { try { fs.rmSync(tmpdir, { recursive: true, force: true }); } catch { /* best effort */ } });
// Anything thrown or rejected outside a case's own call is pinned to the running case.
const late = (kind) => (e) => {
  say(JSON.stringify({ id: current, late: kind, cls: e && e.constructor ? e.constructor.name : typeof e, msg: String(e && e.message).slice(0, 300) }));
};
process.on('unhandledRejection', late('unhandledRejection'));
process.on('uncaughtException', late('uncaughtException'));

// The parent lists values that already hung (hangs.json) so that the same hang is not waited
// for again and again: a signature (target, argument, value) that hung, or a value that hung in
// two places.
const hangsFile = process.env.CRB_FUZZ_HANGS;
function skip(sig, value) {
  if (!hangsFile) return false;
  let h;
  try { h = JSON.parse(fs.readFileSync(hangsFile, 'utf8')); } catch { return false; }
  if (h.signatures.includes(sig)) return true;
  return h.signatures.filter((s) => s.endsWith(`|${value}`)).length >= 2;
}

async function main() {
  const threads = L.getNumThreads();
  for (let id = from; id < to; id++) {
    current = id;
    say(`start ${id}`);
    // each case in a fresh directory (its cwd too): no case sees another's files
    const caseDir = fs.mkdtempSync(path.join(tmpdir, 'case-'));
    process.chdir(caseDir);
    const { rec, run, c } = buildCase(L, seed, id, caseDir);
    say(`desc ${id} ${JSON.stringify({ target: rec.target, arg: rec.arg, value: rec.value, mode: rec.mode, desc: rec.desc })}`);
    let out;
    const sig = `${rec.target}|${rec.arg}|${rec.value}`;
    if (run && skip(sig, rec.value)) {
      c.cleanup();
      out = { ...rec, outcome: 'skipped', cls: 'skipped (this value already hung)' };
    } else {
      out = run ? await run() : rec;
    }
    restoreGlobals(L, threads);
    process.chdir(tmpdir);
    try { fs.rmSync(caseDir, { recursive: true, force: true }); } catch { /* best effort */ }
    say(JSON.stringify(out));
    // let finalizers and settled promises run between cases
    if (id % 16 === 15) await new Promise(setImmediate);
  }
  say('done');
}
main().catch((e) => { say(JSON.stringify({ id: current, late: 'child error', cls: e && e.constructor && e.constructor.name, msg: String(e && e.stack).slice(0, 500) })); process.exitCode = 3; });
