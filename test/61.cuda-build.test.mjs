// Build and ABI checks of the CUDA backend library, for machines without a GPU (CI): the shared
// library exports its entry points (and the stream side interface) and nothing else, finds cuDNN through $ORIGIN, links
// neither cudart nor the driver, and the addon explains why CUDA is unavailable (after checking
// the library's ABI). Skipped, with the reason printed, when libcrb_cuda.so is not built.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

import { expect } from 'chai';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// The backend library sits next to the addon that loads (build/Release, or prebuilds/ after
// `npm run prebuild`, which moves the addon there).
const library = (() => {
  try {
    return join(dirname(createRequire(import.meta.url)('node-gyp-build').path(root)), 'libcrb_cuda.so');
  } catch {
    return join(root, 'build', 'Release', 'libcrb_cuda.so');
  }
})();
const backendApi = readFileSync(join(root, 'native', 'backend', 'backend_api.h'), 'utf8');
const ABI_VERSION = Number(/#define CRB_ABI_VERSION (\d+)/.exec(backendApi)[1]);
const ENTRY_POINT = /#define CRB_CUDA_ENTRY_POINT "(\w+)"/.exec(backendApi)[1];

function tool(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) throw new Error(`${cmd} could not run: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

function haveTool(cmd) {
  return !spawnSync(cmd, ['--version'], { encoding: 'utf8' }).error;
}

// The directory holding libcudnn.so.9, as the build found it: CUDNN_LIB_DIR, CUDNN_ROOT/lib, or
// the CMake cache of the last `npm run build:cuda`. Null when unknown.
function cudnnLibDir() {
  const candidates = [];
  if (process.env.CUDNN_LIB_DIR) candidates.push(process.env.CUDNN_LIB_DIR);
  if (process.env.CUDNN_ROOT) candidates.push(join(process.env.CUDNN_ROOT, 'lib'), join(process.env.CUDNN_ROOT, 'lib64'));
  const cache = join(root, 'build-cuda', 'CMakeCache.txt');
  if (existsSync(cache)) {
    const m = /^CUDNN_LIBRARY:[A-Z]+=(.*)$/m.exec(readFileSync(cache, 'utf8'));
    if (m) candidates.push(dirname(m[1].trim()));
  }
  return candidates.find((d) => existsSync(join(d, 'libcudnn.so.9'))) ?? null;
}

// backendInfo().cuda from a fresh process (the loader runs once per process), with `env` added.
function cudaInfoInChild(env) {
  const script = `
    const n = require('node-gyp-build')(${JSON.stringify(root)});
    process.stdout.write(JSON.stringify(n.backendInfo().cuda));`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`child failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const driverMissing = (cuda) =>
  cuda.attempts.some((a) => a.what === 'driver libcuda.so.1' && !a.result.startsWith('ok'));

describe('CUDA backend library (build and ABI, no GPU needed)', function () {
  before(function () {
    if (!existsSync(library)) {
      console.log(`      skipped: ${library} is not built (npm run build:cuda needs nvcc and cuDNN 9)`);
      this.skip();
    }
  });

  it('exports crb_cuda_abi_version, the entry point crb_cuda_backend and crb_cuda_interop, and nothing else', function () {
    expect(ENTRY_POINT, 'CRB_CUDA_ENTRY_POINT').to.equal('crb_cuda_backend');
    if (!haveTool('nm')) this.skip();
    const defined = tool('nm', ['-D', '--defined-only', library])
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .filter((f) => f.length === 3 && /[TtWwDdBbRrVv]/.test(f[1]))
      .map((f) => f[2]);
    expect(defined).to.include.members(['crb_cuda_abi_version', ENTRY_POINT, 'crb_cuda_interop']);
    expect(defined.filter((s) => !s.startsWith('crb_cuda_')), 'other exported symbols').to.deep.equal([]);
  });

  it('has RUNPATH $ORIGIN and needs libcudnn.so.9 but neither libcudart nor libcuda', function () {
    if (!haveTool('readelf')) this.skip();
    const dyn = tool('readelf', ['-d', library]);
    const needed = [...dyn.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
    expect(needed).to.include('libcudnn.so.9');
    expect(needed.filter((n) => /^libcudart|^libcuda\.so|^libcublas|^libnvrtc/.test(n))).to.deep.equal([]);
    expect(dyn).to.match(/\(RUNPATH\)\s+Library runpath: \[\$ORIGIN\]/);
    expect(dyn, 'no absolute build paths baked in').to.not.match(/\(RPATH\)/);
  });

  it('crb_cuda_backend returns null and says why when there is no driver', function () {
    const cudnn = cudnnLibDir();
    if (!cudnn || !haveTool('cc')) {
      console.log(`      skipped: needs a C compiler and libcudnn.so.9 (found: ${cudnn ?? 'none'})`);
      this.skip();
    }
    const dir = mkdtempSync(join(tmpdir(), 'crb-cuda-abi-'));
    try {
      writeFileSync(join(dir, 'probe.c'), `
        #include <dlfcn.h>
        #include <stdint.h>
        #include <stdio.h>
        int main(int argc, char** argv) {
          void* h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
          if (!h) { printf("dlopen failed: %s\\n", dlerror()); return 2; }
          uint32_t (*abi)(void) = (uint32_t (*)(void))dlsym(h, "crb_cuda_abi_version");
          const void* (*entry)(char*, size_t) = (const void* (*)(char*, size_t))dlsym(h, "${ENTRY_POINT}");
          if (!abi || !entry) { printf("symbols missing\\n"); return 3; }
          char why[1024] = "untouched";
          const void* table = entry(why, sizeof why);
          const void* again = entry(why, sizeof why);
          printf("abi=%u\\ntable=%s\\nagain=%s\\nwhy=%s\\n", abi(), table ? "set" : "null", again ? "set" : "null", why);
          return 0;
        }`);
      tool('cc', ['-o', join(dir, 'probe'), join(dir, 'probe.c'), '-ldl']);
      const r = spawnSync(join(dir, 'probe'), [library], {
        encoding: 'utf8',
        env: { ...process.env, LD_LIBRARY_PATH: [cudnn, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') },
      });
      expect(r.status, r.stdout + r.stderr).to.equal(0);
      const out = Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2)));
      expect(out.abi).to.equal(String(ABI_VERSION));
      if (out.table === 'set') {
        console.log('      (a usable GPU is present: the no-driver path is not exercised here)');
        return;
      }
      expect(out.again).to.equal('null');
      // Without a driver the static CUDA runtime reports error 35 (or 100, no device).
      expect(out.why).to.match(/cudaGetDeviceCount/);
      expect(out.why).to.match(/cudaErrorInsufficientDriver|cudaErrorNoDevice|no CUDA device/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('through the addon', function () {
    before(function () {
      const r = spawnSync(process.execPath, ['-e', `require('node-gyp-build')(${JSON.stringify(root)})`], {
        encoding: 'utf8',
      });
      if (r.status !== 0) {
        console.log(`      skipped: the addon does not load: ${r.stderr.split('\n')[0]}`);
        this.skip();
      }
    });

    it('reports CUDA unavailable for want of a driver, after checking the backend ABI', function () {
      const cudnn = cudnnLibDir();
      const cuda = cudaInfoInChild(cudnn ? { CUDNN_LIB_DIR: cudnn } : {});
      if (!driverMissing(cuda)) {
        console.log('      skipped: this machine has a CUDA driver (see 60.cuda.test.mjs)');
        this.skip();
      }
      expect(cuda.available).to.equal(false);
      expect(cuda.reason).to.include('no CUDA driver');
      expect(cuda.reason).to.include('libcuda.so.1');
      expect(cuda.hint).to.be.a('string').that.is.not.empty;
      expect(cuda.library).to.equal(library);
      expect(cuda.devices).to.deep.equal([]);
      const what = cuda.attempts.map((a) => a.what);
      expect(what[0]).to.equal('driver libcuda.so.1');
      expect(what).to.include(`backend ${library}`);
      if (cudnn) {
        expect(cuda.attempts).to.deep.include({ what: `cuDNN ${cudnn}/libcudnn.so.9 (CUDNN_LIB_DIR)`, result: 'ok' });
        expect(cuda.attempts).to.deep.include({ what: `backend ${library}`, result: 'ok' });
        expect(cuda.attempts).to.deep.include({ what: 'backend ABI', result: `ok (version ${ABI_VERSION})` });
        const found = cuda.attempts.find((a) => a.what === 'cuDNN libcudnn.so.9');
        expect(found?.result).to.match(/^ok, version 9\.\d+\.\d+, /);
      } else {
        console.log('      (libcudnn.so.9 not found: the backend cannot load, so its ABI is not checked)');
        const backend = cuda.attempts.find((a) => a.what === `backend ${library}`);
        expect(backend.result).to.include('libcudnn.so.9');
      }
    });

    it('names a library without the ABI symbols (CRB_CUDA_BACKEND) in the attempts', function () {
      // Any loadable shared object lacking crb_cuda_abi_version will do; the addon itself is one.
      // `npm run prebuild` moves the addon from build/Release to prebuilds/: either copy will do.
      const addon = [join(root, 'build', 'Release', 'cudnn_resblock.node'),
        join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'cudnn-resblock.glibc.node')].find((f) => existsSync(f));
      if (!addon) this.skip();
      const cuda = cudaInfoInChild({ CRB_CUDA_BACKEND: addon });
      expect(cuda.available).to.equal(false);
      expect(cuda.library).to.equal(addon);
      expect(cuda.attempts).to.deep.include({ what: `backend ${addon} (CRB_CUDA_BACKEND)`, result: 'ok' });
      const abi = cuda.attempts.find((a) => a.what === 'backend ABI');
      expect(abi?.result).to.include('missing crb_cuda_abi_version');
    });

    it('reports a missing CRB_CUDA_BACKEND file', function () {
      const missing = join(tmpdir(), 'no-such-dir-crb', 'libcrb_cuda.so');
      const cuda = cudaInfoInChild({ CRB_CUDA_BACKEND: missing });
      expect(cuda.available).to.equal(false);
      expect(cuda.attempts).to.deep.include({ what: `backend ${missing} (CRB_CUDA_BACKEND)`, result: 'not found' });
      if (!driverMissing(cuda)) expect(cuda.reason).to.include(missing);
    });
  });
});
