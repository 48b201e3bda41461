#!/usr/bin/env node
// npm "install" script. Uses the prebuilt addon when one matches this platform (nothing is
// compiled or downloaded); otherwise builds from source with node-gyp, plus the CUDA backend
// when nvcc, cmake and cuDNN are found. Says what it did, and names what is missing if it can't.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const log = (msg) => console.log(`cudnn-resblock: ${msg}`);

function findPrebuilt() {
  try {
    return require('node-gyp-build').path(root);
  } catch {
    return null;
  }
}

function which(cmd) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch { /* keep looking */ }
  }
  return null;
}

const existing = findPrebuilt();
if (existing && process.env.CRB_BUILD_FROM_SOURCE !== '1') {
  log(`using ${path.relative(root, existing)}`);
  process.exit(0);
}

log(`no prebuilt binary for ${process.platform}-${process.arch}; building from source`);
const missing = [];
if (!which('c++') && !which('g++') && !which('clang++')) missing.push('a C++17 compiler (g++ or clang++)');
if (!which('make')) missing.push('make');
if (!which('python3') && !which('python')) missing.push('python3 (node-gyp runs on it)');
const nodeGyp = process.env.npm_config_node_gyp || (() => {
  try { return require.resolve('node-gyp/bin/node-gyp.js'); } catch { return null; }
})();
if (!nodeGyp && !which('node-gyp')) missing.push('node-gyp (comes with npm)');
if (missing.length) {
  console.error(`cudnn-resblock: cannot build from source: missing ${missing.join(', ')}.\n` +
    '  Install them (Debian/Ubuntu: apt-get install g++ make python3) and run npm install again,\n' +
    '  or use a platform with prebuilt binaries (Linux x64, glibc).');
  process.exit(1);
}
const gyp = nodeGyp ? [process.execPath, [nodeGyp, 'rebuild']] : ['node-gyp', ['rebuild']];
const built = spawnSync(gyp[0], gyp[1], { cwd: root, stdio: 'inherit' });
if (built.status !== 0) {
  console.error('cudnn-resblock: the source build of the addon failed (see the compiler output above)');
  process.exit(built.status || 1);
}
log('built the addon with the CPU backend');

// The CUDA backend is optional: the CPU backend works without it.
if (process.env.CRB_BUILD_CUDA === '0') {
  log('CUDA backend not built (CRB_BUILD_CUDA=0)');
} else {
  const nvcc = which('nvcc') || (fs.existsSync('/usr/local/cuda/bin/nvcc') ? '/usr/local/cuda/bin/nvcc' : null);
  const cmake = which('cmake');
  if (!nvcc || !cmake) {
    log(`CUDA backend not built (${[!nvcc && 'nvcc', !cmake && 'cmake'].filter(Boolean).join(' and ')} not found); the CPU backend will be used`);
  } else {
    const r = spawnSync(process.execPath, [path.join(root, 'tools/build-cuda.mjs')], { cwd: root, stdio: 'inherit' });
    if (r.status === 0) log('built the CUDA backend');
    else log('CUDA backend not built (see above); the CPU backend will be used');
  }
}

