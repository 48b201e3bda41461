#!/usr/bin/env node
// npm run build:gloo: libcrb_gloo.so, the data-parallel library over gloo, configured into
// build-gloo/ and built there from native/gloo/CMakeLists.txt (which finds gloo through
// GlooConfig.cmake: Debian/Ubuntu libgloo-dev). It lands in build/Release, next to the addon.
// Plain cmake, as for the CUDA backend (tools/build-cuda.mjs says why not cmake-js).
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = path.join(root, 'build-gloo');
const jobs = String(os.availableParallelism ? os.availableParallelism() : os.cpus().length);

for (const args of [['-S', path.join(root, 'native', 'gloo'), '-B', buildDir], ['--build', buildDir, '--parallel', jobs]]) {
  console.log(`build-gloo: cmake ${args.join(' ')}`);
  const r = spawnSync('cmake', args, { cwd: root, stdio: 'inherit' });
  if (r.error) {
    console.error(`build-gloo: could not run cmake (3.25 or newer, on PATH): ${r.error.message}`);
    process.exit(1);
  }
  if (r.status !== 0) {
    console.error(`build-gloo: cmake failed with exit code ${r.status} (see its output above)`);
    process.exit(r.status || 1);
  }
}
