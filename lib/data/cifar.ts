// CIFAR-10 and CIFAR-100 from the official binary archives (no download: the user gives the path).
//
// Note [the binary format]
// https://www.cs.toronto.edu/~kriz/cifar.html, "binary version". Each record is the label byte(s)
// and then 3072 bytes: 1024 red, 1024 green, 1024 blue, each 32x32 row-major (CHW). CIFAR-10:
// 1 label byte, cifar-10-batches-bin/data_batch_{1..5}.bin and test_batch.bin. CIFAR-100:
// 2 label bytes (coarse, fine), cifar-100-binary/train.bin and test.bin.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkBoolean, checkOneOf, checkOptions, invalidType } from '../validate';
import { ImageArrayDataset, type ImageArrayDatasetInit } from './image-array';
import type { AnyTransform } from './transforms';

export const CIFAR10_CLASSES: readonly string[] = Object.freeze([
  'airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck',
]);

export const CIFAR100_COARSE_CLASSES: readonly string[] = Object.freeze([
  'aquatic_mammals', 'fish', 'flowers', 'food_containers', 'fruit_and_vegetables', 'household_electrical_devices',
  'household_furniture', 'insects', 'large_carnivores', 'large_man-made_outdoor_things', 'large_natural_outdoor_scenes',
  'large_omnivores_and_herbivores', 'medium_mammals', 'non-insect_invertebrates', 'people', 'reptiles', 'small_mammals',
  'trees', 'vehicles_1', 'vehicles_2',
]);

export const CIFAR100_FINE_CLASSES: readonly string[] = Object.freeze([
  'apple', 'aquarium_fish', 'baby', 'bear', 'beaver', 'bed', 'bee', 'beetle', 'bicycle', 'bottle', 'bowl', 'boy',
  'bridge', 'bus', 'butterfly', 'camel', 'can', 'castle', 'caterpillar', 'cattle', 'chair', 'chimpanzee', 'clock',
  'cloud', 'cockroach', 'couch', 'crab', 'crocodile', 'cup', 'dinosaur', 'dolphin', 'elephant', 'flatfish', 'forest',
  'fox', 'girl', 'hamster', 'house', 'kangaroo', 'keyboard', 'lamp', 'lawn_mower', 'leopard', 'lion', 'lizard',
  'lobster', 'man', 'maple_tree', 'motorcycle', 'mountain', 'mouse', 'mushroom', 'oak_tree', 'orange', 'orchid',
  'otter', 'palm_tree', 'pear', 'pickup_truck', 'pine_tree', 'plain', 'plate', 'poppy', 'porcupine', 'possum',
  'rabbit', 'raccoon', 'ray', 'road', 'rocket', 'rose', 'sea', 'seal', 'shark', 'shrew', 'skunk', 'skyscraper',
  'snail', 'snake', 'spider', 'squirrel', 'streetcar', 'sunflower', 'sweet_pepper', 'table', 'tank', 'telephone',
  'television', 'tiger', 'tractor', 'train', 'trout', 'tulip', 'turtle', 'wardrobe', 'whale', 'willow_tree', 'wolf',
  'woman', 'worm',
]);

const PIXELS = 3 * 32 * 32;
const CIFAR10_ARCHIVE = 'cifar-10-binary.tar.gz';
const CIFAR100_ARCHIVE = 'cifar-100-binary.tar.gz';

export interface Cifar {
  train: ImageArrayDataset;
  test: ImageArrayDataset;
  classes: readonly string[];
}

export interface LoadCifar100Options {
  /** which label to return; default 'fine' (100 classes); 'coarse' is the 20 superclasses */
  labels?: 'fine' | 'coarse';
}

const WHERE = 'Download the "binary version" from https://www.cs.toronto.edu/~kriz/cifar.html and extract it with `tar xzf';

/** `dir` itself when it is the archive's folder, else dir/<folder>; throws naming both paths. */
function findFolder(dir: unknown, folder: string, archive: string, first: string): string {
  if (typeof dir !== 'string' || dir === '') throw invalidType('dir', 'a directory path', dir);
  const abs = path.resolve(dir);
  for (const candidate of [abs, path.join(abs, folder)]) {
    if (fs.existsSync(path.join(candidate, first))) return candidate;
  }
  throw new Error(`${folder}: no ${first} in ${abs} or ${path.join(abs, folder)}. ${WHERE} ${archive}\` ` +
    `in ${abs} (it creates ${folder}/), then pass that directory.`);
}

/** Reads one binary file of records; throws naming the file if it is missing or truncated. */
function readRecords(file: string, labelBytes: number, archive: string): { buf: Buffer; count: number } {
  if (!fs.existsSync(file)) throw new Error(`${file}: not found. ${WHERE} ${archive}\`.`);
  const buf = fs.readFileSync(file);
  const record = labelBytes + PIXELS;
  if (buf.length === 0 || buf.length % record !== 0) {
    throw new Error(`${file}: truncated or corrupt: ${buf.length} bytes is not a positive multiple of the ` +
      `${record}-byte record (${labelBytes} label byte${labelBytes > 1 ? 's' : ''} + ${PIXELS} pixels). ${WHERE} ${archive}\` again.`);
  }
  return { buf, count: buf.length / record };
}

function readSplit(files: string[], labelBytes: number, labelOffset: number, archive: string, classes: readonly string[]): ImageArrayDatasetInit {
  const parts = files.map((f) => readRecords(f, labelBytes, archive));
  const n = parts.reduce((s, p) => s + p.count, 0);
  const images = new Uint8Array(n * PIXELS);
  const labels = new Int32Array(n);
  const record = labelBytes + PIXELS;
  let k = 0;
  parts.forEach(({ buf, count }, fi) => {
    for (let r = 0; r < count; r++, k++) {
      const at = r * record;
      const label = buf[at + labelOffset];
      if (label >= classes.length) {
        throw new Error(`${files[fi]}: corrupt: record ${r} has label ${label}, expected 0..${classes.length - 1}`);
      }
      labels[k] = label;
      images.set(buf.subarray(at + labelBytes, at + record), k * PIXELS);
    }
  });
  return { images, labels, n, channels: 3, height: 32, width: 32, layout: 'CHW', classes };
}

function readNames(file: string, fallback: readonly string[]): readonly string[] {
  if (!fs.existsSync(file)) return fallback;
  const names = fs.readFileSync(file, 'utf8').split(/\r?\n/).map((s) => s.trim()).filter((s) => s !== '');
  if (names.length !== fallback.length) {
    throw new Error(`${file}: expected ${fallback.length} class names, one a line, found ${names.length}`);
  }
  return Object.freeze(names);
}

/**
 * CIFAR-10 (50,000 train + 10,000 test 3x32x32 images, CHW) from `dir`: the folder that holds
 * `cifar-10-batches-bin`, or that folder itself.
 */
export function loadCifar10(dir: string): Cifar {
  const root = findFolder(dir, 'cifar-10-batches-bin', CIFAR10_ARCHIVE, 'data_batch_1.bin');
  const classes = readNames(path.join(root, 'batches.meta.txt'), CIFAR10_CLASSES);
  const train = new ImageArrayDataset(readCifar10Split(root, true, classes));
  const test = new ImageArrayDataset(readCifar10Split(root, false, classes));
  return { train, test, classes };
}

function readCifar10Split(root: string, train: boolean, classes: readonly string[]): ImageArrayDatasetInit {
  const files = train ? [1, 2, 3, 4, 5].map((i) => path.join(root, `data_batch_${i}.bin`)) : [path.join(root, 'test_batch.bin')];
  return readSplit(files, 1, 0, CIFAR10_ARCHIVE, classes);
}

/**
 * CIFAR-100 (50,000 train + 10,000 test, CHW) from `dir`: the folder that holds
 * `cifar-100-binary`, or that folder itself; fine (100) or coarse (20) labels.
 */
export function loadCifar100(dir: string, options: LoadCifar100Options = {}): Cifar {
  const o = checkOptions<LoadCifar100Options>('options', options, ['labels']);
  const kind = checkOneOf('options.labels', o.labels ?? 'fine', ['fine', 'coarse'] as const);
  const root = findFolder(dir, 'cifar-100-binary', CIFAR100_ARCHIVE, 'train.bin');
  const classes = cifar100Classes(root, kind);
  const train = new ImageArrayDataset(readSplit([path.join(root, 'train.bin')], 2, kind === 'coarse' ? 0 : 1, CIFAR100_ARCHIVE, classes));
  const test = new ImageArrayDataset(readSplit([path.join(root, 'test.bin')], 2, kind === 'coarse' ? 0 : 1, CIFAR100_ARCHIVE, classes));
  return { train, test, classes };
}

function cifar100Classes(root: string, kind: 'fine' | 'coarse'): readonly string[] {
  return kind === 'fine'
    ? readNames(path.join(root, 'fine_label_names.txt'), CIFAR100_FINE_CLASSES)
    : readNames(path.join(root, 'coarse_label_names.txt'), CIFAR100_COARSE_CLASSES);
}

export interface CifarOptions {
  /** the training split (default) or the test split */
  train?: boolean;
  /** per-image transforms, run by the DataLoader */
  transform?: AnyTransform;
}

/** One split of CIFAR-10, as torchvision's `CIFAR10(root, train=True, transform=...)` (no download). */
export class Cifar10 extends ImageArrayDataset {
  constructor(dir: string, options: CifarOptions = {}) {
    const o = checkOptions<CifarOptions>('options', options, ['train', 'transform']);
    const root = findFolder(dir, 'cifar-10-batches-bin', CIFAR10_ARCHIVE, 'data_batch_1.bin');
    const classes = readNames(path.join(root, 'batches.meta.txt'), CIFAR10_CLASSES);
    super({ ...readCifar10Split(root, checkBoolean('options.train', o.train ?? true), classes), transform: o.transform });
  }
}

/** One split of CIFAR-100 with fine (default) or coarse labels, as torchvision's `CIFAR100`. */
export class Cifar100 extends ImageArrayDataset {
  constructor(dir: string, options: CifarOptions & LoadCifar100Options = {}) {
    const o = checkOptions<CifarOptions & LoadCifar100Options>('options', options, ['train', 'transform', 'labels']);
    const kind = checkOneOf('options.labels', o.labels ?? 'fine', ['fine', 'coarse'] as const);
    const root = findFolder(dir, 'cifar-100-binary', CIFAR100_ARCHIVE, 'train.bin');
    const file = path.join(root, checkBoolean('options.train', o.train ?? true) ? 'train.bin' : 'test.bin');
    super({ ...readSplit([file], 2, kind === 'coarse' ? 0 : 1, CIFAR100_ARCHIVE, cifar100Classes(root, kind)), transform: o.transform });
  }
}
