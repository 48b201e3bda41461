// The safetensors reader/writer: round trips, byte equality with the reference Python writer,
// every validation error, and atomic saves that never clobber the old file on failure.
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { spawnSync } from 'node:child_process';

import { CheckpointError, io, tensor } from '../dist/index.js';

const {
  parseSafetensors, serializeSafetensors, readSafetensorsFile, SafetensorsError, saveStateDict, saveStateDictAsync,
  halfBitsToNumber, numberToHalfBits, bf16BitsToNumber, numberToBf16Bits,
} = io;

const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

/** A file from a header object and raw data bytes, padded like the reference writer. */
function build(header, data = new Uint8Array(0), { pad = true } = {}) {
  let json = Buffer.from(JSON.stringify(header));
  if (pad && json.length % 8) json = Buffer.concat([json, Buffer.alloc(8 - (json.length % 8), 0x20)]);
  return rawFile(json, data);
}

function rawFile(headerBytes, data) {
  const out = new Uint8Array(8 + headerBytes.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  out.set(data, 8 + headerBytes.length);
  return out;
}

function headerOf(buf) {
  const n = Number(new DataView(buf.buffer, buf.byteOffset).getBigUint64(0, true));
  return { n, text: Buffer.from(buf.subarray(8, 8 + n)).toString('utf8') };
}

function tmpDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'crb-st-'));
}

describe('safetensors format', () => {
  describe('round trip', () => {
    it('keeps every dtype, shape, value and the metadata', () => {
      const entries = {
        w: { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 0, 1e-30, -7]) },
        d: { dtype: 'F64', shape: [2], data: Float64Array.from([Math.PI, -1e300]) },
        h: { dtype: 'F16', shape: [2], data: Uint16Array.from([0x3c00, 0xc000]) },
        b: { dtype: 'BF16', shape: [1], data: Uint16Array.from([0x3f80]) },
        n: { dtype: 'I64', shape: [], data: BigInt64Array.from([-(2n ** 62n)]) },
        i: { dtype: 'I32', shape: [1, 2], data: Int32Array.from([-5, 2 ** 31 - 1]) },
        u: { dtype: 'U8', shape: [3], data: Uint8Array.from([0, 128, 255]) },
        e: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
      };
      const bytes = serializeSafetensors(entries, { note: 'hello', 'ünï': 'côdé' });
      const parsed = parseSafetensors(bytes);
      expect(parsed.metadata).to.deep.equal({ note: 'hello', 'ünï': 'côdé' });
      expect([...parsed.keys()].sort()).to.deep.equal(Object.keys(entries).sort());
      for (const [name, e] of Object.entries(entries)) {
        const got = parsed.get(name);
        expect(got.dtype, name).to.equal(e.dtype);
        expect(got.shape, name).to.deep.equal(e.shape);
        expect(got.data.constructor, name).to.equal(e.data.constructor);
        expect(Array.from(got.data), name).to.deep.equal(Array.from(e.data));
      }
    });

    it('pads the header with spaces to a multiple of 8 and lays tensors out widest dtype first, then by name', () => {
      const bytes = serializeSafetensors(new Map([
        ['u', { dtype: 'U8', shape: [1], data: Uint8Array.from([1]) }],
        ['b', { dtype: 'F32', shape: [1], data: Float32Array.from([1]) }],
        ['a', { dtype: 'F32', shape: [1], data: Float32Array.from([2]) }],
        ['z', { dtype: 'I64', shape: [1], data: BigInt64Array.from([3n]) }],
        ['h', { dtype: 'F16', shape: [1], data: Uint16Array.from([4]) }],
      ]));
      const { n, text } = headerOf(bytes);
      expect(n % 8).to.equal(0);
      expect(text.trimEnd()).to.equal(
        '{"z":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},' +
        '"a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},' +
        '"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]},' +
        '"h":{"dtype":"F16","shape":[1],"data_offsets":[16,18]},' +
        '"u":{"dtype":"U8","shape":[1],"data_offsets":[18,19]}}');
      expect(/^ *$/.test(text.slice(text.trimEnd().length))).to.equal(true);
      expect(bytes.length).to.equal(8 + n + 19);
    });

    it('writes no __metadata__ when none is given', () => {
      const bytes = serializeSafetensors({ a: { dtype: 'U8', shape: [0], data: new Uint8Array(0) } });
      expect(headerOf(bytes).text.trimEnd()).to.equal('{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}');
      expect(parseSafetensors(bytes).metadata).to.deep.equal({});
    });

    it('keeps names that look like object internals as plain names', () => {
      const bytes = serializeSafetensors({ ['__proto__']: { dtype: 'U8', shape: [1], data: Uint8Array.from([9]) } },
        { ['__proto__']: 'x' });
      const parsed = parseSafetensors(bytes);
      expect(Array.from(parsed.get('__proto__').data)).to.deep.equal([9]);
      expect(Object.getOwnPropertyDescriptor(parsed.metadata, '__proto__').value).to.equal('x');
    });
  });

  describe('files written by the Python library', () => {
    it('reads every dtype with the values the reference writer stored', () => {
      const f = readSafetensorsFile(path.join(FIXTURES, 'dtypes.safetensors'));
      expect(f.metadata).to.deep.equal({ writer: 'safetensors.torch.save_file' });
      const values = (k) => Array.from(f.get(k).data);
      expect(f.get('f32').shape).to.deep.equal([2, 3]);
      expect(values('f32')[0]).to.equal(Math.fround(-0.4867807626724243));
      expect(values('f64')).to.deep.equal([-1.4017020125953694, -0.7625571360284942, 0.631213407129647]);
      expect(values('f16').map(halfBitsToNumber)).to.deep.equal([0, -1.5, 65504, 6.103515625e-05, 5.960464477539063e-08, Infinity]);
      expect(values('bf16').map(bf16BitsToNumber)).to.deep.equal([1, -2.5, 3.00405527047391e+38, 0.00099945068359375]);
      expect(values('i64')).to.deep.equal([-(2n ** 62n), -1n, 0n, 2n ** 40n + 3n]);
      expect(f.get('i32').shape).to.deep.equal([2, 2]);
      expect(values('i32')).to.deep.equal([-7, 8, 2 ** 31 - 1, -(2 ** 31)]);
      expect(values('u8')).to.deep.equal([0, 1, 255]);
      expect(f.get('scalar')).to.deep.include({ dtype: 'I64', shape: [] });
      expect(values('scalar')).to.deep.equal([5n]);
      expect(f.get('empty')).to.deep.include({ dtype: 'F32', shape: [0, 4] });
      expect(values('name with spaces/and.dots')).to.deep.equal([0, 1, 2, 3]);
    });

    for (const name of ['dtypes.safetensors', 'block_3_3.safetensors', 'block_5_7_1x1_s2_perturbed.safetensors']) {
      it(`re-serializes ${name} to the same bytes`, () => {
        const original = fs.readFileSync(path.join(FIXTURES, name));
        const parsed = parseSafetensors(original);
        const again = serializeSafetensors(parsed, parsed.metadata);
        expect(Buffer.compare(Buffer.from(again), original)).to.equal(0);
      });
    }
  });

  describe('alignment', () => {
    it('copies tensors whose offsets are not aligned for their type', () => {
      const f32 = Float32Array.from([1.5, -2.25]);
      const data = new Uint8Array(3 + 8);
      data.set([7, 8, 9], 0);
      data.set(new Uint8Array(f32.buffer), 3);
      const buf = build({
        u: { dtype: 'U8', shape: [3], data_offsets: [0, 3] },
        f: { dtype: 'F32', shape: [2], data_offsets: [3, 11] },
      }, data);
      const parsed = parseSafetensors(buf);
      expect(Array.from(parsed.get('f').data)).to.deep.equal([1.5, -2.25]);
      expect(parsed.get('f').data.byteOffset % 4).to.equal(0);
      expect(Array.from(parsed.get('u').data)).to.deep.equal([7, 8, 9]);
    });

    it('copies when the whole buffer starts at an odd byte offset', () => {
      const good = serializeSafetensors({ x: { dtype: 'F64', shape: [2], data: Float64Array.from([1, 2]) } });
      const shifted = new Uint8Array(good.length + 1);
      shifted.set(good, 1);
      const parsed = parseSafetensors(shifted.subarray(1));
      expect(Array.from(parsed.get('x').data)).to.deep.equal([1, 2]);
    });

    it('views aligned data in place unless copy is asked for', () => {
      const buf = serializeSafetensors({ x: { dtype: 'F32', shape: [1], data: Float32Array.from([3]) } });
      expect(parseSafetensors(buf).get('x').data.buffer).to.equal(buf.buffer);
      expect(parseSafetensors(buf, { copy: true }).get('x').data.buffer).to.not.equal(buf.buffer);
    });
  });

  describe('16-bit floats', () => {
    it('converts every finite half value exactly both ways', () => {
      for (let h = 0; h < 0x10000; h++) {
        const v = halfBitsToNumber(h);
        if (Number.isNaN(v)) continue;
        if (numberToHalfBits(v) !== h) expect.fail(`half 0x${h.toString(16)} -> ${v} -> 0x${numberToHalfBits(v).toString(16)}`);
      }
      for (let h = 0; h < 0x10000; h++) {
        const v = bf16BitsToNumber(h);
        if (Number.isNaN(v)) continue;
        if (numberToBf16Bits(v) !== h) expect.fail(`bf16 0x${h.toString(16)} -> ${v} -> 0x${numberToBf16Bits(v).toString(16)}`);
      }
    });

    it('rounds to nearest even and overflows to infinity', () => {
      expect(numberToHalfBits(1 + 2 ** -11)).to.equal(0x3c00);         // tie -> even (1.0)
      expect(numberToHalfBits(1 + 3 * 2 ** -11)).to.equal(0x3c02);     // tie -> even (up)
      expect(numberToHalfBits(65520)).to.equal(0x7c00);                // rounds past the max -> inf
      expect(numberToHalfBits(2 ** -25)).to.equal(0);                  // half the smallest subnormal -> 0
      expect(numberToHalfBits(1.5 * 2 ** -25)).to.equal(1);
      expect(Number.isNaN(halfBitsToNumber(numberToHalfBits(NaN)))).to.equal(true);
      expect(numberToBf16Bits(1 + 2 ** -8)).to.equal(0x3f80);          // tie -> even
      expect(Number.isNaN(bf16BitsToNumber(numberToBf16Bits(NaN)))).to.equal(true);
    });
  });

  describe('validation', () => {
    const f32 = (n) => new Uint8Array(new Float32Array(n).buffer);
    const cases = [
      ['a file shorter than the length field', () => Uint8Array.from([1, 0, 0]), /truncated: 3 bytes/],
      ['a header length beyond the file', () => rawFile(Buffer.from('{}      '), new Uint8Array(0)).subarray(0, 12), /header length 8 is beyond the end of the file/],
      ['a huge header length', () => { const b = new Uint8Array(16); new DataView(b.buffer).setBigUint64(0, 2n ** 63n, true); return b; }, /beyond the end of the file/],
      ['a header that is not JSON', () => rawFile(Buffer.from('{"a": nope}     '), new Uint8Array(0)), /not valid JSON/],
      ['a header that is not an object', () => rawFile(Buffer.from('[1,2]   '), new Uint8Array(0)), /JSON object/],
      ['a header that is not UTF-8', () => rawFile(Buffer.from([0x7b, 0xff, 0xfe, 0x7d, 0x20, 0x20, 0x20, 0x20]), new Uint8Array(0)), /not valid UTF-8/],
      ['an unknown dtype', () => build({ w: { dtype: 'Q7', shape: [1], data_offsets: [0, 4] } }, f32(1)), /entry "w": unknown dtype "Q7"/],
      ['a dtype of the format we do not read', () => build({ m: { dtype: 'BOOL', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)), /entry "m": unknown dtype "BOOL" \(valid safetensors, but not supported here\)/],
      ['a byte size that does not match the shape', () => build({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32(2)), /entry "w": holds 8 bytes but shape \[3\] of F32 needs 12/],
      ['overlapping offsets', () => build({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, f32(3)), /entry "b": data_offsets \[4, 12\] overlap those of "a"/],
      ['offsets past the data', () => build({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, f32(1)), /entry "a": data_offsets \[0, 8\] are out of range: the data region has 4 bytes/],
      ['a gap between tensors', () => build({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, f32(2)), /entry "a": .*gap of 4 bytes/],
      ['trailing bytes after the last tensor', () => build({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32(2)), /4 trailing bytes/],
      ['reversed offsets', () => build({ a: { dtype: 'U8', shape: [0], data_offsets: [4, 0] } }, f32(1)), /entry "a": data_offsets \[4, 0\] end before they begin/],
      ['a negative dimension', () => build({ a: { dtype: 'U8', shape: [-1], data_offsets: [0, 0] } }), /entry "a": shape must be an array of non-negative integers/],
      ['malformed data_offsets', () => build({ a: { dtype: 'U8', shape: [1], data_offsets: [0] } }, new Uint8Array(1)), /entry "a": data_offsets must be \[begin, end\]/],
      ['an entry that is not an object', () => build({ a: 3 }), /entry "a": must be an object/],
      ['metadata that is not strings', () => build({ __metadata__: { epoch: 3 } }), /__metadata__\["epoch"\] must be a string/],
      ['a UTF-8 byte order mark before the header', () => rawFile(Buffer.from('\ufeff{}   '), new Uint8Array(0)), /byte order mark/],
      ['a duplicate tensor name', () => rawFile(Buffer.from('{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}'), new Uint8Array(0)), /duplicate key "a"/],
      ['a duplicate name spelt with an escape', () => rawFile(Buffer.from('{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"\\u0061":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}'), new Uint8Array(0)), /duplicate key "a"/],
      ['a duplicate field in an entry', () => rawFile(Buffer.from('{"a":{"dtype":"U8","dtype":"F32","shape":[0],"data_offsets":[0,0]}}'), new Uint8Array(0)), /duplicate key "dtype"/],
      ['a duplicate metadata key', () => rawFile(Buffer.from('{"__metadata__":{"k":"1","k":"2"}}'), new Uint8Array(0)), /duplicate key "k"/],
      ['arrays nested 10,000 deep', () => rawFile(Buffer.from(`{"a":${'['.repeat(10000)}${']'.repeat(10000)}}`), new Uint8Array(0)), /an array inside an array/],
      ['objects nested 10,000 deep', () => rawFile(Buffer.from(`${'{"a":'.repeat(10000)}1${'}'.repeat(10000)}`), new Uint8Array(0)), /nests too deep/],
      ['an array of objects in an entry', () => rawFile(Buffer.from('{"a":{"dtype":"U8","shape":[{}],"data_offsets":[0,0]}}'), new Uint8Array(0)), /an object inside an array/],
      ['a shape longer than 64 dimensions', () => build({ a: { dtype: 'U8', shape: new Array(65).fill(1), data_offsets: [0, 1] } }, new Uint8Array(1)), /more than 64 elements/],
      ['a dimension written as a float', () => rawFile(Buffer.from('{"a":{"dtype":"U8","shape":[1.0],"data_offsets":[0,1]}}'), new Uint8Array(1)), /number 1\.0 in an array .* integers/],
      ['a dimension in exponent form', () => rawFile(Buffer.from('{"a":{"dtype":"U8","shape":[1e0],"data_offsets":[0,1]}}'), new Uint8Array(1)), /number 1e0 in an array/],
      ['a fractional dimension', () => build({ a: { dtype: 'U8', shape: [1.5], data_offsets: [0, 1] } }, new Uint8Array(1)), /number 1\.5 in an array/],
      ['dimensions whose product overflows', () => build({ a: { dtype: 'U8', shape: [2 ** 32, 2 ** 32, 0], data_offsets: [0, 0] } }), /entry "a": shape \[4294967296, 4294967296, 0\] has more elements than a file can hold/],
      ['a missing dtype', () => build({ a: { shape: [0], data_offsets: [0, 0] } }), /entry "a": dtype must be a string, found nothing/],
    ];
    for (const [what, make, message] of cases) {
      it(`rejects ${what}`, () => {
        const err = (() => { try { parseSafetensors(make(), { source: 'model.safetensors' }); } catch (e) { return e; } })();
        expect(err, 'no error thrown').to.be.instanceOf(Error);
        expect(err).to.be.instanceOf(SafetensorsError);
        expect(err.message).to.match(/^safetensors model\.safetensors/);
        expect(err.message).to.match(message);
      });
    }

    it('rejects a truncated copy of a real file, naming the file', () => {
      const dir = tmpDir();
      const file = path.join(dir, 'cut.safetensors');
      const original = fs.readFileSync(path.join(FIXTURES, 'block_3_3.safetensors'));
      fs.writeFileSync(file, original.subarray(0, original.length - 100));
      expect(() => readSafetensorsFile(file)).to.throw(SafetensorsError, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} entry ".*": data_offsets .* out of range`));
      fs.writeFileSync(file, original.subarray(0, 500));
      expect(() => readSafetensorsFile(file)).to.throw(/header length \d+ is beyond the end of the file/);
      fs.rmSync(dir, { recursive: true });
    });

    it('keeps memory to a small multiple of the header when rejecting a 9.5 MB nesting bomb', function () {
      this.timeout(60000);
      // In a child, so the figure is its own: before the structural scan this cost ~680 MB.
      const script = `
        const { io } = require(${JSON.stringify(fileURLToPath(new URL('../dist/index.js', import.meta.url)))});
        const n = 9.5e6;
        const json = Buffer.from('{"a":' + '['.repeat(n - 6) + '}');
        const buf = Buffer.alloc(8 + json.length);
        buf.writeBigUInt64LE(BigInt(json.length));
        json.copy(buf, 8);
        const before = process.memoryUsage().rss;
        let message = 'accepted';
        try { io.parseSafetensors(buf); } catch (e) { message = e.message; }
        const hwm = Number(/VmHWM:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
        console.log(JSON.stringify({ extra: hwm - before, message }));`;
      const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60000 });
      expect(r.status, r.stderr).to.equal(0);
      const { extra, message } = JSON.parse(r.stdout);
      expect(message).to.match(/an array inside an array/);
      expect(extra / 9.5e6, `${(extra / 1e6).toFixed(0)} MB for a 9.5 MB header`).to.be.below(5);
    });

    it('refuses files that are not regular files without reading them', function () {
      const dir = tmpDir();
      try {
        expect(() => readSafetensorsFile('/dev/zero')).to.throw(SafetensorsError, /safetensors \/dev\/zero: cannot read the file: it is a character device, not a regular file/);
        expect(() => readSafetensorsFile(dir)).to.throw(SafetensorsError, /it is a directory, not a regular file/);
        const fifo = path.join(dir, 'pipe.safetensors');
        const made = spawnSync('mkfifo', [fifo]);
        if (made.status !== 0) this.skip();
        // No writer ever opens it: a read that blocked would hang here (mocha's timeout would fail it).
        expect(() => readSafetensorsFile(fifo)).to.throw(SafetensorsError, /it is a FIFO \(named pipe\), not a regular file/);
      } finally {
        fs.rmSync(dir, { recursive: true });
      }
    });

    it('a tensor too big for an ArrayBuffer is a SafetensorsError, not a crash (a 64 GiB sparse file)', () => {
      const dir = tmpDir();
      try {
        const file = path.join(dir, 'sparse.safetensors');
        const n = 2 ** 36;
        fs.writeFileSync(file, build({ w: { dtype: 'U8', shape: [n], data_offsets: [0, n] } }));
        fs.truncateSync(file, fs.statSync(file).size + n);  // sparse: no disk used
        expect(() => readSafetensorsFile(file)).to.throw(SafetensorsError, /entry "w": cannot allocate 68719476736 bytes for the tensor/);
      } finally {
        fs.rmSync(dir, { recursive: true });
      }
    });

    it('checks its arguments', () => {
      expect(() => readSafetensorsFile('a\0b')).to.throw(TypeError, /readSafetensorsFile: .*without NUL bytes for path .*NUL byte/);
      expect(() => readSafetensorsFile('x', null)).to.throw(TypeError, /readSafetensorsFile: Expected an options object for options but received null/);
      expect(() => readSafetensorsFile('x', { source: 'y' })).to.throw(TypeError, /Unknown option "source"/);
      expect(() => parseSafetensors(new Uint8Array(8), { cpy: true })).to.throw(TypeError, /parseSafetensors: Unknown option "cpy" .*"source", "copy"/);
      expect(() => parseSafetensors(new Uint8Array(8), { copy: 1 })).to.throw(TypeError, /options\.copy/);
    });

    it('is a CheckpointError', () => {
      expect(() => parseSafetensors(new Uint8Array(3), { source: 'f' })).to.throw(CheckpointError).with.property('file', 'f');
    });

    it('names a missing file', () => {
      expect(() => readSafetensorsFile('/nonexistent/x.safetensors')).to.throw(/safetensors \/nonexistent\/x\.safetensors: cannot read the file \(ENOENT\)/);
    });

    it('rejects bad entries when serializing', () => {
      expect(() => serializeSafetensors({ w: { dtype: 'F32', shape: [2], data: Float64Array.from([1, 2]) } }))
        .to.throw(/entry "w": F32 data must be a Float32Array, found Float64Array/);
      expect(() => serializeSafetensors({ w: { dtype: 'F32', shape: [3], data: Float32Array.from([1, 2]) } }))
        .to.throw(/entry "w": data has 2 elements but shape \[3\] needs 3/);
      expect(() => serializeSafetensors({ w: { dtype: 'X', shape: [1], data: Float32Array.from([1]) } }))
        .to.throw(/entry "w": unknown dtype "X"/);
      expect(() => serializeSafetensors({ __metadata__: { dtype: 'U8', shape: [0], data: new Uint8Array(0) } }))
        .to.throw(/reserved/);
      expect(() => serializeSafetensors({}, { epoch: 3 })).to.throw(/metadata\["epoch"\] must be a string/);
    });
  });

  describe('atomic save', () => {
    const sd = () => ({ w: tensor(Float32Array.from([1, 2, 3]), [3]), n: tensor(BigInt64Array.from([4n]), [], { dtype: 'int64' }) });
    const listDir = (dir) => fs.readdirSync(dir).sort();

    it('writes the file and leaves no temporary file behind', async () => {
      const dir = tmpDir();
      const file = path.join(dir, 'a.safetensors');
      saveStateDict(sd(), file, { metadata: { step: '1' } });
      await saveStateDictAsync(sd(), path.join(dir, 'b.safetensors'));
      expect(listDir(dir)).to.deep.equal(['a.safetensors', 'b.safetensors']);
      const f = readSafetensorsFile(file);
      expect(f.metadata).to.deep.equal({ step: '1' });
      expect(f.get('n')).to.deep.include({ dtype: 'I64', shape: [] });
      expect(Array.from(f.get('w').data)).to.deep.equal([1, 2, 3]);
      fs.rmSync(dir, { recursive: true });
    });

    it('leaves the previous file intact when the state dict is invalid', () => {
      const dir = tmpDir();
      const file = path.join(dir, 'a.safetensors');
      saveStateDict(sd(), file);
      const before = fs.readFileSync(file);
      const disposed = tensor([1, 2]);
      disposed.dispose();
      expect(() => saveStateDict({ w: disposed }, file)).to.throw(TypeError, /stateDict\["w"\] is a disposed tensor/);
      expect(() => saveStateDict({ w: [1, 2] }, file)).to.throw(TypeError, /stateDict\["w"\]/);
      expect(() => saveStateDict(sd(), file, { metadata: { step: 1 } })).to.throw(/metadata\["step"\] must be a string/);
      expect(Buffer.compare(fs.readFileSync(file), before)).to.equal(0);
      expect(listDir(dir)).to.deep.equal(['a.safetensors']);
      fs.rmSync(dir, { recursive: true });
    });

    it('cleans up its temporary file when the rename fails', async () => {
      const dir = tmpDir();
      const target = path.join(dir, 'occupied');
      fs.mkdirSync(target);
      fs.writeFileSync(path.join(target, 'keep'), 'x');
      expect(() => saveStateDict(sd(), target)).to.throw(new RegExp(`save: cannot write ${target.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
      let asyncErr = null;
      await saveStateDictAsync(sd(), target).catch((e) => { asyncErr = e; });
      expect(asyncErr).to.be.instanceOf(Error);
      expect(listDir(dir)).to.deep.equal(['occupied']);
      expect(listDir(target)).to.deep.equal(['keep']);
      fs.rmSync(dir, { recursive: true });
    });

    it('reports a directory that does not exist', () => {
      expect(() => saveStateDict(sd(), '/nonexistent/dir/a.safetensors')).to.throw(/save: cannot write \/nonexistent\/dir\/a\.safetensors: ENOENT/);
    });
  });
});
