// ImageFolder (class subfolders of PNG/JPEG/WebP decoded with sharp) and the DataLoader's worker
// pool: the same batches for any numWorkers, reproducible random transforms, unreadable images
// named (or skipped with a warning), a dying worker an error and never a hang. Every image is
// written here with sharp; nothing is downloaded.
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const lib = require('../dist/index.js');
const sharp = require('sharp');
const { ImageFolder, ImageDecodeError, DataLoader, ImageArrayDataset, transforms: T } = lib;

/** Pixel (y, x, channel) of image k: known, different per image, position and channel. */
const value = (k, y, x, c) => (k * 37 + y * 11 + x * 5 + c * 80) % 256;

function rgb(k, h, w) {
  const px = Buffer.alloc(h * w * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) px[(y * w + x) * 3 + c] = value(k, y, x, c);
  return px;
}

/** root/<class>/<i>.<ext>: `perClass` images per class, 10x12 unless sized. Returns the files in order. */
async function writeFolder(root, classes, perClass, { ext = (i) => (i % 2 ? 'png' : 'webp'), size = () => [10, 12] } = {}) {
  let k = 0;
  for (const c of classes) {
    fs.mkdirSync(path.join(root, c), { recursive: true });
    for (let i = 0; i < perClass; i++, k++) {
      const [h, w] = size(k);
      const e = ext(i);
      const img = sharp(rgb(k, h, w), { raw: { width: w, height: h, channels: 3 } });
      const out = e === 'png' ? img.png() : e === 'webp' ? img.webp({ lossless: true }) : img.jpeg({ quality: 95 });
      await out.toFile(path.join(root, c, `${String(i).padStart(3, '0')}.${e}`));
    }
  }
}

async function collect(loader, epoch) {
  const out = [];
  for await (const b of loader.epoch(epoch)) {
    out.push({ shape: b.images.shape, images: Float32Array.from(b.images.toArraySync()), labels: Array.from(b.labels.toArraySync()), size: b.size });
    b.dispose();
  }
  return out;
}

describe('43 ImageFolder and the DataLoader worker pool', function () {
  this.timeout(120000);
  let tmp;
  let root;
  const classes = ['ant', 'bee', 'cat'];

  before(async function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'crb-folder-'));
    root = path.join(tmp, 'train');
    await writeFolder(root, classes, 40);
    // Not images: skipped by extension, as torchvision's IMG_EXTENSIONS does.
    fs.writeFileSync(path.join(root, 'ant', 'notes.txt'), 'x');
    fs.mkdirSync(path.join(root, 'bee', 'nested'));
    await sharp(rgb(999, 10, 12), { raw: { width: 12, height: 10, channels: 3 } }).png().toFile(path.join(root, 'bee', 'nested', 'deep.png'));
  });
  after(function () {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('scans like torchvision: sorted classes, files sorted with nested folders after, other extensions ignored', function () {
    const ds = new ImageFolder(root);
    expect(ds.classes).to.deep.equal(classes);
    expect(ds.classToIdx).to.deep.equal({ ant: 0, bee: 1, cat: 2 });
    expect(ds.n).to.equal(121);
    expect(ds.samples[0]).to.deep.equal([path.join(root, 'ant', '000.webp'), 0]);
    expect(ds.samples[40]).to.deep.equal([path.join(root, 'bee', '000.webp'), 1]);
    expect(ds.samples[80]).to.deep.equal([path.join(root, 'bee', 'nested', 'deep.png'), 1]);
    expect(Array.from(ds.targets.subarray(78, 83))).to.deep.equal([1, 1, 1, 2, 2]);
  });

  it('decodes lossless files to exact RGB, and RGBA / grayscale as PIL\'s convert does', async function () {
    const ds = new ImageFolder(root);
    const { image, label, file } = await ds.get(41); // bee/001.png is image k = 41
    expect(file).to.equal(path.join(root, 'bee', '001.png'));
    expect(label).to.equal(1);
    expect([image.height, image.width, image.channels]).to.deep.equal([10, 12, 3]);
    expect(Buffer.from(image.data).equals(rgb(41, 10, 12))).to.equal(true);

    const odd = path.join(tmp, 'odd');
    fs.mkdirSync(path.join(odd, 'a'), { recursive: true });
    const rgba = Buffer.alloc(2 * 3 * 4);
    for (let i = 0; i < 6; i++) rgba.set([i * 10, i * 20, i * 30, i % 2 ? 0 : 255], i * 4);
    await sharp(rgba, { raw: { width: 3, height: 2, channels: 4 } }).png().toFile(path.join(odd, 'a', 'rgba.png'));
    await sharp(Buffer.from([0, 50, 100, 150, 200, 250]), { raw: { width: 3, height: 2, channels: 1 } }).png().toFile(path.join(odd, 'a', 'grey.png'));
    const both = new ImageFolder(odd);
    const grey = (await both.get(0)).image;
    expect(Array.from(grey.data)).to.deep.equal([0, 0, 0, 50, 50, 50, 100, 100, 100, 150, 150, 150, 200, 200, 200, 250, 250, 250]);
    const dropped = (await both.get(1)).image; // alpha dropped, not composited
    expect(Array.from(dropped.data.subarray(0, 6))).to.deep.equal([0, 0, 0, 10, 20, 30]);
    const single = new ImageFolder(odd, { channels: 1 });
    expect((await single.get(0)).image.channels).to.equal(1);
    expect(Array.from((await single.get(0)).image.data)).to.deep.equal([0, 50, 100, 150, 200, 250]);
  });

  it('batches: [B,3,H,W] float32 normalized per channel from the exact pixels, labels int32', async function () {
    const ds = new ImageFolder(root, { transform: T.compose([T.normalize(T.IMAGENET_MEAN, T.IMAGENET_STD)]) });
    const loader = new DataLoader(ds, { batchSize: 16, shuffle: false });
    const [first] = await collect(loader, 0);
    expect(first.shape).to.deep.equal([16, 3, 10, 12]);
    expect(first.labels).to.deep.equal(new Array(16).fill(0));
    // image 3, channel 2, row 4, column 5
    const want = (value(3, 4, 5, 2) / 255 - T.IMAGENET_MEAN[2]) / T.IMAGENET_STD[2];
    expect(first.images[((3 * 3 + 2) * 10 + 4) * 12 + 5]).to.be.closeTo(want, 1e-6);
    expect(loader.length).to.equal(8);
  });

  it('the same batches with 0, 1 and 3 workers; the seed alone decides the random transforms', async function () {
    const ds = new ImageFolder(root, { transform: T.compose([T.randomHorizontalFlip(), T.normalize(0.5, 0.25)]) });
    const runs = [];
    for (const numWorkers of [0, 1, 3]) runs.push(await collect(new DataLoader(ds, { batchSize: 24, seed: 7, numWorkers }), 2));
    expect(runs[1]).to.deep.equal(runs[0]);
    expect(runs[2]).to.deep.equal(runs[0]);
    const other = await collect(new DataLoader(ds, { batchSize: 24, seed: 8, numWorkers: 2 }), 2);
    expect(other[0].labels).to.not.deep.equal(runs[0][0].labels);
    // Flipped or not per image: about half the images of an epoch are mirrored.
    const plain = await collect(new DataLoader(new ImageFolder(root, { transform: T.normalize(0.5, 0.25) }), { batchSize: 24, seed: 7 }), 2);
    let flipped = 0;
    const per = 3 * 10 * 12;
    for (let b = 0; b < plain.length; b++) {
      for (let i = 0; i < plain[b].size; i++) {
        const a = runs[0][b].images.subarray(i * per, (i + 1) * per), p = plain[b].images.subarray(i * per, (i + 1) * per);
        if (a.some((v, j) => v !== p[j])) flipped++;
      }
    }
    expect(flipped).to.be.within(121 * 0.3, 121 * 0.7);
  });

  it('persistentWorkers: one pool for every epoch, the same batches, close() ends it', async function () {
    const ds = new ImageFolder(root, { transform: T.compose([T.randomHorizontalFlip(), T.normalize(0.5, 0.25)]) });
    const once = new DataLoader(ds, { batchSize: 32, seed: 4 });
    const kept = new DataLoader(ds, { batchSize: 32, seed: 4, numWorkers: 2, persistentWorkers: true });
    for (const epoch of [0, 1]) expect(await collect(kept, epoch)).to.deep.equal(await collect(once, epoch));
    await kept.close();
    await kept.close();
    expect(await collect(kept, 2)).to.deep.equal(await collect(once, 2));
    await kept[Symbol.asyncDispose]();
    expect(() => new DataLoader(ds, { batchSize: 4, persistentWorkers: true })).to.throw(RangeError, /persistentWorkers/);
  });

  it('an in-memory dataset with a transform gives the same batches in workers (shared memory)', async function () {
    const n = 50, h = 6, w = 8;
    const images = new Uint8Array(n * 3 * h * w).map((_, i) => (i * 13) % 251);
    const labels = Int32Array.from({ length: n }, (_, i) => i % 4);
    const ds = new ImageArrayDataset({ images, labels, n, channels: 3, height: h, width: w, layout: 'HWC', transform: T.compose([T.randomHorizontalFlip()]) });
    const a = await collect(new DataLoader(ds, { batchSize: 8, seed: 3, mean: 0.5, std: 0.5 }), 1);
    const b = await collect(new DataLoader(ds, { batchSize: 8, seed: 3, mean: 0.5, std: 0.5, numWorkers: 2 }), 1);
    expect(b).to.deep.equal(a);
    // Sync iteration gives the same for in-memory data without workers.
    const sync = [];
    for (const batch of new DataLoader(ds, { batchSize: 8, seed: 3, mean: 0.5, std: 0.5 }).epoch(1)) {
      sync.push(Float32Array.from(batch.images.toArraySync()));
      batch.dispose();
    }
    expect(sync).to.deep.equal(a.map((x) => x.images));
  });

  it('an unreadable image is an ImageDecodeError naming the file, with 0 or 2 workers', async function () {
    const bad = path.join(tmp, 'bad');
    await writeFolder(bad, ['a', 'b'], 6);
    const file = path.join(bad, 'b', '002.webp');
    fs.writeFileSync(file, 'not an image at all');
    for (const numWorkers of [0, 2]) {
      const loader = new DataLoader(new ImageFolder(bad), { batchSize: 4, shuffle: false, numWorkers });
      let caught = null;
      try {
        await collect(loader, 0);
      } catch (e) {
        caught = e;
      }
      expect(caught, `numWorkers ${numWorkers}`).to.be.instanceOf(ImageDecodeError);
      expect(caught.message).to.include(file);
      expect(caught.file).to.equal(file);
    }
    await new ImageFolder(bad).get(8).then(() => expect.fail('resolved'), (e) => expect(e.file).to.equal(file));
  });

  it('onCorrupt: "skip" drops the image from its batch with one warning', async function () {
    const bad = path.join(tmp, 'skip');
    await writeFolder(bad, ['a', 'b'], 6);
    const file = path.join(bad, 'a', '001.png');
    fs.writeFileSync(file, Buffer.alloc(40));
    const warnings = [];
    const loader = new DataLoader(new ImageFolder(bad, { onCorrupt: 'skip' }), { batchSize: 4, shuffle: false, numWorkers: 2, onWarning: (m) => warnings.push(m) });
    const batches = await collect(loader, 0);
    expect(batches.map((b) => b.size)).to.deep.equal([3, 4, 4]);
    expect(warnings).to.have.length(1);
    expect(warnings[0]).to.include(file);
  });

  it('a worker that dies mid-epoch is an error naming the batch, not a hang', async function () {
    const ds = new ImageFolder(root);
    process.env.CRB_TEST_WORKER_EXIT_AT_BATCH = '2';
    try {
      const loader = new DataLoader(ds, { batchSize: 10, numWorkers: 2 });
      const t = performance.now();
      let caught = null;
      let seen = 0;
      try {
        for await (const b of loader) {
          seen++;
          b.dispose();
        }
      } catch (e) {
        caught = e;
      }
      expect(caught).to.be.instanceOf(Error);
      expect(caught.message).to.match(/worker failed while building batch 2 of epoch 0: worker exited with code: 70/);
      expect(seen).to.equal(2);
      expect(performance.now() - t).to.be.below(20000);
    } finally {
      delete process.env.CRB_TEST_WORKER_EXIT_AT_BATCH;
    }
  });

  it('images of different sizes in one batch: a RangeError naming both files and the fix', async function () {
    const mixed = path.join(tmp, 'mixed');
    await writeFolder(mixed, ['a'], 4, { ext: () => 'png', size: (k) => (k === 2 ? [9, 12] : [10, 12]) });
    const loader = new DataLoader(new ImageFolder(mixed), { batchSize: 4, shuffle: false });
    let caught = null;
    try {
      await collect(loader, 0);
    } catch (e) {
      caught = e;
    }
    expect(caught).to.be.instanceOf(RangeError);
    expect(caught.message).to.include(path.join(mixed, 'a', '002.png')).and.include('3x9x12').and.include('3x10x12').and.include('centerCrop');
  });

  it('plain `for` over files or workers is a TypeError that says `for await`; options are checked', function () {
    const ds = new ImageFolder(root);
    expect(() => { for (const b of new DataLoader(ds, { batchSize: 4 })) b.dispose(); }).to.throw(TypeError, /for await/);
    const mem = new ImageArrayDataset({ images: new Uint8Array(4), labels: [0, 1, 2, 3], n: 4, height: 1, width: 1 });
    expect(() => { for (const b of new DataLoader(mem, { batchSize: 2, numWorkers: 1 })) b.dispose(); }).to.throw(TypeError, /for await/);
    expect(() => new DataLoader(ds, { batchSize: 4, numWorkers: -1 })).to.throw(RangeError, /numWorkers/);
    expect(() => new DataLoader(ds, { batchSize: 4, prefetchFactor: 2 })).to.throw(RangeError, /prefetchFactor/);
    expect(() => new DataLoader(ds, { batchSize: 4, numWorkers: 2, prefetchFactor: 0 })).to.throw(RangeError, /prefetchFactor/);
    const normed = new ImageFolder(root, { transform: T.normalize(0.5, 0.5) });
    expect(() => new DataLoader(normed, { batchSize: 4, mean: 0.1 })).to.throw(TypeError, /normalize once/);
    expect(() => new ImageFolder(root, { transform: (x) => x })).to.throw(TypeError, /options\.transform/);
    expect(() => new ImageFolder(root, { bogus: 1 })).to.throw(TypeError, /bogus/);
    expect(() => new ImageFolder(root, { channels: 4 })).to.throw(RangeError, /channels/);
    expect(() => new ImageFolder(path.join(tmp, 'nope'))).to.throw(Error, /cannot read/);
    fs.mkdirSync(path.join(tmp, 'emptyclass', 'a'), { recursive: true });
    expect(() => new ImageFolder(path.join(tmp, 'emptyclass'))).to.throw(Error, /no image files .* "a"/);
  });

  it('subset keeps the classes and picks the samples given', function () {
    const ds = new ImageFolder(root);
    const sub = ds.subset([80, 0, 120]);
    expect(sub.classes).to.deep.equal(classes);
    expect(sub.samples).to.deep.equal([ds.samples[80], ds.samples[0], ds.samples[120]]);
    expect(Array.from(sub.targets)).to.deep.equal([1, 0, 2]);
    expect(() => ds.subset([121])).to.throw(RangeError, /indices\[0\]/);
  });
});
