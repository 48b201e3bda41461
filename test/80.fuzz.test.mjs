// A seeded fuzzer over the public API (issue #10): thousands of mostly-valid calls with one
// argument swapped for a bad value (wrong types, odd numbers, huge/sparse/cyclic/deep shapes,
// misspelt or inherited options, disposed or wrong tensors), run in child processes so that a
// native crash, a V8 fatal error or a hang is pinned to its case. Every call must either work or
// throw a typed error: TypeError/RangeError from an argument check (not the engine's own "is not
// a function", "Maximum call stack size exceeded", ...), the BackendError family, CheckpointError.
//
// CRB_FUZZ_SEED and CRB_FUZZ_CASES override the seed and the number of cases (longer local
// campaigns: `node test/support/fuzz/runner.cjs --seed N --cases N`). Each failure prints a
// one-line reproducer: `CRB_FUZZ_SEED=<seed> node test/support/fuzz/repro.cjs <case>`.
//
// Also loads every file of test/fixtures/malformed-safetensors/ (when that folder exists): each
// must throw a CheckpointError and leave the model unchanged, except files named valid*.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const { runCampaign, formatSummary } = require('./support/fuzz/runner.cjs');

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DEFAULT_SEED = 20261201;
const DEFAULT_CASES = 8000;
const seed = process.env.CRB_FUZZ_SEED !== undefined ? Number(process.env.CRB_FUZZ_SEED) : DEFAULT_SEED;
const cases = process.env.CRB_FUZZ_CASES !== undefined ? Number(process.env.CRB_FUZZ_CASES) : DEFAULT_CASES;

describe('fuzz: the public API with bad arguments', function () {
  this.timeout(600000);
  this.slow(90000);

  it(`${cases} seeded cases (seed ${seed}) give a result or a typed error: no crash, hang or untyped error`, async () => {
    console.log(`      fuzz: seed ${seed} (set CRB_FUZZ_SEED=${seed} to repeat, CRB_FUZZ_CASES for more cases)`);
    const res = await runCampaign({ seed, cases, parallel: 2, batch: 500, caseTimeoutMs: 5000 });
    console.log(formatSummary(res).split('\n').map((l) => `      ${l}`).join('\n'));
    expect(res.ran, 'cases run').to.equal(cases);
    expect(res.failures.length, `${res.failures.length} failing cases (listed above)`).to.equal(0);
  });

  const corpus = path.join(HERE, 'fixtures', 'malformed-safetensors');
  it('every malformed safetensors file gives a CheckpointError and leaves the model unchanged', function () {
    if (!fs.existsSync(corpus)) {
      console.log(`      skipped: ${path.relative(process.cwd(), corpus)} does not exist (yet)`);
      this.skip();
    }
    const files = fs.readdirSync(corpus).filter((f) => !f.startsWith('.') && fs.statSync(path.join(corpus, f)).isFile() && !/\.(md|txt|json)$/i.test(f));
    const problems = [];
    for (const f of files.sort()) {
      const r = spawnSync(process.execPath, ['--max-old-space-size=512', path.join(HERE, 'support', 'fuzz', 'load-child.cjs'), path.join(corpus, f)], { encoding: 'utf8', timeout: 10000 });
      const lines = r.stdout.trim().split('\n').filter(Boolean);
      const results = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
      const running = lines.filter((l) => l.startsWith('start ')).pop()?.slice(6);
      const repro = `node test/support/fuzz/load-child.cjs ${path.relative(process.cwd(), path.join(corpus, f))}`;
      if (r.signal || r.status !== 0 || (r.error && r.error.code === 'ETIMEDOUT')) {
        const how = r.error?.code === 'ETIMEDOUT' ? 'hang (> 10 s)' : r.signal ? `crash (${r.signal})` : `exit code ${r.status}`;
        problems.push(`${f}: ${how} loading into ${running}: ${String(r.stderr).trim().split('\n').slice(-3).join(' | ').slice(0, 300)}\n        repro: ${repro}`);
        continue;
      }
      if (f.startsWith('valid')) {
        if (!results.some((x) => x.outcome === 'ok')) problems.push(`${f}: a valid file loads into none of the models: ${results.map((x) => `${x.cls}: ${x.msg}`).join('; ')}\n        repro: ${repro}`);
        for (const x of results.filter((y) => y.outcome === 'error' && (!y.checkpointError || !y.unchanged))) problems.push(`${f} into ${x.model}: ${x.cls}${x.unchanged ? '' : ' (model changed)'}: ${x.msg}\n        repro: ${repro}`);
        continue;
      }
      for (const x of results) {
        if (x.outcome === 'ok') problems.push(`${f} into ${x.model}: loaded without an error\n        repro: ${repro}`);
        else if (!x.checkpointError || !x.unchanged) problems.push(`${f} into ${x.model}: ${x.checkpointError ? 'CheckpointError' : `${x.cls} (not a CheckpointError)`}${x.unchanged ? '' : ', and the model changed'}: ${x.msg}\n        repro: ${repro}`);
      }
    }
    console.log(`      malformed safetensors: ${files.length} files, ${problems.length} problems`);
    for (const p of problems) console.log(`      - ${p}`);
    expect(problems, problems.join('\n')).to.deep.equal([]);
  });
});
