// Batches of a dataset, as device tensors ready for a model.
//
// Each batch is built on the host (batch.ts): examples fetched (a slice of memory, or a file
// decoded with sharp), the dataset's per-image transforms run, the result collated into one CHW
// buffer. With numWorkers > 0 that happens in a pool of worker threads (piscina), whole batches
// per task as in torch's DataLoader, at most numWorkers * prefetchFactor batches ahead, handed
// back in order. The uint8 -> float conversion, a batch-level resize and a normalize with one
// mean for all channels then run on the device (normalizeImages), so only a quarter of the bytes
// cross to the GPU.
//
// Note [per-channel normalize]
// The native op takes one mean and one std for all channels. A per-channel normalize (ImageNet's,
// CIFAR's) therefore happens on the host while collating (in the workers when there are any),
// and the float32 batch is uploaded. With a batch-level resize as well, the device resizes with
// mean 0, std 1 (v / 255), the floats come back to the host and are normalized per channel
// there, then uploaded. The op is linear per channel, so both orders give the same values.
import * as path from 'node:path';
import { Piscina } from 'piscina';
import { normalizeImages } from '../functional';
import { tensor } from '../creation';
import { normalizeDevice, type Device } from '../device';
import type { Tensor } from '../tensor';
import { checkBoolean, checkFinite, checkInteger, checkOptions, invalidRange, invalidType, isNumericTypedArray } from '../validate';
import { BatchBuilder, type BatchFailure, type BatchTask, type BuilderConfig, type BuiltBatch, type SourceSpec } from './batch';
import { mulberry32, shuffleInPlace, type ImageDataset } from './fashion-mnist';
import { ImageArrayDataset } from './image-array';
import { ImageDecodeError, ImageFolder } from './image-folder';
import type { TransformSpec } from './transforms';

export type LoaderDataset = ImageDataset | ImageArrayDataset | ImageFolder;

export interface DataLoaderOptions {
  /** images per batch (required) */
  batchSize: number;
  /** reshuffle every epoch; default true (false with a sampler) */
  shuffle?: boolean;
  /** the example order instead of shuffle: `order(epoch)` gives the indices, e.g. a
   * distributed.DistributedSampler (this rank's share); mutually exclusive with shuffle */
  sampler?: { readonly length: number; order(epoch: number): ArrayLike<number> };
  /** seed of the shuffle and of the random transforms; epoch e shuffles with seed + e, so runs
   * are reproducible (for any numWorkers); default 0 */
  seed?: number;
  /** drop the last, smaller batch; default false */
  dropLast?: boolean;
  /** device of the batch tensors; default the default device */
  device?: Device;
  /** batch-level output size on the device: a number (square) or [height, width]; bilinear
   * resize when it differs from the batch's; default no resize */
  resize?: number | [number, number];
  /** the float images are (v / 255 - mean[c]) / std[c]: a number (every channel) or one number per
   * channel, as torchvision's Normalize; defaults 0 and 1 (d2l's ToTensor: [0, 1]). A dataset
   * transform that ends in transforms.normalize sets these instead. */
  mean?: number | readonly number[];
  std?: number | readonly number[];
  /** worker threads that build batches (decode, transform, collate); default 0 = the main thread */
  numWorkers?: number;
  /** batches each worker builds ahead (torch's prefetch_factor); default 2; needs numWorkers > 0 */
  prefetchFactor?: number;
  /** keep the worker threads between epochs (torch's persistent_workers); end them with
   * `await loader.close()` (or `await using`); default false: a pool per epoch */
  persistentWorkers?: boolean;
  /** where warnings go (a skipped unreadable image); default process.emitWarning */
  onWarning?: (message: string) => void;
}

/**
 * One batch. The tensors live on the device and are not garbage-collected promptly: call
 * `dispose()` (or use `using batch = ...`) once the step is done with them.
 */
export interface Batch {
  /** float32 [B, C, H, W] */
  images: Tensor;
  /** int32 [B] */
  labels: Tensor;
  /** B (smaller than batchSize for the last batch, or when unreadable images were skipped) */
  size: number;
  /** index of this batch in its epoch */
  index: number;
  dispose(): void;
  [Symbol.dispose](): void;
}

/** One epoch's batches: `for await` always works; plain `for` only for an in-memory dataset without workers. */
export interface EpochBatches extends Iterable<Batch>, AsyncIterable<Batch> {
  readonly epoch: number;
  readonly length: number;
}

function checkPositiveInt(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new RangeError(`${name}: expected a positive integer, received ${String(value)}`);
  }
  return value;
}

function checkDataset(ds: unknown): void {
  if (ds instanceof ImageArrayDataset || ds instanceof ImageFolder) return;
  const d = ds as ImageDataset;
  const ok = d !== null && typeof d === 'object' && d.images instanceof Uint8Array && d.labels instanceof Uint8Array &&
    Number.isInteger(d.n) && Number.isInteger(d.height) && Number.isInteger(d.width);
  if (!ok) throw invalidType('dataset', 'an ImageFolder, an ImageArrayDataset or {images: Uint8Array, labels: Uint8Array, n, height, width}', ds);
  if (d.images.length !== d.n * d.height * d.width || d.labels.length !== d.n) {
    throw new RangeError(`dataset: expected images.length = n*height*width = ${d.n * d.height * d.width} and labels.length = n = ${d.n}, ` +
      `received ${d.images.length} and ${d.labels.length}`);
  }
}

/** The dataset's transform split into per-image steps and a trailing normalize (hoisted to the batch). */
function splitTransform(t: TransformSpec | null): { perImage: TransformSpec | null; normalize: { mean: number[]; std: number[] } | null } {
  if (t === null) return { perImage: null, normalize: null };
  if (t.name === 'normalize') return { perImage: null, normalize: { mean: t.mean, std: t.std } };
  if (t.name === 'compose' && t.transforms.length > 0) {
    const last = t.transforms[t.transforms.length - 1];
    if (last.name === 'normalize') {
      const rest = t.transforms.slice(0, -1);
      return { perImage: rest.length === 0 ? null : { name: 'compose', transforms: rest }, normalize: { mean: last.mean, std: last.std } };
    }
  }
  return { perImage: t, normalize: null };
}

/** Array data shared with the workers once (a SharedArrayBuffer copy), not once per epoch. */
const sharedCopies = new WeakMap<object, Uint8Array | Int32Array>();
function inSharedMemory<T extends Uint8Array | Int32Array>(a: T): T {
  if (a.buffer instanceof SharedArrayBuffer) return a;
  let copy = sharedCopies.get(a) as T | undefined;
  if (!copy) {
    copy = new (a.constructor as new (b: SharedArrayBuffer) => T)(new SharedArrayBuffer(a.byteLength));
    copy.set(a);
    sharedCopies.set(a, copy);
  }
  return copy;
}

export class DataLoader {
  readonly dataset: LoaderDataset;
  /** channels per image */
  readonly channels: number;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly device: Device | undefined;
  /** the batch-level resize, or null (batches keep the size the dataset and its transform give) */
  readonly outputSize: [number, number] | null;
  /** one number per channel */
  readonly mean: readonly number[];
  readonly std: readonly number[];
  readonly numWorkers: number;
  readonly prefetchFactor: number;
  readonly persistentWorkers: boolean;
  readonly sampler: DataLoaderOptions['sampler'] | null = null;
  private pool: Piscina | null = null;
  private readonly onWarning: (message: string) => void;
  private readonly perImage: TransformSpec | null;
  private builder: BatchBuilder | null = null;
  private nextEpoch = 0;

  constructor(dataset: LoaderDataset, options: DataLoaderOptions) {
    checkDataset(dataset);
    if (options === null || typeof options !== 'object') throw invalidType('options', 'an options object with batchSize', options);
    const o = checkOptions<DataLoaderOptions>('options', options,
      ['batchSize', 'shuffle', 'sampler', 'seed', 'dropLast', 'device', 'resize', 'mean', 'std', 'numWorkers', 'prefetchFactor', 'persistentWorkers', 'onWarning']);
    this.dataset = dataset;
    this.channels = dataset instanceof ImageArrayDataset || dataset instanceof ImageFolder ? dataset.channels : 1;
    this.batchSize = checkPositiveInt('batchSize', o.batchSize);
    if (o.sampler !== undefined) {
      const sm = o.sampler;
      if (sm === null || typeof sm !== 'object' || typeof sm.order !== 'function' || !Number.isInteger(sm.length)) {
        throw invalidType('options.sampler', 'a sampler with order(epoch) and an integer length (e.g. a DistributedSampler)', sm);
      }
      if (o.shuffle !== undefined) throw new TypeError('options.shuffle: a sampler decides the order; give shuffle to the sampler instead');
      this.sampler = sm;
    }
    this.shuffle = checkBoolean('options.shuffle', o.shuffle ?? this.sampler === null);
    // manualSeed's range: an integer a double holds exactly (seed + epoch then stays exact).
    this.seed = checkInteger('options.seed', o.seed ?? 0, 0, Number.MAX_SAFE_INTEGER);
    this.dropLast = checkBoolean('options.dropLast', o.dropLast ?? false);
    this.device = o.device === undefined ? undefined : normalizeDevice('options.device', o.device);
    this.numWorkers = checkInteger('options.numWorkers', o.numWorkers ?? 0, 0, 256);
    if (o.prefetchFactor !== undefined && this.numWorkers === 0) {
      throw new RangeError('options.prefetchFactor: only means something with numWorkers > 0, received numWorkers 0');
    }
    this.prefetchFactor = checkInteger('options.prefetchFactor', o.prefetchFactor ?? 2, 1, 64);
    this.persistentWorkers = checkBoolean('options.persistentWorkers', o.persistentWorkers ?? false);
    if (this.persistentWorkers && this.numWorkers === 0) {
      throw new RangeError('options.persistentWorkers: needs numWorkers > 0, received numWorkers 0');
    }
    if (o.onWarning !== undefined && typeof o.onWarning !== 'function') throw invalidType('options.onWarning', 'a function', o.onWarning);
    this.onWarning = o.onWarning ?? ((m: string) => process.emitWarning(m, 'DataLoaderWarning'));

    const r = o.resize;
    if (r !== undefined && typeof r !== 'number' && !(Array.isArray(r) && r.length === 2)) {
      throw invalidType('options.resize', 'a positive integer or [height, width]', r);
    }
    this.outputSize = r === undefined ? null : typeof r === 'number'
      ? [checkPositiveInt('resize', r), r]
      : [checkPositiveInt('resize[0]', r[0]), checkPositiveInt('resize[1]', r[1])];

    const transform = dataset instanceof ImageArrayDataset || dataset instanceof ImageFolder ? dataset.transform : undefined;
    const { perImage, normalize } = splitTransform(transform?.spec ?? null);
    this.perImage = perImage;
    if (normalize && (o.mean !== undefined || o.std !== undefined)) {
      throw new TypeError('options.mean/std: the dataset\'s transform already ends with transforms.normalize; give the normalize once');
    }
    this.mean = this.perChannel('options.mean', normalize?.mean ?? o.mean ?? 0, false);
    this.std = this.perChannel('options.std', normalize?.std ?? o.std ?? 1, true);
  }

  private perChannel(name: string, value: unknown, positive: boolean): readonly number[] {
    const c = this.channels;
    const one = (n: string, v: unknown): number => {
      const x = positive ? checkFinite(n, v, 0, Number.MAX_VALUE, 'a positive finite number') : checkFinite(n, v);
      if (positive && !(x > 0)) throw new RangeError(`${n.replace('options.', '')}: expected a positive number, received ${String(v)}`);
      return x;
    };
    if (typeof value === 'number') return Object.freeze(new Array<number>(c).fill(one(name, value)));
    if (Array.isArray(value) && value.length === 1) return Object.freeze(new Array<number>(c).fill(one(`${name}[0]`, value[0])));
    if (!Array.isArray(value) || value.length !== c) {
      throw invalidType(name, `a number or an array of ${c} number${c > 1 ? 's' : ''} (one per channel)`, value);
    }
    return Object.freeze(value.map((v, k) => one(`${name}[${k}]`, v)));
  }

  /** Batches per epoch. */
  get length(): number {
    const n = this.sampler ? this.sampler.length : this.dataset.n;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** The example order of `epoch`: the sampler's, a permutation seeded with seed + epoch, or 0..n-1 unshuffled. */
  order(epoch: number): Uint32Array {
    // An integer: seed + '1' would concatenate, a fraction would silently reuse a shuffle.
    checkInteger('epoch', epoch, 0);
    if (this.sampler) {
      const given = this.sampler.order(epoch);
      const n = this.dataset.n;
      const out = new Uint32Array(given.length);
      for (let k = 0; k < given.length; k++) out[k] = checkInteger(`sampler.order(${epoch})[${k}]`, given[k], 0, n - 1);
      return out;
    }
    const idx = new Uint32Array(this.dataset.n);
    for (let i = 0; i < idx.length; i++) idx[i] = i;
    if (this.shuffle) shuffleInPlace(idx, mulberry32((this.seed + epoch) >>> 0));
    return idx;
  }

  /** Gathers an in-memory batch on the host, untransformed: uint8 CHW pixels and int32 labels. */
  gather(indices: ArrayLike<number>): { pixels: Uint8Array; labels: Int32Array } {
    const ds = this.dataset;
    if (ds instanceof ImageFolder) throw new TypeError('gather: an ImageFolder is read from files; use ImageFolder.get(i) or iterate the loader');
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

  /** What a builder needs; `forWorkers` puts an array dataset in shared memory. */
  private builderConfig(forWorkers: boolean): BuilderConfig {
    const ds = this.dataset;
    let source: SourceSpec;
    if (ds instanceof ImageFolder) {
      source = { kind: 'files', channels: ds.channels };
    } else {
      const images = forWorkers ? inSharedMemory(ds.images) : ds.images;
      const labels = ds instanceof ImageArrayDataset ? ds.labels : Int32Array.from(ds.labels);
      source = {
        kind: 'array', images, labels: forWorkers ? inSharedMemory(labels) : labels, channels: this.channels, height: ds.height, width: ds.width,
        layout: ds instanceof ImageArrayDataset ? ds.layout : 'CHW',
      };
    }
    const perChannel = !this.mean.every((m) => m === this.mean[0]) || !this.std.every((v) => v === this.std[0]);
    const hostNormalize = perChannel && this.outputSize === null ? { mean: [...this.mean], std: [...this.std] } : null;
    return { source, transform: this.perImage, hostNormalize, seed: this.seed, onCorrupt: ds instanceof ImageFolder ? ds.onCorrupt : 'error' };
  }

  private tasks(epoch: number): BatchTask[] {
    const order = this.order(epoch);
    const ds = this.dataset;
    const out: BatchTask[] = [];
    for (let b = 0; b < this.length; b++) {
      const indices = Array.from(order.subarray(b * this.batchSize, Math.min((b + 1) * this.batchSize, order.length)));
      const task: BatchTask = { epoch, batch: b, indices };
      if (ds instanceof ImageFolder) {
        task.files = indices.map((i) => ds.samples[i][0]);
        task.labels = indices.map((i) => ds.samples[i][1]);
      }
      out.push(task);
    }
    return out;
  }

  /** The batches of one epoch (its shuffle seeded with seed + epoch). */
  epoch(epoch: number): EpochBatches {
    checkInteger('epoch', epoch, 0);
    return {
      epoch,
      length: this.length,
      [Symbol.iterator]: () => this.syncBatches(epoch),
      [Symbol.asyncIterator]: () => this.asyncBatches(epoch),
    };
  }

  private *syncBatches(epoch: number): Generator<Batch, void, undefined> {
    if (this.numWorkers > 0 || this.dataset instanceof ImageFolder) {
      throw new TypeError(`DataLoader: ${this.numWorkers > 0 ? `with numWorkers ${this.numWorkers}` : 'an ImageFolder (files decode asynchronously)'}, ` +
        'iterate with `for await (const batch of loader)`');
    }
    this.builder ??= new BatchBuilder(this.builderConfig(false));
    for (const task of this.tasks(epoch)) yield this.toBatch(this.unwrap(this.builder.buildSync(task)), task.batch);
  }

  private async *asyncBatches(epoch: number): AsyncGenerator<Batch, void, undefined> {
    const tasks = this.tasks(epoch);
    if (this.numWorkers === 0) {
      this.builder ??= new BatchBuilder(this.builderConfig(false));
      for (const task of tasks) yield this.toBatch(this.unwrap(await this.builder.build(task)), task.batch);
      return;
    }
    // A pool per epoch, as torch's default (persistent_workers=False); destroyed however the
    // loop ends (done, break, an error, Ctrl-C's stop), which ends the worker threads.
    const pool = this.pool ?? new Piscina({
      filename: path.join(__dirname, 'worker.js'),
      workerData: this.builderConfig(true),
      minThreads: this.numWorkers,
      maxThreads: this.numWorkers,
      idleTimeout: this.persistentWorkers ? Infinity : 60_000,
      concurrentTasksPerWorker: 1,
    });
    if (this.persistentWorkers) this.pool = pool;
    const inFlight: Promise<BuiltBatch | BatchFailure>[] = [];
    const ahead = this.numWorkers * this.prefetchFactor;
    let submitted = 0;
    const submit = (): void => {
      const p = pool.run(tasks[submitted]) as Promise<BuiltBatch | BatchFailure>;
      p.catch(() => undefined); // awaited in order below; destroy() rejects the rest
      inFlight[submitted++] = p;
    };
    try {
      while (submitted < Math.min(ahead, tasks.length)) submit();
      for (let b = 0; b < tasks.length; b++) {
        let built: BuiltBatch | BatchFailure;
        try {
          built = await inFlight[b];
        } catch (e) {
          throw workerError(e, b, epoch);
        }
        inFlight[b] = undefined as never;
        if (submitted < tasks.length) submit();
        yield this.toBatch(this.unwrap(built), b);
      }
    } finally {
      // A persistent pool stays (an abandoned epoch's last tasks just finish); idle workers
      // are unref'd, so they never keep the process alive.
      if (!this.persistentWorkers) await pool.destroy();
    }
  }

  /** Ends persistent workers (a no-op otherwise); the next epoch starts new ones. */
  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    await pool?.destroy();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** A built batch, or the failure it reports thrown as the right error. */
  private unwrap(built: BuiltBatch | BatchFailure): BuiltBatch {
    if ('failure' in built) {
      const f = built.failure;
      if (f.kind === 'size') throw new RangeError(f.message);
      throw new ImageDecodeError(f.message, f.file);
    }
    for (const s of built.skipped) this.onWarning(`skipped unreadable image ${s.file}: ${s.reason}`);
    return built;
  }

  private toBatch(built: BuiltBatch, index: number): Batch {
    const images = this.toImages(built);
    let labels: Tensor;
    try {
      labels = tensor(built.labels, [built.size], { dtype: 'int32', device: this.device });
    } catch (e) {
      images.dispose();
      throw e;
    }
    const dispose = (): void => {
      images.dispose();
      labels.dispose();
    };
    return { images, labels, size: built.size, index, dispose, [Symbol.dispose]: dispose };
  }

  /** A collated batch -> float32 [B, C, outH, outW] on the device (Note [per-channel normalize]). */
  private toImages(built: BuiltBatch): Tensor {
    const { pixels, size: B, channels: C, height, width } = built;
    const shape = [B, C, height, width];
    if (pixels instanceof Float32Array) {
      if (this.outputSize !== null && (this.outputSize[0] !== height || this.outputSize[1] !== width)) {
        throw new RangeError('options.resize: the dataset\'s transform already makes float images; resize with transforms.resize instead');
      }
      return tensor(pixels, shape, { dtype: 'float32', device: this.device });
    }
    const { mean, std } = this;
    const uniform = mean.every((m) => m === mean[0]) && std.every((s) => s === std[0]);
    const [oh, ow] = this.outputSize ?? [height, width];
    const u8 = tensor(pixels, shape, { dtype: 'uint8', device: this.device });
    let images: Tensor;
    try {
      images = normalizeImages(u8, uniform ? { size: [oh, ow], mean: mean[0], std: std[0] } : { size: [oh, ow] });
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

  /** `for (const batch of loader)` runs the next epoch (0, 1, 2, ...): in-memory data, no workers. */
  [Symbol.iterator](): Iterator<Batch> {
    return this.syncBatches(this.nextEpoch++);
  }

  /** `for await (const batch of loader)` runs the next epoch (0, 1, 2, ...). */
  [Symbol.asyncIterator](): AsyncIterator<Batch> {
    return this.asyncBatches(this.nextEpoch++);
  }
}

/** A rejected worker task: the worker died (or threw) while building batch b. */
function workerError(e: unknown, b: number, epoch: number): Error {
  // The transform's own errors (a crop larger than the image) keep their class and message.
  if (e instanceof RangeError || e instanceof TypeError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new Error(`DataLoader: a worker failed while building batch ${b} of epoch ${epoch}: ${msg}`, { cause: e });
}
