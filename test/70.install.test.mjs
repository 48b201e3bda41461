// The package as users get it: pack, install the tarball into a fresh project with an empty npm
// cache and no compiler on PATH, and use it through require, import and the CLI.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkContents, cleanup, installAndRun, pack, prebuiltAddon, root } from '../tools/install-check.mjs';

describe('install from the packed tarball', function () {
  this.timeout(600000);
  let packed;
  let result;
  let dest;

  before(function () {
    if (!prebuiltAddon()) {
      // CI runs `npm run prebuild` before the tests; build it here otherwise.
      const r = spawnSync(process.execPath, [path.join(root, 'tools/prebuild.mjs')], { cwd: root, stdio: 'inherit', env: { ...process.env, CRB_BUILD_CUDA: process.env.CRB_BUILD_CUDA ?? '0' } });
      if (r.status !== 0) throw new Error('npm run prebuild failed');
    }
    dest = mkdtempSync(path.join(os.tmpdir(), 'crb-pack-'));
    packed = pack(dest);
    console.log(`      tarball: ${(packed.size / 1048576).toFixed(2)} MB, ${packed.files.length} files`);
    result = installAndRun(packed.tarball);
  });

  after(function () {
    if (result) cleanup(result);
    if (dest) rmSync(dest, { recursive: true, force: true });
  });

  it('packs dist, prebuilds, types, README, LICENSE and CHANGELOG under 40 MB, without tests', function () {
    expect(checkContents(packed)).to.deep.equal([]);
  });

  it('installs with an empty npm cache and no compiler on PATH, using the prebuilt binary (nothing compiled)', function () {
    expect(result.install.status, result.install.stdout + result.install.stderr).to.equal(0);
    // node-gyp-build found a prebuilt addon that loads, so neither install hook ran.
    expect(result.install.stdout + result.install.stderr).to.not.match(/building from source|gyp info|cudnn-resblock: /);
    expect(result.compiled).to.equal(false);
    expect(result.bin).to.equal(true);
  });

  it("runs the seed through require and through import", function () {
    const shapes = [[1, 3, 224, 224], [1, 6, 112, 112]];
    expect(JSON.parse(result.require.stdout).slice(0, 2), result.require.stderr).to.deep.equal(shapes);
    expect(JSON.parse(result.import.stdout).slice(0, 2), result.import.stderr).to.deep.equal(shapes);
  });

  it("runs the CLI's --help and doctor", function () {
    expect(result.help.status, result.help.stderr).to.equal(0);
    expect(result.help.stdout).to.match(/train/);
    expect(result.doctor.status, result.doctor.stderr).to.equal(0);
    expect(result.doctor.stdout).to.match(/cpu/i);
  });

  it('without a prebuild and without compilers, install names what is missing and fails', function () {
    // The package's own install script, run as npm runs it (node_modules/.bin on PATH), in a
    // directory that has tools/install.cjs and node-gyp-build but no addon to load.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'crb-source-'));
    try {
      const { scripts } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
      mkdirSync(path.join(dir, 'tools'));
      mkdirSync(path.join(dir, 'node_modules', '.bin'), { recursive: true });
      mkdirSync(path.join(dir, 'bin'));
      copyFileSync(path.join(root, 'tools', 'install.cjs'), path.join(dir, 'tools', 'install.cjs'));
      writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'cudnn-resblock', version: '0.0.0' }));
      const ngb = path.join(root, 'node_modules', 'node-gyp-build');
      symlinkSync(ngb, path.join(dir, 'node_modules', 'node-gyp-build'));
      for (const [name, file] of Object.entries(JSON.parse(readFileSync(path.join(ngb, 'package.json'), 'utf8')).bin)) {
        symlinkSync(path.join(ngb, file), path.join(dir, 'node_modules', '.bin', name));
      }
      symlinkSync(process.execPath, path.join(dir, 'bin', 'node'));
      const r = spawnSync('/bin/sh', ['-c', scripts.install], {
        cwd: dir, encoding: 'utf8',
        env: { PATH: [path.join(dir, 'node_modules', '.bin'), path.join(dir, 'bin')].join(path.delimiter), HOME: process.env.HOME },
      });
      expect(r.status, r.stdout + r.stderr).to.equal(1);
      expect(r.stdout).to.match(/no prebuilt binary for linux-x64; building from source/);
      expect(r.stderr).to.match(/cannot build from source: missing a C\+\+17 compiler \(g\+\+ or clang\+\+\), make, python3/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
