// `npm run check:gpu` (tools/check-gpu.mjs) on a machine without a CUDA driver: it must stop
// within seconds, exit non-zero, say why, and still write its one JSON report. (On a GPU machine
// the same command builds, tests and benchmarks; see README "Checking on a GPU".)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { expect } from 'chai';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { backendInfo } = require('../dist/index.js');

describe('npm run check:gpu', function () {
  const cuda = backendInfo().cuda;
  let out;
  before(function () {
    if (cuda.available || !/no CUDA driver/.test(cuda.reason)) {
      console.log(`      skipped: this machine has a CUDA driver (${cuda.available ? 'CUDA available' : cuda.reason}); the no-driver path needs one without`);
      this.skip();
    }
    out = mkdtempSync(join(os.tmpdir(), 'check-gpu-'));
  });
  after(function () {
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it('without a CUDA driver fails within 20 s, exit non-zero, and writes the report with the reason', function () {
    const started = Date.now();
    const r = spawnSync('npm', ['run', '--silent', 'check:gpu'], {
      cwd: root, encoding: 'utf8', timeout: 30000, env: { ...process.env, OUT: out, CHECK_GPU_FORCE: '' },
    });
    const seconds = (Date.now() - started) / 1000;
    expect(r.error, 'spawn').to.equal(undefined);
    expect(seconds, 'seconds').to.be.below(20);
    expect(r.status, `exit code (output: ${r.stdout}${r.stderr})`).to.not.equal(0);
    expect(r.stdout + r.stderr).to.match(/check:gpu: FAILED: no CUDA driver/);
    const report = JSON.parse(readFileSync(join(out, 'check-gpu.json'), 'utf8'));
    expect(report.schema).to.equal('cudnn-resblock/check-gpu/1');
    expect(report.ok).to.equal(false);
    expect(report.reason).to.match(/^no CUDA driver/);
    expect(report.backend.available).to.equal(false);
    expect(report.steps.map((s) => [s.name, s.status])).to.deep.equal([['preflight', 'failed']]);
    expect(report.totalSeconds).to.be.a('number').below(20);
    expect(report.tests).to.equal(null);
    expect(report.bench).to.equal(null);
  });
});
