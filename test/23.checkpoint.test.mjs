// Checkpoints: save/load round trips with PyTorch's names and dtypes, a checkpoint written by
// PyTorch itself, resnet18's names against PyTorch's, and every way a load can fail, each of
// which must leave the model exactly as it was.
import { expect } from 'chai';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';

import { availableDevices, CheckpointError, io, load, manualSeed, noGrad, OutOfMemoryError, randn, ResidualBlock, resnet18, save, tensor } from '../dist/index.js';
import { FIXTURES, deviceTitle } from './helpers/block-fixtures.mjs';

const { loadStateDictFile, readSafetensorsFile, saveStateDict, serializeSafetensors, parseSafetensors } = io;

/** The CommonJS fs object the library calls through (the ESM namespace cannot be patched). */
const cjsFs = createRequire(import.meta.url)('node:fs');

const RESNET18_KEYS = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'resnet18_keys.json'), 'utf8'));
const FILE_DTYPE = { float32: 'F32', int64: 'I64' };

/** Host copies of every state-dict value, to prove a failed load changed nothing. */
function snapshot(model) {
  return Object.fromEntries(Object.entries(model.stateDict()).map(([k, t]) => [k, Array.from(t.toArraySync())]));
}

function escape(s) {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** A trained-looking block: one train forward so running stats and num_batches_tracked move. */
function trainedBlock(seed, device, c = 6) {
  manualSeed(seed);
  const blk = new ResidualBlock(3, c, { use1x1conv: true, strides: 2, device });
  const x = randn([2, 3, 8, 8], { device });
  blk.train();
  noGrad(() => blk.forward(x)).dispose();
  x.dispose();
  return blk;
}

for (const device of availableDevices()) {
  describe(deviceTitle('checkpoint save/load', device), () => {
    let dir;
    beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'crb-ckpt-')); });
    afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

    it('round-trips a ResidualBlock: PyTorch names, F32 tensors, I64 num_batches_tracked, metadata', () => {
      const a = trainedBlock(1, device);
      const file = path.join(dir, 'block.safetensors');
      save(a, file, { metadata: { epoch: '3' } });
      expect(fs.readdirSync(dir)).to.deep.equal(['block.safetensors']);

      const f = readSafetensorsFile(file);
      expect(f.metadata).to.deep.equal({ epoch: '3' });
      expect([...f.keys()].sort()).to.deep.equal([
        'bn1.bias', 'bn1.num_batches_tracked', 'bn1.running_mean', 'bn1.running_var', 'bn1.weight',
        'bn2.bias', 'bn2.num_batches_tracked', 'bn2.running_mean', 'bn2.running_var', 'bn2.weight',
        'conv1.bias', 'conv1.weight', 'conv2.bias', 'conv2.weight', 'conv3.bias', 'conv3.weight',
      ]);
      for (const [name, e] of f) {
        expect(e.dtype, name).to.equal(name.endsWith('num_batches_tracked') ? 'I64' : 'F32');
      }
      expect(f.get('bn1.num_batches_tracked').shape).to.deep.equal([]);
      expect(Array.from(f.get('bn1.num_batches_tracked').data)).to.deep.equal([1n]);
      expect(f.get('conv1.weight').shape).to.deep.equal([6, 3, 3, 3]);

      const b = trainedBlock(2, device);
      b.bn1.numBatchesTracked = 7;
      const before = snapshot(a);
      expect(snapshot(b)).to.not.deep.equal(before);
      const result = load(b, file);
      expect(result).to.deep.equal({ missingKeys: [], unexpectedKeys: [], metadata: { epoch: '3' } });
      expect(snapshot(b)).to.deep.equal(before);
      expect(b.bn1.numBatchesTracked).to.equal(1);
      a.dispose();
      b.dispose();
    });

    it('loads a checkpoint written by PyTorch (safetensors.torch.save_file(block.state_dict()))', () => {
      const file = path.join(FIXTURES, 'torch_ckpt_block_5_7_1x1_s2.safetensors');
      const blk = new ResidualBlock(5, 7, { use1x1conv: true, strides: 2, device });
      load(blk, file);
      const expected = readSafetensorsFile(file);
      const mine = blk.stateDict();
      for (const [name, e] of expected) {
        expect(Array.from(mine[name].toArraySync()), name).to.deep.equal(Array.from(e.data));
      }
      expect(blk.bn2.numBatchesTracked).to.equal(6);
      blk.dispose();
    });

    it('loadStateDictFile gives tensors with the file\'s names, shapes and dtypes', () => {
      const sd = loadStateDictFile(path.join(FIXTURES, 'torch_ckpt_block_5_7_1x1_s2.safetensors'));
      expect(sd['bn1.num_batches_tracked']).to.deep.include({ dtype: 'int64', device: 'cpu' });
      expect(sd['bn1.num_batches_tracked'].shape).to.deep.equal([]);
      expect(sd['conv3.weight'].shape).to.deep.equal([7, 5, 1, 1]);
      expect(sd['conv3.weight'].dtype).to.equal('float32');
      // and saveStateDict writes them back to the same bytes (same layout as the reference writer)
      const again = path.join(dir, 'again.safetensors');
      saveStateDict(sd, again);
      const original = fs.readFileSync(path.join(FIXTURES, 'torch_ckpt_block_5_7_1x1_s2.safetensors'));
      expect(Buffer.compare(fs.readFileSync(again), original)).to.equal(0);
      for (const t of Object.values(sd)) t.dispose();
    });

    describe('a failed load names the problem and leaves the model unchanged', () => {
      let model;
      let before;
      let good;
      beforeEach(() => {
        const source = trainedBlock(3, device);
        good = path.join(dir, 'good.safetensors');
        save(source, good);
        source.dispose();
        model = trainedBlock(4, device);
        before = snapshot(model);
      });
      afterEach(() => { model.dispose(); });

      /** A test body that must leave the model as it was. */
      const failing = (title, body) => it(title, () => {
        body();
        expect(snapshot(model), 'model changed by a failed load').to.deep.equal(before);
      });

      /** Rewrites the good checkpoint's tensors through `edit` (a Map of entries). */
      function variant(name, edit) {
        const parsed = parseSafetensors(fs.readFileSync(good), { copy: true });
        edit(parsed);
        const file = path.join(dir, name);
        fs.writeFileSync(file, serializeSafetensors(parsed));
        return file;
      }

      failing('truncated file', () => {
        const file = path.join(dir, 'cut.safetensors');
        const bytes = fs.readFileSync(good);
        fs.writeFileSync(file, bytes.subarray(0, bytes.length - 10));
        expect(() => load(model, file)).to.throw(new RegExp(`${escape(file)} entry ".*": data_offsets .* out of range`));
        fs.writeFileSync(file, bytes.subarray(0, 6));
        expect(() => load(model, file)).to.throw(/truncated: 6 bytes/);
      });

      failing('corrupted header', () => {
        const file = path.join(dir, 'corrupt.safetensors');
        const bytes = Buffer.from(fs.readFileSync(good));
        bytes.write('#', bytes.indexOf('"dtype":') + 7);  // the first "dtype": becomes "dtype"#
        fs.writeFileSync(file, bytes);
        expect(() => load(model, file)).to.throw(new RegExp(`safetensors ${escape(file)}: header is not valid JSON`));
      });

      failing('mismatched shape', () => {
        const file = variant('shape.safetensors', (m) => {
          m.set('conv1.weight', { dtype: 'F32', shape: [6, 3, 1, 9], data: m.get('conv1.weight').data });
        });
        expect(() => load(model, file)).to.throw(/conv1\.weight: shape \[6, 3, 1, 9\] in the file, \[6, 3, 3, 3\] in the model/);
        expect(() => load(model, file, { strict: false })).to.throw(/conv1\.weight: shape/);
      });

      failing('a checkpoint of another architecture', () => {
        const other = trainedBlock(5, device, 4);
        const file = path.join(dir, 'other.safetensors');
        save(other, file);
        other.dispose();
        expect(() => load(model, file)).to.throw(/nothing was loaded[\s\S]*conv1\.weight: shape \[4, 3, 3, 3\] in the file, \[6, 3, 3, 3\] in the model/);
      });

      failing('missing key', () => {
        const file = variant('missing.safetensors', (m) => m.delete('bn2.running_var'));
        expect(() => load(model, file)).to.throw(new RegExp(`load ${escape(file)}: .*\\n.*missing keys: bn2\\.running_var`));
      });

      failing('unexpected key', () => {
        const file = variant('unexpected.safetensors', (m) => {
          m.set('conv4.weight', { dtype: 'F32', shape: [1], data: Float32Array.of(1) });
        });
        expect(() => load(model, file)).to.throw(/unexpected keys: conv4\.weight/);
      });

      failing('mismatched dtype', () => {
        const file = variant('dtype.safetensors', (m) => {
          m.set('bn1.num_batches_tracked', { dtype: 'F32', shape: [], data: Float32Array.of(1) });
          m.set('bn1.weight', { dtype: 'F64', shape: [6], data: new Float64Array(6) });
        });
        expect(() => load(model, file)).to.throw(/bn1\.num_batches_tracked: dtype F32 in the file, I64 \(int64\) in the model/);
        expect(() => load(model, file)).to.throw(/bn1\.weight: dtype F64 in the file, F32 \(float32\) in the model/);
      });

      failing('a file that does not exist', () => {
        const file = path.join(dir, 'nope.safetensors');
        expect(() => load(model, file)).to.throw(new RegExp(`${escape(file)}: cannot read the file \\(ENOENT\\)`));
      });
    });

    it('keeps names like __proto__ and constructor as plain names', () => {
      const file = path.join(dir, 'proto.safetensors');
      const sd = Object.create(null);
      for (const [i, name] of ['__proto__', 'constructor', 'toString', 'hasOwnProperty'].entries()) sd[name] = tensor(Float32Array.of(i), [1]);
      saveStateDict(sd, file);
      const back = loadStateDictFile(file);
      expect(Object.getPrototypeOf(back)).to.equal(null);
      expect(Object.keys(back).sort()).to.deep.equal(['__proto__', 'constructor', 'hasOwnProperty', 'toString']);
      for (const [i, name] of ['__proto__', 'constructor', 'toString', 'hasOwnProperty'].entries()) {
        expect(Array.from(back[name].toArraySync()), name).to.deep.equal([i]);
      }
      // A model has no such names: strict reports them, non-strict loads the rest and lists them.
      const blk = trainedBlock(9, device);
      const blkFile = path.join(dir, 'blk.safetensors');
      const state = blk.stateDict();
      saveStateDict({ ...Object.fromEntries(Object.entries(state)), ...Object.fromEntries(Object.entries(sd)) }, blkFile);
      const other = trainedBlock(10, device);
      expect(() => load(other, blkFile)).to.throw(CheckpointError, /unexpected keys: .*__proto__/);
      const result = load(other, blkFile, { strict: false });
      expect(result.unexpectedKeys.sort()).to.deep.equal(['__proto__', 'constructor', 'hasOwnProperty', 'toString']);
      expect(snapshot(other)).to.deep.equal(snapshot(blk));
      for (const t of [...Object.values(sd), ...Object.values(back)]) t.dispose();
      blk.dispose();
      other.dispose();
    });

    it('checks its arguments: paths, options objects and option names', () => {
      const blk = trainedBlock(11, device);
      const file = path.join(dir, 'args.safetensors');
      save(blk, file);
      expect(() => save(blk, path.join(dir, 'a\0b'))).to.throw(TypeError, /^save: expected a non-empty file path without NUL bytes for file but received "[^"]*a\\u0000b" \(it contains a NUL byte\)$/);
      expect(() => save(blk, '')).to.throw(TypeError, /save: .* for file/);
      expect(() => load(blk, `${file}\0`)).to.throw(TypeError, /load: .*NUL bytes for file/);
      expect(() => load(blk, file, null)).to.throw(TypeError, /^load: Expected an options object for options but received null$/);
      expect(() => load(blk, file, { strit: false })).to.throw(TypeError, /load: Unknown option "strit" for options: expected one of "strict"/);
      expect(() => load(blk, file, { strict: 'no' })).to.throw(TypeError, /options\.strict/);
      expect(() => save(blk, file, null)).to.throw(TypeError, /^save: Expected an options object for options but received null$/);
      expect(() => save(blk, file, { meta: {} })).to.throw(TypeError, /save: Unknown option "meta" .*"metadata"/);
      expect(() => save(blk, file, { metadata: 'epoch 3' })).to.throw(TypeError, /save: expected an object of strings for options\.metadata/);
      expect(() => saveStateDict(blk.stateDict(), file, null)).to.throw(TypeError, /saveStateDict: Expected an options object/);
      expect(() => loadStateDictFile(file, null)).to.throw(TypeError, /loadStateDictFile: Expected an options object/);
      expect(() => loadStateDictFile(file, { device: 'gpu' })).to.throw(TypeError, /options\.device/);
      expect(() => loadStateDictFile(file, { dtype: 'float32' })).to.throw(TypeError, /Unknown option "dtype"/);
      expect(fs.readdirSync(dir)).to.deep.equal(['args.safetensors']);
      blk.dispose();
    });

    it('unreadable, mismatched and unwritable files are CheckpointErrors naming the file', () => {
      const blk = trainedBlock(12, device);
      const missing = path.join(dir, 'missing.safetensors');
      expect(() => load(blk, missing)).to.throw(CheckpointError).with.property('file', missing);
      const other = trainedBlock(13, device, 4);
      const otherFile = path.join(dir, 'other.safetensors');
      save(other, otherFile);
      expect(() => load(blk, otherFile)).to.throw(CheckpointError, /does not fit the model/).with.property('file', otherFile);
      const nowhere = path.join(dir, 'no', 'such', 'dir.safetensors');
      expect(() => save(blk, nowhere)).to.throw(CheckpointError, /save: cannot write .*ENOENT/).with.property('file', nowhere);
      blk.dispose();
      other.dispose();
    });

    it('an OutOfMemoryError while saving is rethrown as it is and leaves no temp file', async () => {
      const blk = trainedBlock(14, device);
      const file = path.join(dir, 'oom.safetensors');
      save(blk, file);
      const before = fs.readFileSync(file);
      // Reading a tensor too big for an ArrayBuffer throws OutOfMemoryError (lib/tensor).
      blk.conv2.weight.toArraySync = () => { throw new OutOfMemoryError('toArraySync: 68719476736 bytes do not fit an ArrayBuffer'); };
      expect(() => save(blk, file)).to.throw(OutOfMemoryError, /do not fit/);
      delete blk.conv2.weight.toArraySync;
      // The same while the temp file is open and half written.
      const writeSync = cjsFs.writeSync;
      let calls = 0;
      cjsFs.writeSync = (...args) => {
        if (++calls === 1) return writeSync(args[0], args[1], args[2], 16);
        throw new OutOfMemoryError('out of memory mid-write');
      };
      try {
        expect(() => save(blk, file)).to.throw(OutOfMemoryError, /mid-write/);
      } finally {
        cjsFs.writeSync = writeSync;
      }
      expect(calls).to.equal(2);
      expect(fs.readdirSync(dir)).to.deep.equal(['oom.safetensors']);
      expect(Buffer.compare(fs.readFileSync(file), before)).to.equal(0);
      blk.dispose();
    });

    it('strict: false loads what matches and reports the rest', () => {
      const source = trainedBlock(6, device);
      const file = path.join(dir, 'partial.safetensors');
      const sd = source.stateDict();
      const partial = Object.fromEntries(Object.entries(sd).filter(([k]) => k !== 'bn2.running_var'));
      saveStateDict({ ...partial, extra: sd['conv1.bias'] }, file);
      const model = trainedBlock(7, device);
      const keep = Array.from(model.bn2.runningVar.toArraySync());
      const result = load(model, file, { strict: false });
      expect(result.missingKeys).to.deep.equal(['bn2.running_var']);
      expect(result.unexpectedKeys).to.deep.equal(['extra']);
      expect(Array.from(model.bn2.runningVar.toArraySync())).to.deep.equal(keep);
      expect(Array.from(model.conv2.weight.toArraySync())).to.deep.equal(Array.from(source.conv2.weight.toArraySync()));
      source.dispose();
      model.dispose();
    });

    it('a failed save keeps the previous checkpoint', () => {
      const blk = trainedBlock(8, device);
      const file = path.join(dir, 'keep.safetensors');
      save(blk, file);
      const bytes = fs.readFileSync(file);
      expect(() => save(blk, file, { metadata: { epoch: 4 } })).to.throw(/metadata\["epoch"\] must be a string/);
      expect(Buffer.compare(fs.readFileSync(file), bytes)).to.equal(0);
      expect(fs.readdirSync(dir)).to.deep.equal(['keep.safetensors']);
      blk.dispose();
    });

    describe('resnet18', function () {
      this.timeout(300000);

      it('has PyTorch\'s state-dict names, shapes and dtypes, in order (resnet18_keys.json)', () => {
        const net = resnet18({ numClasses: 10, inChannels: 1, device });
        const sd = net.stateDict();
        expect(Object.keys(sd)).to.deep.equal(RESNET18_KEYS.keys.map((k) => k.name));
        for (const k of RESNET18_KEYS.keys) {
          expect(sd[k.name].shape, k.name).to.deep.equal(k.shape);
          expect(sd[k.name].dtype, k.name).to.equal(k.dtype);
        }
        expect(net.namedParameters().map(([n]) => n)).to.deep.equal(RESNET18_KEYS.parameter_names);
        expect(net.numParameters()).to.equal(RESNET18_KEYS.num_parameters);
        net.dispose();
      });

      it('round-trips through save/load with every tensor equal', () => {
        manualSeed(11);
        const a = resnet18({ numClasses: 10, inChannels: 1, device });
        const file = path.join(dir, 'resnet18.safetensors');
        save(a, file);
        const f = readSafetensorsFile(file);
        expect([...f.keys()].sort()).to.deep.equal(RESNET18_KEYS.keys.map((k) => k.name).sort());
        for (const k of RESNET18_KEYS.keys) {
          expect(f.get(k.name).dtype, k.name).to.equal(FILE_DTYPE[k.dtype]);
          expect(f.get(k.name).shape, k.name).to.deep.equal(k.shape);
        }
        manualSeed(12);
        const b = resnet18({ numClasses: 10, inChannels: 1, device });
        load(b, file);
        const sa = a.stateDict();
        const sb = b.stateDict();
        for (const name of Object.keys(sa)) {
          const x = sa[name].toArraySync();
          const y = sb[name].toArraySync();
          expect(Buffer.compare(Buffer.from(x.buffer, x.byteOffset, x.byteLength), Buffer.from(y.buffer, y.byteOffset, y.byteLength)), name).to.equal(0);
        }
        a.dispose();
        b.dispose();
      });
    });
  });
}

describe('save: only a regular file is replaced', function () {
  let dir;
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'crb-save-target-')); });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a FIFO or a directory at the path is a CheckpointError and stays what it was', async function () {
    const { spawnSync } = await import('node:child_process');
    const fifo = path.join(dir, 'pipe');
    expect(spawnSync('mkfifo', [fifo]).status).to.equal(0);
    const model = new ResidualBlock(1, 1, { device: 'cpu' });
    expect(() => save(model, fifo)).to.throw(CheckpointError, /is a FIFO, not a regular file/);
    expect(fs.statSync(fifo).isFIFO()).to.equal(true);
    const sub = path.join(dir, 'sub');
    fs.mkdirSync(sub);
    let err;
    await io.saveAsync(model, sub).catch((e) => { err = e; });
    expect(err).to.be.instanceOf(CheckpointError);
    expect(err.message).to.match(/is a directory, not a regular file/);
    expect(fs.statSync(sub).isDirectory()).to.equal(true);
    expect(fs.readdirSync(dir).sort()).to.deep.equal(['pipe', 'sub']);  // no temp file left
    model.dispose();
  });

  it('a symlink is followed: the file it points at is replaced, the link stays', function () {
    const real = path.join(dir, 'real.safetensors');
    const link = path.join(dir, 'link.safetensors');
    const model = new ResidualBlock(1, 1, { device: 'cpu' });
    save(model, real);
    fs.symlinkSync(real, link);
    const before = fs.statSync(real).mtimeMs;
    save(model, link);
    expect(fs.lstatSync(link).isSymbolicLink()).to.equal(true);
    expect(fs.statSync(real).isFile()).to.equal(true);
    expect(fs.statSync(real).mtimeMs).to.be.at.least(before);
    load(model, link);
    model.dispose();
  });
});
