// In-memory uint8 datasets of any channel count (ImageArrayDataset, HWC and CHW), CIFAR-10/100
// from small synthetic files in the official binary format, and the DataLoader over 3 channels
// with per-channel mean/std.
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { forEachDevice } from './support/devices.mjs';

const require = createRequire(import.meta.url);
const data = require('../dist/data/index.js');
const lib = require('../dist/index.js');

const PIX = 3072;
/** Pixel p (CHW offset) of record r: known, different per record and channel. */
const px = (r, p) => (r * 31 + p * 7 + (p >> 10) * 50) % 256;

function cifarRecords(labelsPerRecord) {
  const lb = labelsPerRecord[0].length;
  const buf = Buffer.alloc(labelsPerRecord.length * (lb + PIX));
  labelsPerRecord.forEach((labels, r) => {
    const at = r * (lb + PIX);
    labels.forEach((l, k) => { buf[at + k] = l; });
    for (let p = 0; p < PIX; p++) buf[at + lb + p] = px(r, p);
  });
  return buf;
}

describe('ImageArrayDataset', function () {
  it('gives HWC and CHW the same CHW example and validates sizes, labels and options', function () {
    const c = 3, h = 2, w = 2, n = 2;
    const chw = Uint8Array.from({ length: n * c * h * w }, (_, i) => i);
    const hwc = new Uint8Array(chw.length);
    for (let i = 0; i < n; i++) for (let k = 0; k < c; k++) for (let p = 0; p < h * w; p++) {
      hwc[i * 12 + p * c + k] = chw[i * 12 + k * 4 + p];
    }
    const a = new data.ImageArrayDataset({ images: chw, labels: [0, 1], n, channels: c, height: h, width: w, layout: 'CHW' });
    const b = new data.ImageArrayDataset({ images: hwc, labels: Int32Array.of(0, 1), n, channels: c, height: h, width: w, layout: 'HWC' });
    const da = new Uint8Array(12), db = new Uint8Array(12);
    a.copyCHW(1, da, 0);
    b.copyCHW(1, db, 0);
    expect(Array.from(db)).to.deep.equal(Array.from(chw.subarray(12)));
    expect(Array.from(da)).to.deep.equal(Array.from(db));
    expect(() => new data.ImageArrayDataset({ images: chw.subarray(1), labels: [0, 1], n, channels: c, height: h, width: w }))
      .to.throw(RangeError, /n\*channels\*height\*width = 24 bytes for dataset\.images but received 23 bytes/);
    expect(() => new data.ImageArrayDataset({ images: chw, labels: [0], n, channels: c, height: h, width: w }))
      .to.throw(RangeError, /dataset\.labels/);
    expect(() => new data.ImageArrayDataset({ images: chw, labels: [0, 2], n, channels: c, height: h, width: w, classes: ['a', 'b'] }))
      .to.throw(RangeError, /between 0 and 1 for dataset\.labels\[1\] but received 2/);
    expect(() => new data.ImageArrayDataset({ images: chw, labels: [0, 1], n, channels: c, height: h, width: w, layout: 'NHWC' }))
      .to.throw(RangeError, /"HWC", "CHW" for dataset\.layout but received "NHWC"/);
    expect(() => new data.ImageArrayDataset({ images: chw, labels: [0, 1], n, channels: c, height: h, width: w, chanels: 3 }))
      .to.throw(TypeError, /Unknown option "chanels" for dataset/);
    expect(() => new data.ImageArrayDataset({ images: Array.from(chw), labels: [0, 1], n, channels: c, height: h, width: w }))
      .to.throw(TypeError, /Uint8Array for dataset\.images/);
  });
});

describe('CIFAR-10 / CIFAR-100 binary loaders', function () {
  let root;
  before(function () {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'crb-cifar-'));
    const d10 = path.join(root, 'cifar-10-batches-bin');
    fs.mkdirSync(d10);
    for (let i = 1; i <= 5; i++) fs.writeFileSync(path.join(d10, `data_batch_${i}.bin`), cifarRecords([[i], [9 - i]]));
    fs.writeFileSync(path.join(d10, 'test_batch.bin'), cifarRecords([[3]]));
    const d100 = path.join(root, 'cifar-100-binary');
    fs.mkdirSync(d100);
    fs.writeFileSync(path.join(d100, 'train.bin'), cifarRecords([[4, 41], [19, 99], [0, 7]]));
    fs.writeFileSync(path.join(d100, 'test.bin'), cifarRecords([[2, 5]]));
  });
  after(function () {
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('CIFAR-10: labels, CHW pixels and class names come back exactly, from either directory', function () {
    for (const dir of [root, path.join(root, 'cifar-10-batches-bin')]) {
      const { train, test, classes } = data.loadCifar10(dir);
      expect(classes).to.deep.equal(data.CIFAR10_CLASSES);
      expect(classes[0]).to.equal('airplane');
      expect([train.n, train.channels, train.height, train.width, train.layout]).to.deep.equal([10, 3, 32, 32, 'CHW']);
      expect(Array.from(train.labels)).to.deep.equal([1, 8, 2, 7, 3, 6, 4, 5, 5, 4]);
      for (let k = 0; k < 10; k++) {
        const img = train.images.subarray(k * PIX, (k + 1) * PIX);
        const r = k % 2;
        for (const p of [0, 1, 1023, 1024, 2047, 2048, 3071]) expect(img[p]).to.equal(px(r, p));
      }
      expect(test.n).to.equal(1);
      expect(Array.from(test.labels)).to.deep.equal([3]);
      expect(Array.from(test.images)).to.deep.equal(Array.from({ length: PIX }, (_, p) => px(0, p)));
    }
  });

  it('CIFAR-100: fine and coarse labels, names from the .txt files or the standard lists', function () {
    const fine = data.loadCifar100(root);
    expect(Array.from(fine.train.labels)).to.deep.equal([41, 99, 7]);
    expect(fine.classes.length).to.equal(100);
    expect(fine.classes[99]).to.equal('worm');
    const coarse = data.loadCifar100(path.join(root, 'cifar-100-binary'), { labels: 'coarse' });
    expect(Array.from(coarse.train.labels)).to.deep.equal([4, 19, 0]);
    expect(Array.from(coarse.test.labels)).to.deep.equal([2]);
    expect(coarse.classes.length).to.equal(20);
    expect(Array.from(coarse.train.images.subarray(PIX, PIX + 4))).to.deep.equal([0, 1, 2, 3].map((p) => px(1, p)));
    const names = Array.from({ length: 20 }, (_, i) => `super${i}`);
    fs.writeFileSync(path.join(root, 'cifar-100-binary', 'coarse_label_names.txt'), names.join('\n') + '\n');
    try {
      expect(data.loadCifar100(root, { labels: 'coarse' }).classes).to.deep.equal(names);
    } finally {
      fs.rmSync(path.join(root, 'cifar-100-binary', 'coarse_label_names.txt'));
    }
  });

  it('missing archive: the error names the paths looked at and where to get the binary version', function () {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'crb-nocifar-'));
    try {
      expect(() => data.loadCifar10(empty)).to.throw(Error,
        new RegExp(`cifar-10-batches-bin.*${empty.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*binary version.*cs\\.toronto\\.edu/~kriz/cifar\\.html.*tar xzf cifar-10-binary\\.tar\\.gz`));
      expect(() => data.loadCifar100(empty)).to.throw(Error, /cifar-100-binary.*train\.bin.*tar xzf cifar-100-binary\.tar\.gz/);
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });

  it('a truncated file: the error names the file and the record size', function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'crb-cifar-trunc-'));
    try {
      fs.cpSync(path.join(root, 'cifar-10-batches-bin'), dir, { recursive: true });
      const f = path.join(dir, 'data_batch_3.bin');
      fs.writeFileSync(f, fs.readFileSync(f).subarray(0, 3073 + 100));
      expect(() => data.loadCifar10(dir)).to.throw(Error, /data_batch_3\.bin: truncated or corrupt: 3173 bytes.*3073-byte record/);
      fs.rmSync(path.join(dir, 'test_batch.bin'));
      fs.cpSync(path.join(root, 'cifar-10-batches-bin', 'data_batch_3.bin'), f);
      expect(() => data.loadCifar10(dir)).to.throw(Error, /test_batch\.bin: not found/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('bad arguments and options', function () {
    expect(() => data.loadCifar10(42)).to.throw(TypeError, /dir/);
    expect(() => data.loadCifar100(root, { label: 'fine' })).to.throw(TypeError, /Unknown option "label"/);
    expect(() => data.loadCifar100(root, { labels: 'superclass' })).to.throw(RangeError, /"fine", "coarse" for options\.labels but received "superclass"/);
  });
});

forEachDevice('DataLoader over 3-channel datasets', function (device) {
  const n = 3, c = 3, h = 2, w = 2;
  const chw = Uint8Array.from({ length: n * c * h * w }, (_, i) => (i * 23) % 256);
  const hwc = new Uint8Array(chw.length);
  for (let i = 0; i < n; i++) for (let k = 0; k < c; k++) for (let p = 0; p < h * w; p++) {
    hwc[i * 12 + p * c + k] = chw[i * 12 + k * 4 + p];
  }
  const mean = [0.4914, 0.4822, 0.4465];
  const std = [0.247, 0.243, 0.261];
  const make = (layout, images) => new data.ImageArrayDataset({ images, labels: [2, 0, 1], n, channels: c, height: h, width: w, layout });

  it('gives [B,3,H,W] normalized per channel, equal to a hand computation, HWC the same as CHW', function () {
    const out = {};
    for (const [layout, images] of [['CHW', chw], ['HWC', hwc]]) {
      const loader = new data.DataLoader(make(layout, images), { batchSize: 3, shuffle: false, mean, std, device });
      const [batch] = [...loader];
      expect(batch.images.shape).to.deep.equal([3, 3, 2, 2]);
      expect(batch.images.dtype).to.equal('float32');
      expect(batch.images.device).to.equal(device);
      expect(Array.from(batch.labels.toArraySync())).to.deep.equal([2, 0, 1]);
      out[layout] = Array.from(batch.images.toArraySync());
      batch.dispose();
    }
    const want = Array.from(chw, (v, i) => (v / 255 - mean[Math.floor(i / 4) % 3]) / std[Math.floor(i / 4) % 3]);
    out.CHW.forEach((v, i) => expect(v).to.be.closeTo(want[i], 1e-5));
    expect(out.HWC).to.deep.equal(out.CHW);
  });

  it('resizes 3 channels and normalizes per channel (hand-computed 2x2 -> 4x4)', function () {
    const loader = new data.DataLoader(make('CHW', chw), { batchSize: 2, shuffle: false, resize: 4, mean, std, device });
    const [batch] = [...loader];
    expect(batch.images.shape).to.deep.equal([2, 3, 4, 4]);
    const got = Array.from(batch.images.toArraySync());
    // bilinear, align_corners false, 2 -> 4: weights per output index along an axis
    const wts = [[[0, 1]], [[0, 0.75], [1, 0.25]], [[0, 0.25], [1, 0.75]], [[1, 1]]];
    for (let b = 0; b < 2; b++) for (let k = 0; k < 3; k++) for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) {
      let v = 0;
      for (const [sy, wy] of wts[y]) for (const [sx, wx] of wts[x]) v += wy * wx * chw[b * 12 + k * 4 + sy * 2 + sx];
      const expected = (v / 255 - mean[k]) / std[k];
      expect(got[((b * 3 + k) * 4 + y) * 4 + x]).to.be.closeTo(expected, 1e-5);
    }
    batch.dispose();
  });

  it('one number for mean/std applies to every channel; bad per-channel options are named', function () {
    const ds = make('HWC', hwc);
    const [batch] = [...new data.DataLoader(ds, { batchSize: 1, shuffle: false, mean: 0.5, std: 0.5, device })];
    const got = Array.from(batch.images.toArraySync());
    got.forEach((v, i) => expect(v).to.be.closeTo((chw[i] / 255 - 0.5) / 0.5, 1e-5));
    batch.dispose();
    expect(() => new data.DataLoader(ds, { batchSize: 1, mean: [0.5, 0.5] })).to.throw(TypeError, /array of 3 numbers \(one per channel\) for options\.mean but received array \[0\.5, 0\.5\]/);
    expect(() => new data.DataLoader(ds, { batchSize: 1, std: [1, 0, 1] })).to.throw(RangeError, /std\[1\]/);
    expect(() => new data.DataLoader(ds, { batchSize: 1, mean: [0, NaN, 0] })).to.throw(/options\.mean\[1\]/);
    expect(() => new data.DataLoader(ds, { batchSize: 1, channels: 3 })).to.throw(TypeError, /Unknown option "channels"/);
  });
});
