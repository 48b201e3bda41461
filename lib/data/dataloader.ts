// Batches of an in-memory uint8 image dataset, as device tensors ready for a model.
//
// The host only gathers the batch's uint8 pixels (B*H*W bytes, well under a millisecond); the
// uint8 -> float conversion and the bilinear resize run on the device (normalizeImages), so only
// a quarter of the bytes cross to the GPU and a 96x96 resize costs the host nothing. That makes
// prefetching on the host pointless, so there is none.
//
// Note [per-channel normalize]
// The native op takes one mean and one std for all channels. When every channel has the same
// mean/std (the default, and always for one channel) the batch goes through it as above. When
// they differ, normalizing happens in TS on the host: without a resize the uint8 batch is
// normalized straight into float32 and uploaded; with a resize the device resizes with mean 0,
// std 1 (v / 255), the floats come back to the host and are normalized per channel there, then
// uploaded. The op is linear per channel, so both orders give the same values (to float rounding).
import { normalizeImages } from '../functional';
import { tensor } from '../creation';
import { normalizeDevice, type Device } from '../device';
import type { Tensor } from '../tensor';
import { checkBoolean, checkFinite, checkInteger, checkOptions, invalidRange, invalidType, isNumericTypedArray } from '../validate';
import { mulberry32, shuffleInPlace, type ImageDataset } from './fashion-mnist';
import { ImageArrayDataset } from './image-array';

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
  /** the float images are (v / 255 - mean[c]) / std[c]: a number (every channel) or one number per
   * channel, as torchvision's Normalize; defaults 0 and 1 (d2l's ToTensor: [0, 1]) */
  mean?: number | readonly number[];
  std?: number | readonly number[];
}

/**
 * One batch. The tensors live on the device and are not garbage-collected promptly: call
 * `dispose()` (or use `using batch = ...`) once the step is done with them.
 */
export interface Batch {
  /** float32 [B, C, H, W] (C = 1 for Fashion-MNIST) */
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

function checkDataset(ds: ImageDataset | ImageArrayDataset): void {
  if (ds instanceof ImageArrayDataset) return;
  const ok = ds !== null && typeof ds === 'object' && ds.images instanceof Uint8Array && ds.labels instanceof Uint8Array &&
    Number.isInteger(ds.n) && Number.isInteger(ds.height) && Number.isInteger(ds.width);
  if (!ok) throw new TypeError('dataset: expected {images: Uint8Array, labels: Uint8Array, n, height, width}');
  if (ds.images.length !== ds.n * ds.height * ds.width || ds.labels.length !== ds.n) {
    throw new RangeError(`dataset: expected images.length = n*height*width = ${ds.n * ds.height * ds.width} and labels.length = n = ${ds.n}, ` +
      `received ${ds.images.length} and ${ds.labels.length}`);
  }
}

export class DataLoader {
  readonly dataset: ImageDataset | ImageArrayDataset;
  /** channels per image (1 for an ImageDataset) */
  readonly channels: number;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly device: Device | undefined;
  readonly outputSize: [number, number];
  /** one number per channel */
  readonly mean: readonly number[];
  readonly std: readonly number[];
  private nextEpoch = 0;

  constructor(dataset: ImageDataset | ImageArrayDataset, options: DataLoaderOptions) {
    checkDataset(dataset);
    if (options === null || typeof options !== 'object') throw invalidType('options', 'an options object with batchSize', options);
    const o = checkOptions<DataLoaderOptions>('options', options,
      ['batchSize', 'shuffle', 'seed', 'dropLast', 'device', 'resize', 'mean', 'std']);
    this.dataset = dataset;
    this.channels = dataset instanceof ImageArrayDataset ? dataset.channels : 1;
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
    this.mean = this.perChannel('options.mean', o.mean ?? 0, false);
    this.std = this.perChannel('options.std', o.std ?? 1, true);
  }

  private perChannel(name: string, value: unknown, positive: boolean): readonly number[] {
    const c = this.channels;
    const one = (n: string, v: unknown): number => {
      const x = positive ? checkFinite(n, v, 0, Number.MAX_VALUE, 'a positive finite number') : checkFinite(n, v);
      if (positive && !(x > 0)) throw new RangeError(`${n.replace('options.', '')}: expected a positive number, received ${String(v)}`);
      return x;
    };
    if (typeof value === 'number') return Object.freeze(new Array<number>(c).fill(one(name, value)));
    if (!Array.isArray(value) || value.length !== c) {
      throw invalidType(name, `a number or an array of ${c} number${c > 1 ? 's' : ''} (one per channel)`, value);
    }
    return Object.freeze(value.map((v, k) => one(`${name}[${k}]`, v)));
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
    const ds = this.dataset;
    const { labels, height, width, n } = ds;
    if (!Array.isArray(indices) && !isNumericTypedArray(indices)) {
      throw invalidType('indices', 'an array or typed array of example indices', indices);
    }
    // The length first: a huge sparse array must not be walked or allocated for.
    if (indices.length > n) throw invalidRange('indices', `at most ${n} indices (the dataset's size)`, `${indices.length} indices`);
    for (let k = 0; k < indices.length; k++) checkInteger(`indices[${k}]`, indices[k], 0, n - 1);
    const size = this.channels * height * width;
    const pixels = new Uint8Array(indices.length * size);
    const out = new Int32Array(indices.length);
    for (let k = 0; k < indices.length; k++) {
      const i = indices[k];
      if (ds instanceof ImageArrayDataset) ds.copyCHW(i, pixels, k * size);
      else pixels.set(ds.images.subarray(i * size, (i + 1) * size), k * size);
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
      const images = this.toImages(pixels, B, height, width);
      const labelTensor = tensor(labels, [B], { dtype: 'int32', device: this.device });
      const dispose = (): void => {
        images.dispose();
        labelTensor.dispose();
      };
      yield { images, labels: labelTensor, size: B, index: b, dispose, [Symbol.dispose]: dispose };
    }
  }

  /** uint8 CHW pixels of B images -> float32 [B, C, outH, outW] on the device (Note [per-channel normalize]). */
  private toImages(pixels: Uint8Array, B: number, height: number, width: number): Tensor {
    const C = this.channels;
    const { mean, std } = this;
    const uniform = mean.every((m) => m === mean[0]) && std.every((s) => s === std[0]);
    const [oh, ow] = this.outputSize;
    const resized = oh !== height || ow !== width;
    if (!uniform && !resized) {
      const hw = height * width;
      const out = new Float32Array(pixels.length);
      for (let b = 0; b < B; b++) {
        for (let c = 0; c < C; c++) {
          const m = mean[c], s = std[c], base = (b * C + c) * hw;
          for (let p = base; p < base + hw; p++) out[p] = (pixels[p] / 255 - m) / s;
        }
      }
      return tensor(out, [B, C, height, width], { dtype: 'float32', device: this.device });
    }
    const u8 = tensor(pixels, [B, C, height, width], { dtype: 'uint8', device: this.device });
    let images: Tensor;
    try {
      images = normalizeImages(u8, uniform ? { size: this.outputSize, mean: mean[0], std: std[0] } : { size: this.outputSize });
    } finally {
      u8.dispose();
    }
    if (uniform) return images;
    let host: Float32Array;
    try {
      host = Float32Array.from(images.toArraySync() as ArrayLike<number>);
    } finally {
      images.dispose();
    }
    const ohw = oh * ow;
    for (let b = 0; b < B; b++) {
      for (let c = 0; c < C; c++) {
        const m = mean[c], s = std[c], base = (b * C + c) * ohw;
        for (let p = base; p < base + ohw; p++) host[p] = (host[p] - m) / s;
      }
    }
    return tensor(host, [B, C, oh, ow], { dtype: 'float32', device: this.device });
  }

  /** Iterating the loader runs the next epoch (0, 1, 2, ...). */
  [Symbol.iterator](): Generator<Batch, void, undefined> {
    return this.epoch(this.nextEpoch++);
  }
}
