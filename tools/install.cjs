#!/usr/bin/env node
// The two hooks of the npm "install" script, which is node-gyp-build's own:
//   node-gyp-build "node tools/install.cjs check" "node tools/install.cjs cuda"
// node-gyp-build uses the prebuilt addon when one loads here (nothing is compiled or downloaded;
// `npm install --build-from-source` skips it), else runs `check`, then `node-gyp rebuild`, then
// `cuda`. What is ours: `check` says why it builds and names the missing build tools before
// node-gyp fails less clearly; `cuda` builds the optional CUDA backend (tools/build-cuda.mjs;
// CMakeLists.txt finds nvcc and cuDNN) and never fails the install, since the CPU backend works
// without it.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const log = (msg) => console.log(`cudnn-resblock: ${msg}`);

function which(cmd) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    try {
      fs.accessSync(path.join(dir, cmd), fs.constants.X_OK);
      return true;
    } catch { /* keep looking */ }
  }
  return false;
}

function check() {
  let prebuilt = null;
  try { prebuilt = require('node-gyp-build').path(root); } catch { /* none for this platform */ }
  if (process.env.npm_config_build_from_source === 'true') log('building from source (--build-from-source)');
  else if (prebuilt) log(`${path.relative(root, prebuilt)} does not load here; building from source`);
  else log(`no prebuilt binary for ${process.platform}-${process.arch}; building from source`);
  const missing = [];
  if (!which('c++') && !which('g++') && !which('clang++')) missing.push('a C++17 compiler (g++ or clang++)');
  if (!which('make')) missing.push('make');
  if (!which('python3') && !which('python')) missing.push('python3 (node-gyp runs on it)');
  let nodeGyp = which('node-gyp');
  try { nodeGyp ||= !!require.resolve('node-gyp/package.json'); } catch { /* not installed */ }
  if (!nodeGyp) missing.push('node-gyp (comes with npm)');
  if (missing.length) {
    console.error(`cudnn-resblock: cannot build from source: missing ${missing.join(', ')}.\n` +
      '  Install them (Debian/Ubuntu: apt-get install g++ make python3) and run npm install again,\n' +
      '  or use a platform with prebuilt binaries (Linux x64, glibc).');
    process.exit(1);
  }
}

function cuda() {
  log('built the addon with the CPU backend');
  if (process.env.CRB_BUILD_CUDA === '0') return log('CUDA backend not built (CRB_BUILD_CUDA=0)');
  if (!which('cmake')) return log('CUDA backend not built (cmake not found); the CPU backend will be used');
  const r = spawnSync(process.execPath, [path.join(root, 'tools', 'build-cuda.mjs')], { cwd: root, stdio: 'inherit' });
  log(r.status === 0 ? 'built the CUDA backend' : 'CUDA backend not built (see above); the CPU backend will be used');
}

const hooks = { check, cuda };
if (!hooks[process.argv[2]]) {
  console.error('usage: node tools/install.cjs check|cuda (the hooks of `node-gyp-build`, the install script)');
  process.exit(2);
}
hooks[process.argv[2]]();
