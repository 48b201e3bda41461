// Per-image transforms with torchvision.transforms.v2's names, defaults and numerics, on uint8
// HWC images as sharp decodes them: resize, centerCrop, randomCrop, randomResizedCrop,
// randomHorizontalFlip, then normalize (ToImage + ToDtype(float32, scale=True) + Normalize).
//
// Note [transform specs]
// Every transform carries a plain, frozen `spec`. A DataLoader sends the spec to its worker threads
// (structured clone) and rebuilds the transform there with fromSpec, which validates it again.
// Randomness comes only from the `random` argument (default Math.random), so one seeded Random
// gives the same output in any thread. Transforms and the functional ops never modify their
// input, and return it as it is when there is nothing to do (a resize to the same size, a flip not
// drawn, a crop the size of the image), as torchvision returns the same tensor.
//
// Note [resampling numerics]
// Bilinear and nearest follow torch's CPU kernels for float input: separable passes, horizontal
// first (as _upsample_bilinear2d_aa; upsample_bilinear2d's 2-D form sums in the same order), with
// torch's index/weight tables (area_pixel_compute_source_index, align_corners=False; the
// antialias triangle filter's support scales with the factor when downsampling; nearest is
// floor(dst * float32(in/out))). Weights and sums are double here (float32 in torch), the row
// between the passes float32 as in torch. uint8 input is resampled as float and rounded half to even with clamping, which is
// torchvision's u8 -> float32 -> interpolate -> round_() path (CUDA, CPUs without AVX2). On
// AVX2/AVX-512 CPUs torchvision resizes uint8 bilinear natively in fixed point with a uint8
// intermediate row, which can differ by 1; test/42 measures both against the fixture.
import { checkBoolean, checkFinite, checkInteger, checkOneOf, checkOptions, invalidRange, invalidType } from '../validate';

/** uint8 image, HWC interleaved (r g b r g b ...), as sharp decodes it */
export interface Image { data: Uint8Array; height: number; width: number; channels: number }
/** float image after normalize, also HWC */
export interface FloatImage { data: Float32Array; height: number; width: number; channels: number }
/** uniform in [0, 1); the DataLoader passes a per-sample seeded one (mulberry32 from ./fashion-mnist) */
export type Random = () => number;
export type Interpolation = 'bilinear' | 'nearest';
export type PaddingMode = 'constant' | 'edge' | 'reflect' | 'symmetric';
/** plain, structured-cloneable description, sent to worker threads and rebuilt there with fromSpec */
export type TransformSpec =
  | { name: 'resize'; size: number | [number, number]; interpolation: Interpolation; antialias: boolean; maxSize: number | null }
  | { name: 'centerCrop'; size: [number, number] }
  | { name: 'randomCrop'; size: [number, number]; padding: [number, number, number, number] | null; padIfNeeded: boolean; fill: number; paddingMode: PaddingMode }
  | { name: 'randomResizedCrop'; size: [number, number]; scale: [number, number]; ratio: [number, number]; interpolation: Interpolation; antialias: boolean }
  | { name: 'randomHorizontalFlip'; p: number }
  | { name: 'normalize'; mean: number[]; std: number[] }
  | { name: 'compose'; transforms: TransformSpec[] };
/** A uint8 -> uint8 step. `random` defaults to Math.random. */
export interface Transform { (image: Image, random?: Random): Image; readonly spec: TransformSpec }
export interface NormalizeTransform { (image: Image): FloatImage; readonly spec: Extract<TransformSpec, { name: 'normalize' }> }
export interface Compose { (image: Image, random?: Random): Image | FloatImage; readonly spec: Extract<TransformSpec, { name: 'compose' }> }
export type AnyTransform = Transform | NormalizeTransform | Compose;

export interface ResizeOptions {
  /** default 'bilinear' */
  interpolation?: Interpolation;
  /** triangle-filter antialiasing when bilinear downsamples; default true (torchvision >= 0.17) */
  antialias?: boolean;
}

export interface ResizeTransformOptions extends ResizeOptions {
  /** with an integer size only: the longer edge is capped at maxSize (> size); default none */
  maxSize?: number;
}

export interface RandomCropOptions {
  /** applied before cropping: n (all sides), [left/right, top/bottom] or [left, top, right, bottom]; default none */
  padding?: number | [number, number] | [number, number, number, number];
  /** pad a side shorter than the crop by the difference on both ends (as torchvision); default false */
  padIfNeeded?: boolean;
  /** value of 'constant' padding, 0..255; default 0 */
  fill?: number;
  /** default 'constant' */
  paddingMode?: PaddingMode;
}

export interface RandomResizedCropOptions extends ResizeOptions {
  /** range of the crop's area as a fraction of the image's; default [0.08, 1] */
  scale?: [number, number];
  /** range of the crop's width/height, drawn log-uniformly; default [3/4, 4/3] */
  ratio?: [number, number];
}

export interface Box { top: number; left: number; height: number; width: number }

export const IMAGENET_MEAN: readonly number[] = Object.freeze([0.485, 0.456, 0.406]);
export const IMAGENET_STD: readonly number[] = Object.freeze([0.229, 0.224, 0.225]);
export const CIFAR10_MEAN: readonly number[] = Object.freeze([0.4914, 0.4822, 0.4465]);
export const CIFAR10_STD: readonly number[] = Object.freeze([0.2470, 0.2435, 0.2616]);

type AnyImage = Image | FloatImage;
type Pixels = Uint8Array | Float32Array;
/** Names an argument in errors: `resize options.maxSize` for the builders, `spec.maxSize` for fromSpec. */
type Namer = (field: string) => string;

const INTERPOLATIONS = ['bilinear', 'nearest'] as const;
const PADDING_MODES = ['constant', 'edge', 'reflect', 'symmetric'] as const;
/** Largest size, offset or padding accepted: keeps index tables small and every product exact. */
const MAX_EDGE = 1 << 16;

// ---------------------------------------------------------------------------------------------
// Argument checks

function checkImage<F extends boolean>(name: string, image: unknown, float: F): F extends true ? AnyImage : Image {
  const expected = float ? 'an image { data: Uint8Array or Float32Array, height, width, channels }' : 'an image { data: Uint8Array, height, width, channels }';
  if (image === null || typeof image !== 'object') throw invalidType(name, expected, image);
  const { data, height, width, channels } = image as Record<string, unknown>;
  if (!(data instanceof Uint8Array || (float && data instanceof Float32Array))) {
    throw invalidType(`${name}.data`, float ? 'a Uint8Array or Float32Array' : 'a Uint8Array', data);
  }
  const h = checkInteger(`${name}.height`, height, 1);
  const w = checkInteger(`${name}.width`, width, 1);
  const c = checkInteger(`${name}.channels`, channels, 1);
  if (data.length !== h * w * c) {
    throw invalidRange(`${name}.data`, `height*width*channels = ${h * w * c} values`, `${data.length} values`);
  }
  return image as F extends true ? AnyImage : Image;
}

function checkEdge(name: string, value: unknown): number {
  return checkInteger(name, value, 1, MAX_EDGE);
}

function checkOffset(name: string, value: unknown): number {
  return checkInteger(name, value, -MAX_EDGE, MAX_EDGE);
}

/** An int (a square) or [height, width], as torchvision's _setup_size. */
function checkSize(name: string, value: unknown): [number, number] {
  if (typeof value === 'number') return [checkEdge(name, value), value];
  if (!Array.isArray(value) || value.length !== 2) throw invalidType(name, 'a positive integer or [height, width]', value);
  return [checkEdge(`${name}[0]`, value[0]), checkEdge(`${name}[1]`, value[1])];
}

/** torchvision's padding forms, as [left, top, right, bottom]. */
function checkPadding(name: string, value: unknown): [number, number, number, number] {
  const side = (i: number, v: unknown): number => checkInteger(`${name}[${i}]`, v, 0, MAX_EDGE);
  if (typeof value === 'number') {
    const p = checkInteger(name, value, 0, MAX_EDGE);
    return [p, p, p, p];
  }
  if (Array.isArray(value) && value.length === 2) {
    const [lr, tb] = [side(0, value[0]), side(1, value[1])];
    return [lr, tb, lr, tb];
  }
  if (Array.isArray(value) && value.length === 4) return [side(0, value[0]), side(1, value[1]), side(2, value[2]), side(3, value[3])];
  throw invalidType(name, 'an integer, [left/right, top/bottom] or [left, top, right, bottom]', value);
}

/** [min, max] of finite numbers with min <= max, each > 0 or >= 0. */
function checkRange(name: string, value: unknown, positive: boolean): [number, number] {
  if (!Array.isArray(value) || value.length !== 2) throw invalidType(name, '[min, max]', value);
  const what = positive ? 'a positive finite number' : 'a finite number >= 0';
  const one = (i: number): number => {
    const v = checkFinite(`${name}[${i}]`, value[i], 0, Number.MAX_VALUE, what);
    if (positive && v === 0) throw invalidRange(`${name}[${i}]`, what, v);
    return v;
  };
  const r: [number, number] = [one(0), one(1)];
  if (r[0] > r[1]) throw invalidRange(name, '[min, max] with min <= max', value);
  return r;
}

/** One or more finite numbers (one per channel, or one for all). */
function checkPerChannel(name: string, value: unknown, nonzero: boolean): number[] {
  const what = nonzero ? 'a nonzero finite number' : 'a finite number';
  const one = (n: string, v: unknown): number => {
    const x = checkFinite(n, v, -Number.MAX_VALUE, Number.MAX_VALUE, what);
    if (nonzero && x === 0) throw invalidRange(n, what, x);
    return x;
  };
  if (typeof value === 'number') return [one(name, value)];
  if (!Array.isArray(value) || value.length === 0) throw invalidType(name, 'a number or a non-empty array of numbers (one per channel)', value);
  return value.map((v, k) => one(`${name}[${k}]`, v));
}

function checkRandom(name: string, random: unknown): Random {
  if (typeof random !== 'function') throw invalidType(name, 'a function returning numbers in [0, 1)', random);
  return random as Random;
}

/** One draw; a value outside [0, 1) would put a crop outside the image. */
function draw(random: Random): number {
  const u = random();
  if (!(u >= 0 && u < 1)) throw invalidRange('random()', 'a number in [0, 1)', u);
  return u;
}

/** Python's round(): halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// ---------------------------------------------------------------------------------------------
// Kernels. Every geometric op without resampling is a remap through one row and one column table.

function alloc(like: Pixels, n: number): Pixels {
  return like instanceof Float32Array ? new Float32Array(n) : new Uint8Array(n);
}

function imageOf<T extends AnyImage>(data: Pixels, height: number, width: number, channels: number): T {
  return { data, height, width, channels } as T;
}

/** Where index i of a padded axis (in image coordinates) reads from, as torch's pad modes; -1 is fill. */
function sourceIndex(i: number, n: number, mode: PaddingMode): number {
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case 'constant': return -1;
    case 'edge': return i < 0 ? 0 : n - 1;
    case 'reflect': return i < 0 ? -i : 2 * (n - 1) - i;
    case 'symmetric': return i < 0 ? -i - 1 : 2 * n - 1 - i;
  }
}

function axis(start: number, length: number, n: number, mode: PaddingMode): Int32Array {
  const out = new Int32Array(length);
  for (let i = 0; i < length; i++) out[i] = sourceIndex(start + i, n, mode);
  return out;
}

/** out[y][x] = image[rows[y]][cols[x]], or `fill` where either index is -1. */
function remap<T extends AnyImage>(image: T, rows: Int32Array, cols: Int32Array, fill: number): T {
  const { data, width, channels: c } = image;
  const oh = rows.length;
  const ow = cols.length;
  const out = alloc(data, oh * ow * c);
  if (fill !== 0) out.fill(fill);
  for (let y = 0; y < oh; y++) {
    const r = rows[y];
    if (r < 0) continue;
    const row = r * width * c;
    for (let x = 0, o = y * ow * c; x < ow; x++, o += c) {
      const col = cols[x];
      if (col < 0) continue;
      for (let k = 0, s = row + col * c; k < c; k++) out[o + k] = data[s + k];
    }
  }
  return imageOf<T>(out, oh, ow, c);
}

/** reflect and symmetric read each padded pixel from one reflection, as torch requires. */
function checkPadFits(name: string, padding: readonly number[], height: number, width: number, mode: PaddingMode): void {
  if (mode !== 'reflect' && mode !== 'symmetric') return;
  const [l, t, r, b] = padding;
  const slack = mode === 'reflect' ? 1 : 0;
  if (Math.max(l, r) > width - slack || Math.max(t, b) > height - slack) {
    const rel = mode === 'reflect' ? 'less than' : 'at most';
    throw invalidRange(name, `padding ${rel} the image's width ${width} (left, right) and height ${height} (top, bottom) in "${mode}" mode`, [l, t, r, b]);
  }
}

/** Per output index: the first source index, how many, and their weights, as torch's tables. */
interface Taps { start: Int32Array; count: Int32Array; weights: Float64Array; stride: number }

function linearTaps(inSize: number, outSize: number, antialias: boolean): Taps {
  const scale = inSize / outSize;
  // antialias: the triangle filter widened by the factor when downsampling (_compute_weights_aa)
  const wide = antialias && scale >= 1;
  const support = wide ? scale : 1;
  const invScale = wide ? 1 / scale : 1;
  const stride = antialias ? Math.ceil(support) * 2 + 1 : 2;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * stride);
  for (let i = 0; i < outSize; i++) {
    const center = scale * (i + 0.5);
    const k = i * stride;
    if (antialias) {
      const lo = Math.max(Math.trunc(center - support + 0.5), 0);
      const n = Math.min(Math.max(Math.min(Math.trunc(center + support + 0.5), inSize) - lo, 0), stride);
      let total = 0;
      for (let j = 0; j < n; j++) {
        const w = Math.max(1 - Math.abs((j + lo - center + 0.5) * invScale), 0);
        weights[k + j] = w;
        total += w;
      }
      if (total !== 0) for (let j = 0; j < n; j++) weights[k + j] /= total;
      start[i] = lo;
      count[i] = n;
    } else {
      // area_pixel_compute_source_index (align_corners=False), then guard_index_and_lambda
      const src = Math.max(center - 0.5, 0);
      const i0 = Math.min(Math.floor(src), inSize - 1);
      const lambda = Math.min(src - i0, 1);
      start[i] = i0;
      if (i0 < inSize - 1) {
        count[i] = 2;
        weights[k] = 1 - lambda;
        weights[k + 1] = lambda;
      } else {
        count[i] = 1;
        weights[k] = 1;
      }
    }
  }
  return { start, count, weights, stride };
}

/** torch 'nearest': floor(dst * scale) with a float32 scale. */
function nearestIndex(start: number, inSize: number, outSize: number): Int32Array {
  const out = new Int32Array(outSize);
  const scale = Math.fround(inSize / outSize);
  for (let i = 0; i < outSize; i++) {
    const s = inSize === outSize ? i : outSize === 2 * inSize ? i >> 1 : Math.min(Math.floor(Math.fround(i * scale)), inSize - 1);
    out[i] = start + s;
  }
  return out;
}

/** Resamples `rows` rows along x: src rows start at `offset`, `stride` values apart. */
function horizontalPass(src: ArrayLike<number>, offset: number, stride: number, rows: number, c: number, taps: Taps, dst: Float32Array | Uint8ClampedArray): void {
  const { start, count, weights } = taps;
  const ow = start.length;
  if (c === 3) {
    // RGB unrolled (the loader's common case, ~2x faster); the same sums in the same order.
    for (let y = 0, o = 0; y < rows; y++) {
      const row = offset + y * stride;
      for (let x = 0; x < ow; x++, o += 3) {
        const n = count[x];
        const k = x * taps.stride;
        let s0 = 0, s1 = 0, s2 = 0;
        for (let j = 0, p = row + start[x] * 3; j < n; j++, p += 3) {
          const w = weights[k + j];
          s0 += w * src[p];
          s1 += w * src[p + 1];
          s2 += w * src[p + 2];
        }
        dst[o] = s0;
        dst[o + 1] = s1;
        dst[o + 2] = s2;
      }
    }
    return;
  }
  for (let y = 0, o = 0; y < rows; y++) {
    const row = offset + y * stride;
    for (let x = 0; x < ow; x++) {
      const base = row + start[x] * c;
      const n = count[x];
      const k = x * taps.stride;
      for (let ch = 0; ch < c; ch++, o++) {
        let sum = 0;
        for (let j = 0, p = base + ch; j < n; j++, p += c) sum += weights[k + j] * src[p];
        dst[o] = sum;
      }
    }
  }
}

/** Resamples along y, a row of `rowLength` values at a time. */
function verticalPass(src: ArrayLike<number>, offset: number, stride: number, rowLength: number, taps: Taps, dst: Float32Array | Uint8ClampedArray): void {
  const { start, count, weights } = taps;
  const acc = new Float64Array(rowLength);
  for (let y = 0; y < start.length; y++) {
    acc.fill(0);
    for (let j = 0; j < count[y]; j++) {
      const w = weights[y * taps.stride + j];
      const row = offset + (start[y] + j) * stride;
      for (let e = 0; e < rowLength; e++) acc[e] += w * src[row + e];
    }
    dst.set(acc, y * rowLength);
  }
}

/** Resizes the box (inside the image) to oh x ow. */
function resampleBox<T extends AnyImage>(image: T, box: Box, oh: number, ow: number, interpolation: Interpolation, antialias: boolean): T {
  const { top, left, height: h, width: w } = box;
  const c = image.channels;
  if (interpolation === 'nearest') return remap(image, nearestIndex(top, h, oh), nearestIndex(left, w, ow), 0);
  if (oh === h && ow === w) return remap(image, axis(top, h, image.height, 'constant'), axis(left, w, image.width, 'constant'), 0);
  const out = alloc(image.data, oh * ow * c);
  // A Uint8ClampedArray stores a number rounded half to even and clamped to 0..255: torch's
  // round_() and then the uint8 cast.
  const dst = out instanceof Uint8Array ? new Uint8ClampedArray(out.buffer, out.byteOffset, out.length) : out;
  let src: ArrayLike<number> = image.data;
  let offset = (top * image.width + left) * c;
  let stride = image.width * c;
  if (ow !== w) {
    const mid = oh === h ? dst : new Float32Array(h * ow * c);
    horizontalPass(src, offset, stride, h, c, linearTaps(w, ow, antialias), mid);
    [src, offset, stride] = [mid, 0, ow * c];
  }
  if (oh !== h) verticalPass(src, offset, stride, ow * c, linearTaps(h, oh, antialias), dst);
  return imageOf<T>(out, oh, ow, c);
}

/** torchvision's crop: the box may leave the image, where it reads 0. */
function cropUnchecked<T extends AnyImage>(image: T, top: number, left: number, height: number, width: number): T {
  return remap(image, axis(top, height, image.height, 'constant'), axis(left, width, image.width, 'constant'), 0);
}

function resizedCropUnchecked<T extends AnyImage>(image: T, box: Box, oh: number, ow: number, interpolation: Interpolation, antialias: boolean): T {
  const inside = box.top >= 0 && box.left >= 0 && box.top + box.height <= image.height && box.left + box.width <= image.width;
  if (inside) return resampleBox(image, box, oh, ow, interpolation, antialias);
  const cropped = cropUnchecked(image, box.top, box.left, box.height, box.width);
  return resampleBox(cropped, { top: 0, left: 0, height: box.height, width: box.width }, oh, ow, interpolation, antialias);
}

function resizeUnchecked<T extends AnyImage>(image: T, oh: number, ow: number, interpolation: Interpolation, antialias: boolean): T {
  if (oh === image.height && ow === image.width) return image;
  return resampleBox(image, { top: 0, left: 0, height: image.height, width: image.width }, oh, ow, interpolation, antialias);
}

/** center_crop's box: centred with Python's round, or padded with zeros where the crop is larger. */
function centerCropUnchecked<T extends AnyImage>(image: T, height: number, width: number): T {
  const anchor = (n: number, size: number) => size > n ? -((size - n) >> 1) : roundHalfEven((n - size) / 2);
  return cropUnchecked(image, anchor(image.height, height), anchor(image.width, width), height, width);
}

/** ToDtype(float32, scale=True) then Normalize, in float32 as torch: (v * f32(1/255) - mean) / std. */
function normalizeTable(mean: readonly number[], std: readonly number[], name: string): Float32Array {
  const n = Math.max(mean.length, std.length);
  if ((mean.length !== 1 && mean.length !== n) || (std.length !== 1 && std.length !== n)) {
    throw invalidRange(name, 'mean and std of the same length (or one of them a single number)', `lengths ${mean.length} and ${std.length}`);
  }
  const table = new Float32Array(n * 256);
  const inv255 = Math.fround(1 / 255);
  for (let k = 0; k < n; k++) {
    const m = Math.fround(mean[mean.length === 1 ? 0 : k]);
    const s = Math.fround(std[std.length === 1 ? 0 : k]);
    for (let v = 0; v < 256; v++) table[k * 256 + v] = Math.fround(Math.fround(v * inv255) - m) / s;
  }
  return table;
}

function normalizeWith(name: string, image: Image, table: Float32Array): FloatImage {
  const { data, height, width, channels: c } = image;
  const n = table.length / 256;
  if (n !== 1 && n !== c) throw invalidRange(`${name}.channels`, `${n} channels (one per mean/std value)`, c);
  const out = new Float32Array(data.length);
  if (n === 1) {
    for (let i = 0; i < data.length; i++) out[i] = table[data[i]];
  } else {
    for (let i = 0; i < data.length; i += c) for (let k = 0; k < c; k++) out[i + k] = table[k * 256 + data[i + k]];
  }
  return { data: out, height, width, channels: c };
}

// ---------------------------------------------------------------------------------------------
// functional: torchvision.transforms.v2.functional's image kernels, on uint8 or float32 HWC images

function hflip<T extends AnyImage>(image: T): T {
  checkImage('hflip image', image, true);
  const cols = new Int32Array(image.width);
  for (let x = 0; x < cols.length; x++) cols[x] = image.width - 1 - x;
  return remap(image, axis(0, image.height, image.height, 'constant'), cols, 0);
}

function crop<T extends AnyImage>(image: T, top: number, left: number, height: number, width: number): T {
  checkImage('crop image', image, true);
  return cropUnchecked(image, checkOffset('crop top', top), checkOffset('crop left', left), checkEdge('crop height', height), checkEdge('crop width', width));
}

function pad<T extends AnyImage>(image: T, padding: number | readonly number[], fill = 0, mode: PaddingMode = 'constant'): T {
  checkImage('pad image', image, true);
  const [l, t, r, b] = checkPadding('pad padding', padding);
  const m = checkOneOf('pad mode', mode, PADDING_MODES);
  const f = image.data instanceof Uint8Array ? checkInteger('pad fill', fill, 0, 255) : checkFinite('pad fill', fill);
  checkPadFits('pad padding', [l, t, r, b], image.height, image.width, m);
  return remap(image, axis(-t, image.height + t + b, image.height, m), axis(-l, image.width + l + r, image.width, m), f);
}

function resizeImage<T extends AnyImage>(image: T, size: readonly [number, number], options?: ResizeOptions): T {
  checkImage('resize image', image, true);
  const [oh, ow] = checkSize('resize size', size);
  const o = checkOptions<ResizeOptions>('resize options', options, ['interpolation', 'antialias']);
  const interpolation = checkOneOf('resize options.interpolation', o.interpolation ?? 'bilinear', INTERPOLATIONS);
  return resizeUnchecked(image, oh, ow, interpolation, checkBoolean('resize options.antialias', o.antialias ?? true));
}

function resizedCrop<T extends AnyImage>(image: T, top: number, left: number, height: number, width: number, size: readonly [number, number], options?: ResizeOptions): T {
  checkImage('resizedCrop image', image, true);
  const box = { top: checkOffset('resizedCrop top', top), left: checkOffset('resizedCrop left', left), height: checkEdge('resizedCrop height', height), width: checkEdge('resizedCrop width', width) };
  const [oh, ow] = checkSize('resizedCrop size', size);
  const o = checkOptions<ResizeOptions>('resizedCrop options', options, ['interpolation', 'antialias']);
  const interpolation = checkOneOf('resizedCrop options.interpolation', o.interpolation ?? 'bilinear', INTERPOLATIONS);
  return resizedCropUnchecked(image, box, oh, ow, interpolation, checkBoolean('resizedCrop options.antialias', o.antialias ?? true));
}

function centerCropImage<T extends AnyImage>(image: T, size: number | readonly [number, number]): T {
  checkImage('centerCrop image', image, true);
  const [h, w] = checkSize('centerCrop size', size);
  return centerCropUnchecked(image, h, w);
}

function normalizeImage(image: Image, mean: number | readonly number[], std: number | readonly number[]): FloatImage {
  checkImage('normalize image', image, false);
  const table = normalizeTable(checkPerChannel('normalize mean', mean, false), checkPerChannel('normalize std', std, true), 'normalize mean/std');
  return normalizeWith('normalize image', image, table);
}

/** The image kernels behind the transforms, with torchvision.transforms.v2.functional's names and
 * arguments ([left, top, right, bottom] padding, [height, width] sizes). All but normalize take
 * uint8 or float32 images and return the same kind; float32 is resampled without rounding. */
export const functional = Object.freeze({
  hflip,
  crop,
  pad,
  resize: resizeImage,
  resizedCrop,
  centerCrop: centerCropImage,
  normalize: normalizeImage,
});

// ---------------------------------------------------------------------------------------------
// randomResizedCrop's box

function rrcParams(height: number, width: number, scale: readonly number[], ratio: readonly number[], random: Random): Box {
  const area = height * width;
  const logLo = Math.log(ratio[0]);
  const logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    // torch's uniform_(a, b) is u * (b - a) + a
    const targetArea = area * (draw(random) * (scale[1] - scale[0]) + scale[0]);
    const aspect = Math.exp(draw(random) * (logHi - logLo) + logLo);
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = Math.floor(draw(random) * (height - h + 1));
      const left = Math.floor(draw(random) * (width - w + 1));
      return { top, left, height: h, width: w };
    }
  }
  // The central crop, its ratio clamped to the range. An edge rounded to 0 (a very thin image)
  // becomes 1: torchvision's box would be empty and its resize would fail.
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < ratio[0]) h = Math.max(roundHalfEven(w / ratio[0]), 1);
  else if (inRatio > ratio[1]) w = Math.max(roundHalfEven(h * ratio[1]), 1);
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

/** randomResizedCrop's box, exactly torchvision's RandomResizedCrop.make_params (10 tries, then
 * the ratio-clamped central fallback), in double precision, drawing from `random`: per try two
 * draws (area, log-ratio), then two (top, left) on success; randint(0, n) is floor(u * n). The box
 * is always inside the image and at least 1x1. */
export function randomResizedCropParams(height: number, width: number, scale: [number, number], ratio: [number, number], random: Random): Box {
  const name = 'randomResizedCropParams';
  return rrcParams(checkEdge(`${name} height`, height), checkEdge(`${name} width`, width), checkRange(`${name} scale`, scale, false),
    checkRange(`${name} ratio`, ratio, true), checkRandom(`${name} random`, random));
}

// ---------------------------------------------------------------------------------------------
// Transforms

const made = new WeakSet<object>();
const composeSteps = new WeakMap<object, readonly AnyTransform[]>();

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

function define<F extends (...args: never[]) => unknown, S extends TransformSpec>(fn: F, spec: S): F & { readonly spec: S } {
  Object.defineProperty(fn, 'spec', { value: deepFreeze(spec), enumerable: true });
  made.add(fn);
  return fn as F & { readonly spec: S };
}

const builderNames = (fn: string): Namer => (field) => ['size', 'p', 'mean', 'std'].includes(field) ? `${fn} ${field}` : `${fn} options.${field}`;

function makeResize(size: unknown, o: { interpolation?: unknown; antialias?: unknown; maxSize?: unknown }, at: Namer): Transform {
  const edge = typeof size === 'number' ? checkEdge(at('size'), size) : null;
  const pair = edge === null ? checkSize(at('size'), size) : null;
  const interpolation = checkOneOf(at('interpolation'), o.interpolation ?? 'bilinear', INTERPOLATIONS);
  const antialias = checkBoolean(at('antialias'), o.antialias ?? true);
  let maxSize: number | null = null;
  if (o.maxSize !== undefined && o.maxSize !== null) {
    if (edge === null) throw new RangeError(`${at('maxSize')} is only allowed with an integer size (the shorter edge), not [height, width]`);
    maxSize = checkInteger(at('maxSize'), o.maxSize, edge + 1, MAX_EDGE);
  }
  const name = 'resize image';
  return define((image: Image) => {
    checkImage(name, image, false);
    let [oh, ow] = pair ?? [0, 0];
    if (edge !== null) {
      // _compute_resized_output_size: the shorter edge becomes `size`, the longer int(size * long / short)
      const { height: h, width: w } = image;
      const [short, long] = w <= h ? [w, h] : [h, w];
      let newShort = edge;
      let newLong = Math.trunc((edge * long) / short);
      if (maxSize !== null && newLong > maxSize) {
        newShort = Math.trunc((maxSize * newShort) / newLong);
        newLong = maxSize;
      }
      if (newShort === 0) throw new RangeError(`${name}: a ${h}x${w} image has no shorter edge left once its longer edge is capped at maxSize ${maxSize}`);
      [oh, ow] = w <= h ? [newLong, newShort] : [newShort, newLong];
    }
    return resizeUnchecked(image, oh, ow, interpolation, antialias);
  }, { name: 'resize', size: pair ?? (edge as number), interpolation, antialias, maxSize });
}

function makeCenterCrop(size: unknown, at: Namer): Transform {
  const [h, w] = checkSize(at('size'), size);
  const name = 'centerCrop image';
  return define((image: Image) => centerCropUnchecked(checkImage(name, image, false), h, w), { name: 'centerCrop', size: [h, w] });
}

function makeRandomCrop(size: unknown, o: { padding?: unknown; padIfNeeded?: unknown; fill?: unknown; paddingMode?: unknown }, at: Namer): Transform {
  const [ch, cw] = checkSize(at('size'), size);
  const padding = o.padding === undefined || o.padding === null ? null : checkPadding(at('padding'), o.padding);
  const padIfNeeded = checkBoolean(at('padIfNeeded'), o.padIfNeeded ?? false);
  const fill = checkInteger(at('fill'), o.fill ?? 0, 0, 255);
  const mode = checkOneOf(at('paddingMode'), o.paddingMode ?? 'constant', PADDING_MODES);
  const call = (image: Image, random: Random = Math.random): Image => {
    const name = 'randomCrop image';
    checkImage(name, image, false);
    checkRandom('randomCrop random', random);
    let [l, t, r, b] = padding ?? [0, 0, 0, 0];
    let ph = image.height + t + b;
    let pw = image.width + l + r;
    if (padIfNeeded && ph < ch) {
      const d = ch - ph;
      [t, b, ph] = [t + d, b + d, ph + 2 * d];
    }
    if (padIfNeeded && pw < cw) {
      const d = cw - pw;
      [l, r, pw] = [l + d, r + d, pw + 2 * d];
    }
    if (ph < ch || pw < cw) {
      throw new RangeError(`${name}: Required crop size (${ch}, ${cw}) is larger than ${padding ? 'padded ' : ''}input image size (${ph}, ${pw})`);
    }
    const top = ph > ch ? Math.floor(draw(random) * (ph - ch + 1)) : 0;
    const left = pw > cw ? Math.floor(draw(random) * (pw - cw + 1)) : 0;
    if (l + t + r + b === 0 && ph === ch && pw === cw) return image;
    checkPadFits(padIfNeeded ? 'randomCrop padding (with padIfNeeded)' : 'randomCrop padding', [l, t, r, b], image.height, image.width, mode);
    // pad, then crop, as one remap: the box's origin in image coordinates is (top - t, left - l)
    return remap(image, axis(top - t, ch, image.height, mode), axis(left - l, cw, image.width, mode), fill);
  };
  return define(call, { name: 'randomCrop', size: [ch, cw], padding, padIfNeeded, fill, paddingMode: mode });
}

function makeRandomResizedCrop(size: unknown, o: { scale?: unknown; ratio?: unknown; interpolation?: unknown; antialias?: unknown }, at: Namer): Transform {
  const [oh, ow] = checkSize(at('size'), size);
  const scale = checkRange(at('scale'), o.scale ?? [0.08, 1], false);
  const ratio = checkRange(at('ratio'), o.ratio ?? [3 / 4, 4 / 3], true);
  const interpolation = checkOneOf(at('interpolation'), o.interpolation ?? 'bilinear', INTERPOLATIONS);
  const antialias = checkBoolean(at('antialias'), o.antialias ?? true);
  const call = (image: Image, random: Random = Math.random): Image => {
    checkImage('randomResizedCrop image', image, false);
    const box = rrcParams(image.height, image.width, scale, ratio, checkRandom('randomResizedCrop random', random));
    return resampleBox(image, box, oh, ow, interpolation, antialias);
  };
  return define(call, { name: 'randomResizedCrop', size: [oh, ow], scale, ratio, interpolation, antialias });
}

function makeRandomHorizontalFlip(p: unknown, at: Namer): Transform {
  const prob = checkFinite(at('p'), p, 0, 1);
  // torchvision: `if torch.rand(1) >= p: return inputs`, so one draw per call, flip when u < p
  const call = (image: Image, random: Random = Math.random): Image => {
    checkImage('randomHorizontalFlip image', image, false);
    return draw(checkRandom('randomHorizontalFlip random', random)) < prob ? hflip(image) : image;
  };
  return define(call, { name: 'randomHorizontalFlip', p: prob });
}

function makeNormalize(mean: unknown, std: unknown, at: Namer): NormalizeTransform {
  const m = checkPerChannel(at('mean'), mean, false);
  const s = checkPerChannel(at('std'), std, true);
  const table = normalizeTable(m, s, `${at('mean')}/${at('std')}`);
  const name = 'normalize image';
  return define((image: Image) => normalizeWith(name, checkImage(name, image, false), table), { name: 'normalize', mean: m, std: s });
}

function makeCompose(list: unknown, name: string): Compose {
  if (!Array.isArray(list)) throw invalidType(name, 'an array of transforms', list);
  if (list.length === 0) throw invalidRange(name, 'at least one transform', 'an empty array');
  const steps: AnyTransform[] = [];
  list.forEach((t: unknown, i) => {
    if (typeof t !== 'function' || !made.has(t)) throw invalidType(`${name}[${i}]`, 'a transform made by transforms.*', t);
    steps.push(...(composeSteps.get(t) ?? [t as AnyTransform]));
  });
  const k = steps.findIndex((t) => t.spec.name === 'normalize');
  if (k !== -1 && k !== steps.length - 1) {
    throw new TypeError(`${name}: normalize must be the last step, but it is step ${k + 1} of ${steps.length}: ` +
      'every step before it takes and returns a uint8 image, and normalize returns float32');
  }
  const call = (image: Image, random?: Random): Image | FloatImage => {
    let x: Image | FloatImage = image;
    for (const t of steps) x = (t as Transform)(x as Image, random);
    return x;
  };
  const fn = define(call, { name: 'compose', transforms: steps.map((t) => t.spec) });
  composeSteps.set(fn, steps);
  return fn;
}

/** torchvision's Resize: an int makes the shorter edge that long (the longer is
 * int(size * long / short), capped by maxSize); [height, width] is the exact size. */
export function resize(size: number | [number, number], options?: ResizeTransformOptions): Transform {
  return makeResize(size, checkOptions<ResizeTransformOptions>('resize options', options, ['interpolation', 'antialias', 'maxSize']), builderNames('resize'));
}

/** torchvision's CenterCrop: padded with zeros where the crop is larger than the image. */
export function centerCrop(size: number | [number, number]): Transform {
  return makeCenterCrop(size, builderNames('centerCrop'));
}

/** torchvision's RandomCrop: one draw for the top and one for the left offset (none along an
 * axis the crop fills); throws when the (padded) image is smaller than the crop. */
export function randomCrop(size: number | [number, number], options?: RandomCropOptions): Transform {
  const o = checkOptions<RandomCropOptions>('randomCrop options', options, ['padding', 'padIfNeeded', 'fill', 'paddingMode']);
  return makeRandomCrop(size, o, builderNames('randomCrop'));
}

/** torchvision's RandomResizedCrop: a box from randomResizedCropParams, resized to `size`. */
export function randomResizedCrop(size: number | [number, number], options?: RandomResizedCropOptions): Transform {
  const o = checkOptions<RandomResizedCropOptions>('randomResizedCrop options', options, ['scale', 'ratio', 'interpolation', 'antialias']);
  return makeRandomResizedCrop(size, o, builderNames('randomResizedCrop'));
}

/** torchvision's RandomHorizontalFlip(p=0.5): flips when random() < p. */
export function randomHorizontalFlip(p = 0.5): Transform {
  return makeRandomHorizontalFlip(p, builderNames('randomHorizontalFlip'));
}

/** ToImage + ToDtype(float32, scale=True) + Normalize: (v / 255 - mean[c]) / std[c] in float32,
 * bit for bit as torchvision. mean and std are a number or one number per channel. */
export function normalize(mean: number | readonly number[], std: number | readonly number[]): NormalizeTransform {
  return makeNormalize(mean, std, builderNames('normalize'));
}

/** torchvision's Compose. Nested composes are flattened; normalize may only be the last step. */
export function compose(transforms: readonly AnyTransform[]): Compose {
  return makeCompose(transforms, 'compose transforms');
}

const SPEC_FIELDS = {
  resize: ['size', 'interpolation', 'antialias', 'maxSize'],
  centerCrop: ['size'],
  randomCrop: ['size', 'padding', 'padIfNeeded', 'fill', 'paddingMode'],
  randomResizedCrop: ['size', 'scale', 'ratio', 'interpolation', 'antialias'],
  randomHorizontalFlip: ['p'],
  normalize: ['mean', 'std'],
  compose: ['transforms'],
} as const;

function buildFromSpec(spec: unknown, path: string): AnyTransform {
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) throw invalidType(path, 'a transform spec object', spec);
  const kind = checkOneOf(`${path}.name`, (spec as { name?: unknown }).name, Object.keys(SPEC_FIELDS) as (keyof typeof SPEC_FIELDS)[]);
  const fields: readonly string[] = SPEC_FIELDS[kind];
  const s = checkOptions<Record<string, unknown>>(path, spec, ['name', ...fields]);
  for (const f of fields) {
    if (!(f in s)) throw new TypeError(`Missing ${path}.${f}: a ${kind} spec has ${fields.join(', ')}`);
  }
  const at: Namer = (f) => `${path}.${f}`;
  switch (kind) {
    case 'resize': return makeResize(s.size, s, at);
    case 'centerCrop': return makeCenterCrop(s.size, at);
    case 'randomCrop': return makeRandomCrop(s.size, s, at);
    case 'randomResizedCrop': return makeRandomResizedCrop(s.size, s, at);
    case 'randomHorizontalFlip': return makeRandomHorizontalFlip(s.p, at);
    case 'normalize': return makeNormalize(s.mean, s.std, at);
    case 'compose': {
      if (!Array.isArray(s.transforms)) throw invalidType(at('transforms'), 'an array of transform specs', s.transforms);
      return makeCompose(s.transforms.map((t, i) => buildFromSpec(t, `${path}.transforms[${i}]`)), at('transforms'));
    }
  }
}

/** Rebuilds a transform from its `spec` (e.g. a structured clone in a worker thread), validating it again. */
export function fromSpec(spec: TransformSpec): AnyTransform {
  return buildFromSpec(spec, 'spec');
}
