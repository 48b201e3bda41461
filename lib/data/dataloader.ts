// Batches of an in-memory uint8 image dataset, as device tensors ready for a model.
//
// The host only gathers the batch's uint8 pixels (B*H*W bytes, well under a millisecond); the
// uint8 -> float conversion and the bilinear resize run on the device (normalizeImages), so only
// a quarter of the bytes cross to the GPU and a 96x96 resize costs the host nothing. That makes
// prefetching on the host pointless, so there is none.
import { normalizeImages } from '../functional';
import { tensor } from '../creation';
import { normalizeDevice, type Device } from '../device';
import type { Tensor } from '../tensor';
import { checkBoolean, checkFinite, checkInteger, checkOptions, invalidRange, invalidType, isNumericTypedArray } from '../validate';
import { mulberry32, shuffleInPlace, type ImageDataset } from './fashion-mnist';

export interface DataLoaderOptions {
  /** images per batch (required) */
  batchSize: number;
  /** reshuffle every epoch; default true */
  shuffle?: boolean;
  /** shuffling seed; epoch e uses seed + e, so runs are reproducible; default 0 */
  seed?: number;
  /** drop the last, smaller batch; default false */
  dropLast?: boolean;
  /** device of the batch tensors; default the default device */
  device?: Device;
  /** output size: a number (square) or [height, width]; bilinear resize when it differs from
   * the dataset's; default the dataset's size */
  resize?: number | [number, number];
  /** the float images are (v / 255 - mean) / std; defaults 0 and 1 (d2l's ToTensor: [0, 1]) */
  mean?: number;
  std?: number;
}

/**
 * One batch. The tensors live on the device and are not garbage-collected promptly: call
 * `dispose()` (or use `using batch = ...`) once the step is done with them.
 */
export interface Batch {
  /** float32 [B, 1, H, W] */
  images: Tensor;
  /** int32 [B] */
  labels: Tensor;
  /** B */
  size: number;
  /** index of this batch in its epoch */
  index: number;
  dispose(): void;
  [Symbol.dispose](): void;
}

function checkPositiveInt(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new RangeError(`${name}: expected a positive integer, received ${String(value)}`);
  }
  return value;
}

function checkDataset(ds: ImageDataset): void {
  const ok = ds !== null && typeof ds === 'object' && ds.images instanceof Uint8Array && ds.labels instanceof Uint8Array &&
    Number.isInteger(ds.n) && Number.isInteger(ds.height) && Number.isInteger(ds.width);
  if (!ok) throw new TypeError('dataset: expected {images: Uint8Array, labels: Uint8Array, n, height, width}');
  if (ds.images.length !== ds.n * ds.height * ds.width || ds.labels.length !== ds.n) {
    throw new RangeError(`dataset: expected images.length = n*height*width = ${ds.n * ds.height * ds.width} and labels.length = n = ${ds.n}, ` +
      `received ${ds.images.length} and ${ds.labels.length}`);
  }
}

export class DataLoader {
  readonly dataset: ImageDataset;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly device: Device | undefined;
  readonly outputSize: [number, number];
  readonly mean: number;
  readonly std: number;
  private nextEpoch = 0;

  constructor(dataset: ImageDataset, options: DataLoaderOptions) {
    checkDataset(dataset);
    if (options === null || typeof options !== 'object') throw invalidType('options', 'an options object with batchSize', options);
    const o = checkOptions<DataLoaderOptions>('options', options,
      ['batchSize', 'shuffle', 'seed', 'dropLast', 'device', 'resize', 'mean', 'std']);
    this.dataset = dataset;
    this.batchSize = checkPositiveInt('batchSize', o.batchSize);
    this.shuffle = checkBoolean('options.shuffle', o.shuffle ?? true);
    // manualSeed's range: an integer a double holds exactly (seed + epoch then stays exact).
    this.seed = checkInteger('options.seed', o.seed ?? 0, 0, Number.MAX_SAFE_INTEGER);
    this.dropLast = checkBoolean('options.dropLast', o.dropLast ?? false);
    this.device = o.device === undefined ? undefined : normalizeDevice('options.device', o.device);
    const r = o.resize ?? [dataset.height, dataset.width];
    if (typeof r !== 'number' && !(Array.isArray(r) && r.length === 2)) {
      throw invalidType('options.resize', 'a positive integer or [height, width]', r);
    }
    this.outputSize = typeof r === 'number'
      ? [checkPositiveInt('resize', r), r]
      : [checkPositiveInt('resize[0]', r[0]), checkPositiveInt('resize[1]', r[1])];
    this.mean = checkFinite('options.mean', o.mean ?? 0);
    this.std = checkFinite('options.std', o.std ?? 1, 0, Number.MAX_VALUE, 'a positive finite number');
    if (!(this.std > 0)) throw new RangeError(`std: expected a positive number, received ${String(o.std)}`);
  }

  /** Batches per epoch. */
  get length(): number {
    const n = this.dataset.n;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** The example order of `epoch`: a permutation seeded with seed + epoch, or 0..n-1 unshuffled. */
  order(epoch: number): Uint32Array {
    // An integer: seed + '1' would concatenate, a fraction would silently reuse a shuffle.
    checkInteger('epoch', epoch, 0);
    const idx = new Uint32Array(this.dataset.n);
    for (let i = 0; i < idx.length; i++) idx[i] = i;
    if (this.shuffle) shuffleInPlace(idx, mulberry32((this.seed + epoch) >>> 0));
    return idx;
  }

  /** Gathers a batch on the host: uint8 pixels and int32 labels of the given examples. */
  gather(indices: ArrayLike<number>): { pixels: Uint8Array; labels: Int32Array } {
    const { images, labels, height, width, n } = this.dataset;
    if (!Array.isArray(indices) && !isNumericTypedArray(indices)) {
      throw invalidType('indices', 'an array or typed array of example indices', indices);
    }
    // The length first: a huge sparse array must not be walked or allocated for.
    if (indices.length > n) throw invalidRange('indices', `at most ${n} indices (the dataset's size)`, `${indices.length} indices`);
    for (let k = 0; k < indices.length; k++) checkInteger(`indices[${k}]`, indices[k], 0, n - 1);
    const size = height * width;
    const pixels = new Uint8Array(indices.length * size);
    const out = new Int32Array(indices.length);
    for (let k = 0; k < indices.length; k++) {
      const i = indices[k];
      pixels.set(images.subarray(i * size, (i + 1) * size), k * size);
      out[k] = labels[i];
    }
    return { pixels, labels: out };
  }

  /** The batches of one epoch (its shuffle seeded with seed + epoch). */
  *epoch(epoch: number): Generator<Batch, void, undefined> {
    const order = this.order(epoch);
    const { height, width } = this.dataset;
    for (let b = 0; b < this.length; b++) {
      const indices = order.subarray(b * this.batchSize, Math.min((b + 1) * this.batchSize, order.length));
      const { pixels, labels } = this.gather(indices);
      const B = indices.length;
      const u8 = tensor(pixels, [B, 1, height, width], { dtype: 'uint8', device: this.device });
      let images: Tensor;
      try {
        images = normalizeImages(u8, { size: this.outputSize, mean: this.mean, std: this.std });
      } finally {
        u8.dispose();
      }
      const labelTensor = tensor(labels, [B], { dtype: 'int32', device: this.device });
      const dispose = (): void => {
        images.dispose();
        labelTensor.dispose();
      };
      yield { images, labels: labelTensor, size: B, index: b, dispose, [Symbol.dispose]: dispose };
    }
  }

  /** Iterating the loader runs the next epoch (0, 1, 2, ...). */
  [Symbol.iterator](): Generator<Batch, void, undefined> {
    return this.epoch(this.nextEpoch++);
  }
}
