// `train --data`: the datasets, their splits and the standard recipes (--augment).
//
// Note [recipes]
// Without --augment every split gets only the normalize (and, for a folder, ImageNet's eval
// resize + center crop). With --augment the training split gets the recipe its dataset is known
// by; the test split never changes:
//   fashion-mnist  randomCrop(28, padding 2), randomHorizontalFlip        no normalize (d2l)
//   cifar10/100    randomCrop(32, padding 4), randomHorizontalFlip        per-channel mean/std of the set
//   folder         randomResizedCrop(S), randomHorizontalFlip             ImageNet mean/std
//                  (eval: resize(S * 256/224), centerCrop(S); S = --resize, default 224)
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  Cifar10, Cifar100, FASHION_MNIST_CLASSES, ImageFolder, ImageArrayDataset, loadFashionMnist, mulberry32, shuffleInPlace,
  takeFirst, transforms as T, type FashionMnist, type LoaderDataset,
} from '../data';
import type { DataChoice } from './args';

/** CIFAR-100's per-channel statistics (train split), as CIFAR10_MEAN/STD are CIFAR-10's. */
export const CIFAR100_MEAN = [0.5071, 0.4865, 0.4409];
export const CIFAR100_STD = [0.2673, 0.2564, 0.2762];

export interface TrainData {
  /** e.g. "cifar10 (/data/cifar-10-batches-bin)" */
  name: string;
  train: LoaderDataset;
  test: LoaderDataset;
  classes: readonly string[];
  channels: number;
  /** the side of the images the model sees */
  size: number;
  /** batch-level resize on the device (fashion-mnist, cifar), else undefined */
  resize: number | undefined;
  /** what the log records about the data */
  info: Record<string, unknown>;
  /** the transforms, as specs, for the log */
  recipe: { train: unknown; test: unknown };
}

export interface OpenDataOptions {
  resize: number;
  augment: boolean;
  limitTrain: number | null;
  limitTest: number | null;
  seed: number;
  cacheDir?: string;
  splitSeed?: number;
  onWarning: (message: string) => void;
}

const flip = (): T.Transform => T.randomHorizontalFlip();

export function openData(choice: DataChoice, o: OpenDataOptions): TrainData {
  switch (choice.kind) {
    case 'fashion-mnist': {
      const fm: FashionMnist = loadFashionMnist({ cacheDir: o.cacheDir, splitSeed: o.splitSeed, onWarning: o.onWarning });
      const first = (ds: typeof fm.train, n: number | null) => (n ? takeFirst(ds, n) : ds);
      const asDataset = (ds: typeof fm.train, transform?: T.AnyTransform): ImageArrayDataset =>
        new ImageArrayDataset({ images: ds.images, labels: ds.labels, n: ds.n, height: ds.height, width: ds.width, transform });
      const augment = o.augment ? T.compose([T.randomCrop(28, { padding: 2 }), flip()]) : undefined;
      const train = asDataset(first(fm.train, o.limitTrain), augment);
      return {
        name: `fashion-mnist ${fm.info.source.version}`,
        train, test: asDataset(first(fm.test, o.limitTest)), classes: FASHION_MNIST_CLASSES, channels: 1, size: o.resize, resize: o.resize,
        info: {
          source: fm.info.source, split: fm.info.split, skipped: fm.info.skipped, cacheFile: fm.info.cacheFile,
          loadMs: fm.info.loadMs, converted: fm.info.converted,
          summary: `${fm.info.converted ? 'converted' : 'cache read'} in ${fm.info.loadMs.toFixed(0)} ms (${fm.info.cacheFile})`,
        },
        recipe: { train: augment?.spec ?? null, test: null },
      };
    }
    case 'cifar10':
    case 'cifar100': {
      const ten = choice.kind === 'cifar10';
      const norm = ten ? T.normalize(T.CIFAR10_MEAN, T.CIFAR10_STD) : T.normalize(CIFAR100_MEAN, CIFAR100_STD);
      const trainT = o.augment ? T.compose([T.randomCrop(32, { padding: 4 }), flip(), norm]) : T.compose([norm]);
      const testT = T.compose([norm]);
      const open = (train: boolean, transform: T.AnyTransform) =>
        ten ? new Cifar10(choice.dir, { train, transform }) : new Cifar100(choice.dir, { train, transform });
      const train = limitArray(open(true, trainT), o.limitTrain);
      const test = limitArray(open(false, testT), o.limitTest);
      return {
        name: `${choice.kind} (${path.resolve(choice.dir)})`,
        train, test, classes: train.classes!, channels: 3, size: o.resize, resize: o.resize,
        info: { dir: path.resolve(choice.dir), summary: path.resolve(choice.dir) },
        recipe: { train: trainT.spec, test: testT.spec },
      };
    }
    case 'folder': {
      const root = path.resolve(choice.dir);
      const split = (names: string[]): string | null => names.map((n) => path.join(root, n)).find((d) => isDir(d)) ?? null;
      const trainDir = split(['train']);
      const testDir = split(['val', 'test']);
      if (!trainDir || !testDir) {
        throw new Error(`--data folder:${choice.dir}: expected ${path.join(root, 'train')} and ${path.join(root, 'val')} ` +
          `(or ${path.join(root, 'test')}), each with one subfolder of images per class, as ImageNet's layout; ` +
          `found ${trainDir ? 'train' : 'no train'} and ${testDir ? path.basename(testDir) : 'no val/test'}`);
      }
      const S = o.resize;
      const norm = T.normalize(T.IMAGENET_MEAN, T.IMAGENET_STD);
      const evalT = T.compose([T.resize(Math.round((S * 256) / 224)), T.centerCrop(S), norm]);
      const trainT = o.augment ? T.compose([T.randomResizedCrop(S), flip(), norm]) : evalT;
      const train = new ImageFolder(trainDir, { transform: trainT });
      const test = new ImageFolder(testDir, { transform: evalT });
      const sameClasses = train.classes.length === test.classes.length && train.classes.every((c, i) => c === test.classes[i]);
      if (!sameClasses) {
        throw new Error(`--data folder:${choice.dir}: ${testDir} has the classes [${test.classes.join(', ')}], ` +
          `${trainDir} has [${train.classes.join(', ')}]; both splits need the same class folders`);
      }
      return {
        name: `folder ${root}`,
        train: limitFolder(train, o.limitTrain, o.seed), test: limitFolder(test, o.limitTest, o.seed),
        classes: train.classes, channels: 3, size: S, resize: undefined,
        info: { root, trainDir, testDir, trainImages: train.n, testImages: test.n, summary: `${train.n} + ${test.n} files in ${root}` },
        recipe: { train: trainT.spec, test: evalT.spec },
      };
    }
  }
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** The first n examples (CIFAR's files are already in random order). */
function limitArray(ds: ImageArrayDataset, n: number | null): ImageArrayDataset {
  return n && n < ds.n ? ds.subset(Array.from({ length: n }, (_, i) => i)) : ds;
}

/** n examples drawn with the run's seed: a folder is sorted by class, so its first n would be one class. */
function limitFolder(ds: ImageFolder, n: number | null, seed: number): ImageFolder {
  if (!n || n >= ds.n) return ds;
  const idx = Uint32Array.from({ length: ds.n }, (_, i) => i);
  shuffleInPlace(idx, mulberry32(seed >>> 0));
  return ds.subset(Array.from(idx.subarray(0, n)).sort((a, b) => a - b));
}
