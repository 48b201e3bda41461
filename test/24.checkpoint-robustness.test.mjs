// Checkpoint robustness: a corpus of malformed safetensors files (tools/gen_malformed_safetensors.mjs)
// loaded into a model whose names they use, deterministic mutations of a valid file, and saves
// killed with SIGKILL: every bad file is a CheckpointError naming it with the model unchanged,
// a killed save leaves the old or the new file, and its temp file is removed by the next save.
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { BatchNorm2d, CheckpointError, Conv2d, data, io, load, save, Sequential, tensor } from '../dist/index.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CORPUS = path.join(ROOT, 'test/fixtures/malformed-safetensors');
const INDEX = JSON.parse(fs.readFileSync(path.join(CORPUS, 'index.json'), 'utf8'));
const DIST = path.join(ROOT, 'dist/index.js');

/** The model the corpus is written for, with values unlike the valid file's. */
function model() {
  return new Sequential(new Conv2d(1, 2, 1), new BatchNorm2d(2));
}

function snapshot(m) {
  return Object.fromEntries(Object.entries(m.stateDict()).map(([k, t]) => [k, Array.from(t.toArraySync(), Number)]));
}

function caught(f) {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}


describe('checkpoint robustness', () => {
  let dir;
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'crb-robust-')); });
  afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

  describe('the malformed-safetensors corpus', () => {
    it('is what tools/gen_malformed_safetensors.mjs writes (regenerate it after editing the generator)', () => {
      const out = path.join(dir, 'corpus');
      const r = spawnSync(process.execPath, [path.join(ROOT, 'tools/gen_malformed_safetensors.mjs'), out], { encoding: 'utf8' });
      expect(r.status, r.stderr).to.equal(0);
      expect(fs.readdirSync(out).sort()).to.deep.equal(fs.readdirSync(CORPUS).sort());
      for (const name of fs.readdirSync(out)) {
        expect(Buffer.compare(fs.readFileSync(path.join(out, name)), fs.readFileSync(path.join(CORPUS, name))), name).to.equal(0);
      }
      const malformed = INDEX.files.filter((f) => !f.valid);
      expect(malformed.length).to.be.at.least(40);
      expect(new Set(malformed.map((f) => f.defect)).size, 'each file a distinct defect').to.equal(malformed.length);
    });

    it('every malformed file is a CheckpointError naming the file and the defect; the model is unchanged', () => {
      const m = model();
      const before = snapshot(m);
      const wrong = [];
      for (const entry of INDEX.files.filter((f) => !f.valid)) {
        const file = path.join(CORPUS, entry.file);
        const err = caught(() => load(m, file));
        if (!(err instanceof CheckpointError)) {
          wrong.push(`${entry.file}: ${err === undefined ? 'loaded' : `${err.constructor.name}: ${err.message}`}`);
        } else if (err.file !== file) {
          wrong.push(`${entry.file}: error.file is ${err.file}`);
        } else if (!new RegExp(entry.match).test(err.message)) {
          wrong.push(`${entry.file}: message ${JSON.stringify(err.message)} does not match /${entry.match}/`);
        } else if (!err.message.includes(file)) {
          wrong.push(`${entry.file}: message does not name the file`);
        }
      }
      expect(wrong, wrong.join('\n')).to.deep.equal([]);
      expect(snapshot(m), 'model changed by a failed load').to.deep.equal(before);
      m.dispose();
    });

    it('the valid files load, with the values the generator wrote', () => {
      for (const entry of INDEX.files.filter((f) => f.valid)) {
        const m = model();
        const result = load(m, path.join(CORPUS, entry.file));
        expect(result.missingKeys, entry.file).to.deep.equal([]);
        expect(result.metadata.format, entry.file).to.equal('pt');
        const got = snapshot(m);
        for (const [name, values] of Object.entries(INDEX.values)) expect(got[name], `${entry.file} ${name}`).to.deep.equal(values);
        m.dispose();
      }
      const proto = load(model(), path.join(CORPUS, 'valid-proto-metadata.safetensors')).metadata;
      expect(Object.getOwnPropertyDescriptor(proto, '__proto__').value).to.equal('x');
      expect(Object.getPrototypeOf(proto)).to.equal(Object.prototype);
    });

    it('the reader alone rejects every file that is not valid safetensors with a CheckpointError', () => {
      for (const entry of INDEX.files.filter((f) => !f.valid)) {
        const file = path.join(CORPUS, entry.file);
        const err = caught(() => io.loadStateDictFile(file));
        if (err === undefined) continue;  // valid safetensors that only does not fit the model
        expect(err, entry.file).to.be.instanceOf(CheckpointError);
      }
    });
  });

  it('load() refuses /dev/zero, a FIFO, a directory and a missing file without reading or blocking', function () {
    const m = model();
    const before = snapshot(m);
    const fifo = path.join(dir, 'fifo.safetensors');
    const made = spawnSync('mkfifo', [fifo]).status === 0;
    const cases = [
      ['/dev/zero', /safetensors \/dev\/zero: cannot read the file: it is a character device, not a regular file/],
      [dir, /cannot read the file: it is a directory, not a regular file/],
      [path.join(dir, 'missing.safetensors'), /cannot read the file \(ENOENT\)/],
      ...(made ? [[fifo, /cannot read the file: it is a FIFO \(named pipe\), not a regular file/]] : []),
    ];
    for (const [file, message] of cases) {
      const err = caught(() => load(m, file));
      expect(err, file).to.be.instanceOf(CheckpointError);
      expect(err.message, file).to.match(message);
      expect(err.file).to.equal(file);
    }
    expect(snapshot(m)).to.deep.equal(before);
    m.dispose();
    if (!made) this.skip();
  });

  it('a file that does not fit is refused from its header, before its tensors are read (64 GiB sparse file)', () => {
    const m = model();
    const before = snapshot(m);
    const n = 2 ** 34;  // F32 elements: 64 GiB of data
    const header = Buffer.from(JSON.stringify({ '0.weight': { dtype: 'F32', shape: [n], data_offsets: [0, 4 * n] } }));
    const file = path.join(dir, 'huge.safetensors');
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(header.length));
    fs.writeFileSync(file, Buffer.concat([length, header]));
    fs.truncateSync(file, 8 + header.length + 4 * n);
    const h = io.readSafetensorsHeader(file);
    expect(h.entries.get('0.weight')).to.deep.equal({ dtype: 'F32', shape: [n], dataOffsets: [0, 4 * n] });
    const err = caught(() => load(m, file));
    expect(err).to.be.instanceOf(CheckpointError);
    expect(err.message).to.match(/0\.weight: shape \[17179869184\] in the file, \[2, 1, 1, 1\] in the model/);
    expect(snapshot(m)).to.deep.equal(before);
    m.dispose();
  });

  it('600 deterministic mutations of a valid file either load or throw a CheckpointError, never anything else', function () {
    this.timeout(120000);
    const good = fs.readFileSync(path.join(CORPUS, 'valid.safetensors'));
    const next = data.mulberry32(24);
    const m = model();
    const file = path.join(dir, 'mutant.safetensors');
    let loaded = 0;
    let rejected = 0;
    for (let i = 0; i < 600; i++) {
      let bytes = Buffer.from(good);
      const kind = i % 5;
      const at = Math.floor(next() * bytes.length);
      if (kind === 0) bytes[at] ^= 1 << Math.floor(next() * 8);                       // a bit flip
      else if (kind === 1) bytes[at] = Math.floor(next() * 256);                      // a byte
      else if (kind === 2) bytes = bytes.subarray(0, at);                              // truncated
      else if (kind === 3) bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1 + Math.floor(next() * 8))]);  // bytes cut out
      else bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from('{[",:]}0-e'.charAt(Math.floor(next() * 10))), bytes.subarray(at)]);  // a JSON character in
      fs.writeFileSync(file, bytes);
      const before = snapshot(m);
      const err = caught(() => load(m, file));
      if (err === undefined) {
        loaded++;
        continue;
      }
      if (!(err instanceof CheckpointError)) expect.fail(`mutation ${i} (kind ${kind} at ${at}): ${err.constructor.name}: ${err.message}`);
      expect(snapshot(m), `mutation ${i}: model changed by a failed load`).to.deep.equal(before);
      rejected++;
    }
    expect(rejected).to.be.above(300);
    expect(loaded).to.be.above(0);  // flips in the data region are valid files with other values
    m.dispose();
  });

  describe('saves killed with SIGKILL', function () {
    this.timeout(120000);

    /** A child that saves A, B, A, ... (1M floats each, 4 MB) to `file` until it is killed. */
    function saver(file) {
      const script = `
        const lib = require(${JSON.stringify(DIST)});
        const n = 1 << 20;
        const make = (v) => ({ w: lib.tensor(new Float32Array(n).fill(v), [n]), tag: lib.tensor(Int32Array.of(v), [1], { dtype: 'int32' }) });
        const sds = [make(1), make(2)];
        for (let i = 0; ; i++) {
          lib.io.saveStateDict(sds[i % 2], ${JSON.stringify(file)});
          if (i === 1) process.stdout.write('ready\\n');
        }`;
      const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      const ready = new Promise((resolve, reject) => {
        child.stdout.on('data', (d) => { if (String(d).includes('ready')) resolve(); });
        child.on('exit', (code, signal) => reject(new Error(`saver exited early (${code ?? signal})`)));
      });
      return { child, ready };
    }

    const temps = (d, base) => fs.readdirSync(d).filter((n) => n.startsWith(`${base}.tmp-`));

    it('leave the old or the new file, never a torn one; the next save removes their temp files', async () => {
      const file = path.join(dir, 'ckpt.safetensors');
      const killedPids = [];
      let leftover = 0;
      for (let round = 0; round < 6; round++) {
        const { child, ready } = saver(file);
        await ready;
        // Kill it while a temp file exists (mid-write) where possible, else after a short delay.
        const deadline = Date.now() + 2000;
        while (Date.now() < deadline && !temps(dir, 'ckpt.safetensors').some((n) => n.includes(`-${child.pid}-`))) {
          await new Promise((r) => setTimeout(r, 1 + (round % 3)));
        }
        const exited = new Promise((r) => child.on('exit', r));
        child.kill('SIGKILL');
        await exited;
        killedPids.push(child.pid);
        if (temps(dir, 'ckpt.safetensors').some((n) => n.includes(`-${child.pid}-`))) leftover++;
        const f = io.readSafetensorsFile(file);
        const tag = f.get('tag').data[0];
        expect([1, 2], `round ${round}`).to.include(tag);
        expect(Array.from(f.get('w').data.subarray(0, 4))).to.deep.equal([tag, tag, tag, tag]);
        expect(f.get('w').data.every((v) => v === tag), `round ${round}: a torn file`).to.equal(true);
      }
      expect(leftover, 'no kill landed mid-write in 6 rounds').to.be.above(0);

      // A live process's temp file (ours), and one of a dead process for another target, stay.
      const live = path.join(dir, `ckpt.safetensors.tmp-${process.pid}-0123456789ab`);
      fs.writeFileSync(live, 'a save in progress');
      const deadPid = spawnSync(process.execPath, ['-e', '']).pid;
      const otherTarget = path.join(dir, `other.safetensors.tmp-${deadPid}-0123456789ab`);
      fs.writeFileSync(otherTarget, 'x');
      const fabricated = path.join(dir, `ckpt.safetensors.tmp-${deadPid}-abcdef012345`);
      fs.writeFileSync(fabricated, 'left by a killed save');
      const notOurs = path.join(dir, `ckpt.safetensors.tmp-${deadPid}-notours`);
      fs.writeFileSync(notOurs, 'x');

      io.saveStateDict({ w: tensor(Float32Array.of(7), [1]) }, file);
      expect(fs.readdirSync(dir).sort()).to.deep.equal([
        'ckpt.safetensors', path.basename(live), path.basename(notOurs), path.basename(otherTarget),
      ].sort());
      expect(Array.from(io.readSafetensorsFile(file).get('w').data)).to.deep.equal([7]);

      // The async save cleans up the same way.
      fs.writeFileSync(fabricated, 'left by a killed save');
      await io.saveStateDictAsync({ w: tensor(Float32Array.of(8), [1]) }, file);
      expect(fs.existsSync(fabricated)).to.equal(false);
      expect(fs.existsSync(live)).to.equal(true);
    });

    it('save() of a model removes a dead save\'s temp file too', () => {
      const file = path.join(dir, 'model.safetensors');
      const deadPid = spawnSync(process.execPath, ['-e', '']).pid;
      const stale = `${file}.tmp-${deadPid}-${'f'.repeat(12)}`;
      fs.writeFileSync(stale, Buffer.alloc(1024));
      const m = new Sequential(new Conv2d(1, 2, 1), new BatchNorm2d(2));
      save(m, file);
      expect(fs.readdirSync(dir)).to.deep.equal(['model.safetensors']);
      m.dispose();
    });
  });
});
