// NCCL: the build of libcrb_nccl.so (exports, NEEDED libnccl.so.2, RUNPATH $ORIGIN), how the
// addon loads it and explains a missing libnccl.so.2, ncclGetUniqueId (no GPU needed), and
// initProcessGroup({ backend: 'nccl' }) failing with the reason where CUDA is absent. Then, with
// CUDA, every collective on CUDA tensors and DDP over NCCL, one rank per visible GPU (NCCL does
// not run two ranks on one device) in child processes (test/support/nccl-child.cjs). Each part
// is skipped with the reason printed when what it needs is missing; REQUIRE_CUDA=1 makes the
// @cuda part fail instead.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { expect } from 'chai';

const require = createRequire(import.meta.url);
// The launcher's free-port finder (a port the kernel just handed out, closed again).
const { freePort } = require('../dist/cli/launch.js');
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const addonDir = (() => {
  try {
    return dirname(require('node-gyp-build').path(root));
  } catch {
    return join(root, 'build', 'Release');
  }
})();
const library = join(addonDir, 'libcrb_nccl.so');
const header = readFileSync(join(root, 'native', 'nccl', 'crb_nccl.h'), 'utf8');
const ENTRY_POINT = /#define CRB_NCCL_ENTRY_POINT "(\w+)"/.exec(header)[1];
const child = join(root, 'test', 'support', 'nccl-child.cjs');

// The directory of the libnccl.so.2 the build linked: NCCL_LIB_DIR, NCCL_ROOT/lib, or the
// CMake cache of the last `npm run build:cuda`. Null when unknown.
function ncclLibDir() {
  const dirs = [process.env.NCCL_LIB_DIR, process.env.NCCL_ROOT && join(process.env.NCCL_ROOT, 'lib')];
  const cache = join(root, 'build-cuda', 'CMakeCache.txt');
  const m = existsSync(cache) && /^NCCL_LIBRARY:[A-Z]+=(.*)$/m.exec(readFileSync(cache, 'utf8'));
  if (m) dirs.push(dirname(m[1].trim()));
  return dirs.find((d) => d && existsSync(join(d, 'libnccl.so.2'))) ?? null;
}

// `script` in a fresh process (libraries load once per process) with `env` added; its JSON.
function inChild(script, env) {
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60000 });
  if (r.status !== 0) throw new Error(`child failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const requireNative = `const n = require('node-gyp-build')(${JSON.stringify(root)});`;

describe('92 NCCL library (build and loading, no GPU needed)', function () {
  this.timeout(60000);
  before(function () {
    if (!existsSync(library)) {
      console.log(`      skipped: ${library} is not built (npm run build:cuda builds it where nvcc and NCCL's headers are: NCCL_ROOT)`);
      this.skip();
    }
  });

  it('exports crb_nccl_abi_version and crb_nccl_api only', function () {
    const nm = spawnSync('nm', ['-D', '--defined-only', library], { encoding: 'utf8' });
    if (nm.error) this.skip();
    const defined = nm.stdout.split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f.length === 3 && /[TtWwDdBbRrVv]/.test(f[1])).map((f) => f[2]);
    expect(defined.sort()).to.deep.equal(['crb_nccl_abi_version', ENTRY_POINT].sort());
  });

  it('needs libnccl.so.2 (dynamically), finds it through RUNPATH $ORIGIN, and links no libcudart or libcuda', function () {
    const r = spawnSync('readelf', ['-d', library], { encoding: 'utf8' });
    if (r.error) this.skip();
    const needed = [...r.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
    expect(needed).to.include('libnccl.so.2');
    expect(needed.filter((n) => /^libcudart|^libcuda\.so/.test(n))).to.deep.equal([]);
    expect(r.stdout).to.match(/\(RUNPATH\)\s+Library runpath: \[\$ORIGIN\]/);
    expect(r.stdout).to.not.match(/\(RPATH\)/);
  });

  it('ncclInfo() says how to get NCCL when libnccl.so.2 is not found', function () {
    const info = inChild(`${requireNative} process.stdout.write(JSON.stringify(n.ncclInfo()));`,
      { NCCL_LIB_DIR: '', LD_LIBRARY_PATH: '', PATH: '/nonexistent' });  // no python3: no pip lookup either
    if (info.available) {
      console.log(`      skipped: libnccl.so.2 is on the system loader path here (${info.ncclLibrary})`);
      this.skip();
    }
    expect(info.reason).to.match(/libnccl\.so\.2/).and.match(/pip install nvidia-nccl-cu13|NCCL_LIB_DIR/);
    expect(info.library).to.equal(library);
  });

  describe('with libnccl.so.2', function () {
    const dir = ncclLibDir();
    before(function () {
      if (!dir) {
        console.log('      skipped: libnccl.so.2 not found (set NCCL_LIB_DIR, or build with NCCL_ROOT)');
        this.skip();
      }
    });

    it('loads it from NCCL_LIB_DIR, reports its version, and makes a 128-byte unique id without a GPU', function () {
      const r = inChild(`${requireNative}
        const info = n.ncclInfo();
        const a = n.ncclUniqueId(), b = n.ncclUniqueId();
        process.stdout.write(JSON.stringify({ info, length: a.length, differ: Buffer.compare(Buffer.from(a), Buffer.from(b)) !== 0 }));`,
      { NCCL_LIB_DIR: dir });
      expect(r.info.available, r.info.reason).to.equal(true);
      expect(r.info.nccl).to.match(/^2\.\d+\.\d+$/);
      expect(r.info.ncclCompiled).to.match(/^2\.\d+\.\d+$/);
      expect(r.info.ncclLibrary).to.equal(join(dir, 'libnccl.so.2'));
      expect(r.length).to.equal(128);
      expect(r.differ).to.equal(true);
    });

    it('initProcessGroup({ backend: "nccl" }) without CUDA fails naming the rank and why, and leaves no group', function () {
      const dist = inChild(`${requireNative} process.stdout.write(JSON.stringify(n.distInfo()));`, {});
      if (!dist.available) {
        console.log(`      skipped: gloo is not usable (the NCCL rendezvous runs over it): ${dist.reason}`);
        this.skip();
      }
      const tmp = mkdtempSync(join(tmpdir(), 'crb-nccl-'));
      try {
        const r = inChild(`
          const lib = require(${JSON.stringify(join(root, 'dist', 'index.js'))});
          const cuda = lib.backendInfo().cuda.available;
          lib.distributed.initProcessGroup({ backend: 'nccl', rank: 0, worldSize: 1, initMethod: 'file://${tmp}', timeout: 20000 })
            .then(() => ({ ok: true }), (e) => ({ ok: false, message: e.message }))
            .then((r) => {
              r.cuda = cuda; r.initialized = lib.distributed.isInitialized(); r.device = process.env.CRB_CUDA_DEVICE;
              if (r.ok) lib.distributed.destroyProcessGroup();
              process.stdout.write(JSON.stringify(r));
            });`, { NCCL_LIB_DIR: dir, CRB_CUDA_DEVICE: '', LOCAL_RANK: '' });
        if (r.cuda) {
          console.log('      skipped: CUDA is available here (the @cuda suite below runs NCCL)');
          this.skip();
        }
        expect(r.ok).to.equal(false);
        expect(r.message).to.match(/rank 0 of 1 cannot take part \(rank 0: CUDA is not available: /);
        expect(r.initialized).to.equal(false);
        expect(r.device, 'the default device, LOCAL_RANK unset').to.equal('0');
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    });
  });
});


function runRank(rank, world, port) {
  return new Promise((resolve) => {
    const env = { ...process.env, RANK: String(rank), LOCAL_RANK: String(rank), WORLD_SIZE: String(world),
      MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), CRB_CUDA_DEVICE: '' };
    const p = spawn(process.execPath, [child], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('close', (code) => {
      try {
        resolve(JSON.parse(out));
      } catch {
        resolve({ error: `rank ${rank} exited ${code} without a report: ${err.slice(-2000)}` });
      }
    });
  });
}

describe('92 NCCL collectives on CUDA tensors, one rank per GPU @cuda', function () {
  this.timeout(180000);
  const lib = require('../dist/index.js');
  const cuda = lib.backendInfo().cuda;
  const nccl = lib.distributed.ncclInfo();
  const gloo = lib.distributed.glooInfo();
  const missing = !cuda.available ? `CUDA unavailable: ${cuda.reason}`
    : !nccl.available ? `NCCL unavailable: ${nccl.reason}`
      : !gloo.available ? `gloo unavailable (NCCL's rendezvous runs over it): ${gloo.reason}` : '';
  let reports = [];
  before(async function () {
    if (missing) {
      if (process.env.REQUIRE_CUDA === '1') throw new Error(`REQUIRE_CUDA=1 but ${missing}`);
      console.log(`      skipped: ${missing}`);
      this.skip();
    }
    const world = cuda.devices.length;
    const port = await freePort();
    reports = await Promise.all(Array.from({ length: world }, (_, r) => runRank(r, world, port)));
    for (const r of reports) expect(r.error, JSON.stringify(r)).to.equal(undefined);
  });

  it('allReduce sum, avg, max, min (float32, float16, int64), in place on every rank', function () {
    for (const r of reports) {
      const w = r.world;
      const tri = (w * (w + 1)) / 2;
      expect(r.backend).to.equal('nccl');
      expect(r.sum).to.deep.equal([tri, 10 * tri]);
      expect(r.avg).to.deep.equal([(w - 1) / 2, w - 1]);
      expect(r.avgCompleted).to.equal(true);
      expect(r.max).to.deep.equal([w - 1, 0]);
      expect(r.min).to.deep.equal([0, -(w - 1)]);
      expect(r.half[0]).to.be.closeTo(tri - w / 2, 1e-2 * w);
      expect(r.ints).to.deep.equal([tri]);
    }
  });

  it('allReduceCoalesced (one NCCL group), broadcast from the last rank, allGather in rank order', function () {
    for (const r of reports) {
      const w = r.world;
      const tri = (w * (w + 1)) / 2;
      expect(r.coalesced[0]).to.deep.equal([0, 0, 0].map(() => (w * (w - 1)) / 2));
      expect(r.coalesced[1]).to.deep.equal([1, 2, 3, 4, 5].map((v) => v * tri));
      expect(r.broadcast).to.deep.equal([(w - 1) * 7, (w - 1) * 7 + 1]);
      expect(r.gathered).to.deep.equal(Array.from({ length: w }, (_, k) => [k, k + 0.25]).flat());
    }
  });

  it('keeps gloo for CPU tensors in the same group, and DDP averages CUDA gradients over NCCL', function () {
    for (const r of reports) {
      expect(r.cpuSum).to.deep.equal([(r.world * (r.world + 1)) / 2]);
      expect(r.ddpGrad.length).to.equal(12);
      r.ddpGrad.forEach((g, i) => expect(g).to.be.closeTo(r.plainGrad[i], 1e-5));
    }
  });
});
