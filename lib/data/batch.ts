// Building one batch on the host: fetch each example (a slice of an in-memory array, or a file
// decoded with sharp), run the per-image transforms, and collate into one CHW buffer. The same
// code runs on the main thread (numWorkers 0) and in the DataLoader's worker threads (worker.ts),
// so a batch is identical whichever builds it.
//
// Note [per-sample randomness]
// Every random transform of example i in epoch e draws from its own stream, seeded from
// (seed, e, i). A batch is then the same for any numWorkers, any prefetch depth and any order in
// which the workers finish, which torch's per-worker seeding does not give.
import * as fs from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import { describe } from '../validate';
import { mulberry32 } from './fashion-mnist';
import { fromSpec, type AnyTransform, type FloatImage, type Image, type TransformSpec } from './transforms';

export type SourceSpec =
  | { kind: 'array'; images: Uint8Array; labels: Int32Array; channels: number; height: number; width: number; layout: 'HWC' | 'CHW' }
  | { kind: 'files'; channels: 1 | 3 };

/** Everything a builder needs besides the task; structured-cloneable, so it can be a worker's workerData. */
export interface BuilderConfig {
  source: SourceSpec;
  /** the per-image transforms (a trailing normalize already split off), or null */
  transform: TransformSpec | null;
  /** normalize into float32 on the host; null leaves the batch uint8 for the device */
  hostNormalize: { mean: number[]; std: number[] } | null;
  seed: number;
  onCorrupt: 'error' | 'skip';
}

export interface BatchTask {
  epoch: number;
  /** index of the batch in its epoch */
  batch: number;
  /** dataset indices of the batch's examples */
  indices: number[];
  /** for a file source: each example's path and label */
  files?: string[];
  labels?: number[];
}

export interface BuiltBatch {
  pixels: Uint8Array | Float32Array;
  labels: Int32Array;
  size: number;
  channels: number;
  height: number;
  width: number;
  /** files skipped as unreadable (onCorrupt 'skip'), with why */
  skipped: { file: string; reason: string }[];
}

/** A failure that names the example; the loader turns it into the right error class. */
export interface BatchFailure {
  failure: { kind: 'decode' | 'size'; file: string | null; message: string };
}

/** `value` if it is a transform made by transforms (its spec is what a worker rebuilds it from). */
export function checkTransform(name: string, value: unknown): AnyTransform {
  if (typeof value !== 'function' || !('spec' in value) || typeof value.spec !== 'object' || value.spec === null) {
    throw new TypeError(`${name}: expected a transform from transforms (e.g. transforms.compose([...])), received ${describe(value)}`);
  }
  return value as AnyTransform;
}

/** Interleaved (HWC) pixels `src` of `c` channels and `hw` positions into planar (CHW) `dst` at `offset`. */
export function hwcToChw(src: ArrayLike<number>, c: number, hw: number, dst: Uint8Array | Float32Array, offset: number): void {
  for (let p = 0; p < hw; p++) for (let k = 0; k < c; k++) dst[offset + k * hw + p] = src[p * c + k];
}

/** An integer hash of (seed, epoch, index) that seeds one example's stream (Note [per-sample randomness]). */
export function sampleSeed(seed: number, epoch: number, index: number): number {
  let h = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ Math.imul(epoch >>> 0, 0xc2b2ae35), 0x27d4eb2f);
  h = Math.imul(h ^ (h >>> 15) ^ Math.imul(index >>> 0, 0x165667b1), 0x85ebca6b);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Decodes an image file to uint8 HWC with 1 or 3 channels (alpha dropped, as PIL's convert). */
export async function decodeImageFile(file: string, channels: 1 | 3): Promise<Image> {
  // A worker thread reads synchronously (it has nothing else to do, and it saves a trip through
  // libuv's pool, ~25% of a small JPEG's decode); the main thread must not block.
  const bytes = isMainThread ? await fs.promises.readFile(file) : fs.readFileSync(file);
  const sharp = loadSharp();
  let img = sharp(bytes, { failOn: 'truncated', sequentialRead: true });
  img = channels === 3 ? img.removeAlpha().toColourspace('srgb') : img.toColourspace('b-w');
  const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== channels) throw new Error(`decoded to ${info.channels} channels, expected ${channels}`);
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), height: info.height, width: info.width, channels };
}

type Sharp = typeof import('sharp');
let sharpModule: Sharp | null = null;
/** sharp loads only when files are decoded: importing the package must not pay for libvips. */
function loadSharp(): Sharp {
  if (sharpModule === null) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    sharpModule = require('sharp') as Sharp;
    // Each file is read once per epoch: libvips' operation cache would only hold memory.
    sharpModule.cache(false);
  }
  return sharpModule;
}

/** Example k of an array source as HWC (what transforms take). */
function arrayImage(src: Extract<SourceSpec, { kind: 'array' }>, i: number): Image {
  const { channels: c, height: h, width: w } = src;
  const size = c * h * w;
  const chw = src.images.subarray(i * size, (i + 1) * size);
  if (src.layout === 'HWC' || c === 1) return { data: chw, height: h, width: w, channels: c };
  const hwc = new Uint8Array(size);
  const hw = h * w;
  for (let p = 0; p < hw; p++) for (let k = 0; k < c; k++) hwc[p * c + k] = chw[k * hw + p];
  return { data: hwc, height: h, width: w, channels: c };
}

/** Collates transformed images into one CHW batch. */
class Collator {
  private pixels: Uint8Array | Float32Array | null = null;
  private readonly labels: number[] = [];
  private first: { file: string | null; height: number; width: number; channels: number } | null = null;
  readonly skipped: { file: string; reason: string }[] = [];

  constructor(private readonly capacity: number, private readonly hostNormalize: BuilderConfig['hostNormalize']) {}

  /** Adds one image at slot labels.length; null when its size differs from the first (BatchFailure). */
  add(img: Image | FloatImage, label: number, file: string | null): BatchFailure | null {
    const { height: h, width: w, channels: c } = img;
    if (this.first === null) {
      this.first = { file, height: h, width: w, channels: c };
      const n = this.capacity * c * h * w;
      this.pixels = img.data instanceof Float32Array || this.hostNormalize ? new Float32Array(n) : new Uint8Array(n);
    } else if (h !== this.first.height || w !== this.first.width || c !== this.first.channels) {
      const f = this.first;
      return {
        failure: {
          kind: 'size', file,
          message: `images of one batch must have one size after the transforms: ${file ?? 'this example'} is ` +
            `${c}x${h}x${w} (CxHxW) but ${f.file ?? 'the first example'} is ${f.channels}x${f.height}x${f.width}; ` +
            'end the transform with a fixed-size step such as T.centerCrop or T.randomResizedCrop',
        },
      };
    }
    const hw = h * w;
    const base = this.labels.length * c * hw;
    const out = this.pixels!;
    const src = img.data;
    const norm = this.hostNormalize;
    if (norm && src instanceof Uint8Array) {
      for (let k = 0; k < c; k++) {
        const m = norm.mean[norm.mean.length === 1 ? 0 : k], s = norm.std[norm.std.length === 1 ? 0 : k];
        const o = base + k * hw;
        for (let p = 0; p < hw; p++) out[o + p] = (src[p * c + k] / 255 - m) / s;
      }
    } else if (c === 1) {
      out.set(src, base);
    } else {
      hwcToChw(src, c, hw, out, base);
    }
    this.labels.push(label);
    return null;
  }

  finish(): BuiltBatch | BatchFailure {
    const size = this.labels.length;
    if (this.first === null) {
      return { failure: { kind: 'decode', file: null, message: 'every image of this batch was skipped as unreadable' } };
    }
    const { height, width, channels } = this.first;
    const n = size * channels * height * width;
    // Skipped files leave the tail unused: hand back only the filled part (no copy).
    const pixels = this.pixels!.length === n ? this.pixels! : this.pixels!.subarray(0, n);
    return { pixels, labels: Int32Array.from(this.labels), size, channels, height, width, skipped: this.skipped };
  }
}

/** Builds batches for one configuration; the transform is rebuilt once from its spec. */
export class BatchBuilder {
  private readonly transform: AnyTransform | null;

  constructor(readonly config: BuilderConfig) {
    this.transform = config.transform === null ? null : fromSpec(config.transform);
  }

  private apply(img: Image, epoch: number, index: number): Image | FloatImage {
    if (this.transform === null) return img;
    return this.transform(img, mulberry32(sampleSeed(this.config.seed, epoch, index)));
  }

  /** An array source's batch, synchronously (the main thread's `for ... of`). */
  buildSync(task: BatchTask): BuiltBatch | BatchFailure {
    const src = this.config.source;
    if (src.kind !== 'array') throw new Error('BatchBuilder.buildSync: a file source decodes asynchronously');
    const col = new Collator(task.indices.length, this.config.hostNormalize);
    for (const i of task.indices) {
      const bad = col.add(this.apply(arrayImage(src, i), task.epoch, i), src.labels[i], null);
      if (bad) return bad;
    }
    return col.finish();
  }

  async build(task: BatchTask): Promise<BuiltBatch | BatchFailure> {
    const src = this.config.source;
    if (src.kind === 'array') return this.buildSync(task);
    const files = task.files!, labels = task.labels!;
    const col = new Collator(files.length, this.config.hostNormalize);
    // A few decodes in flight: sharp runs them on libuv's pool while this thread transforms.
    const window = 4;
    const pending: Promise<Image | Error>[] = [];
    const start = (k: number): void => {
      pending[k] = decodeImageFile(files[k], src.channels).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
    };
    for (let k = 0; k < Math.min(window, files.length); k++) start(k);
    for (let k = 0; k < files.length; k++) {
      const img = await pending[k];
      if (k + window < files.length) start(k + window);
      pending[k] = undefined as never;
      if (img instanceof Error) {
        const reason = img.message.split('\n')[0];
        if (this.config.onCorrupt === 'skip') {
          col.skipped.push({ file: files[k], reason });
          continue;
        }
        return { failure: { kind: 'decode', file: files[k], message: `cannot read image ${files[k]}: ${reason}` } };
      }
      let out: Image | FloatImage;
      try {
        out = this.apply(img, task.epoch, task.indices[k]);
      } catch (e) {
        // Keep the error's class (a crop larger than the image is a RangeError); name the file.
        if (e instanceof Error) e.message = `${files[k]}: ${e.message}`;
        throw e;
      }
      const bad = col.add(out, labels[k], files[k]);
      if (bad) return bad;
    }
    return col.finish();
  }
}
