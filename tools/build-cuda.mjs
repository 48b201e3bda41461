#!/usr/bin/env node
// npm run build:cuda: the CUDA/cuDNN backend, configured into build-cuda/ and built there. This
// only runs CMake; CMakeLists.txt finds nvcc and cuDNN 9 (its header lists the settings, e.g.
// CUDNN_ROOT, CRB_CUDA_ARCHITECTURES) and writes build/Release/libcrb_cuda.so, next to the addon.
//
// Plain cmake, not cmake-js: libcrb_cuda.so is not a Node addon. cmake-js would add Node include
// paths, CMAKE_JS_* variables and -DBUILDING_NODE_EXTENSION that this library does not use, and
// would have to become a runtime dependency for source installs to build the backend; what it
// would replace here is the two spawns below.
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = path.join(root, 'build-cuda');
const jobs = String(os.availableParallelism ? os.availableParallelism() : os.cpus().length);

for (const args of [['-S', root, '-B', buildDir], ['--build', buildDir, '--parallel', jobs]]) {
  console.log(`build-cuda: cmake ${args.join(' ')}`);
  const r = spawnSync('cmake', args, { cwd: root, stdio: 'inherit' });
  if (r.error) {
    console.error(`build-cuda: could not run cmake (3.25 or newer, on PATH): ${r.error.message}`);
    process.exit(1);
  }
  if (r.status !== 0) {
    console.error(`build-cuda: cmake failed with exit code ${r.status} (see its output above)`);
    process.exit(r.status || 1);
  }
}
