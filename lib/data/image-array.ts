// In-memory uint8 image datasets of any channel count (torch's TensorDataset, for images).
//
// Note [layouts]
// 'HWC' (interleaved: r g b r g b ...) is how decoded image files, canvases and CIFAR-as-PNG are
// usually held; 'CHW' (planar: all of r, then g, then b) is CIFAR's binary layout and the
// network's. The DataLoader gathers either into CHW batches, so both give the same tensor.
import { checkInteger, checkOneOf, checkOptions, invalidRange, invalidType } from '../validate';
import { checkTransform, hwcToChw } from './batch';
import type { AnyTransform } from './transforms';

export type ImageLayout = 'HWC' | 'CHW';

export interface ImageArrayDatasetInit {
  /** n images of channels*height*width bytes each, in `layout` order */
  images: Uint8Array;
  /** n integer labels (class indices) */
  labels: Int32Array | Uint8Array | readonly number[];
  n: number;
  /** channels per pixel; default 1 */
  channels?: number;
  height: number;
  width: number;
  /** pixel order within one image; default 'CHW' (identical to 'HWC' when channels is 1) */
  layout?: ImageLayout;
  /** class names; when given, every label must be in 0..classes.length-1 */
  classes?: readonly string[];
  /** per-image transforms (transforms.compose([...])), run by the DataLoader (in its workers) */
  transform?: AnyTransform;
}

export class ImageArrayDataset {
  readonly images: Uint8Array;
  readonly labels: Int32Array;
  readonly n: number;
  readonly channels: number;
  readonly height: number;
  readonly width: number;
  readonly layout: ImageLayout;
  readonly classes: readonly string[] | undefined;
  readonly transform: AnyTransform | undefined;

  constructor(init: ImageArrayDatasetInit) {
    const o = checkOptions<ImageArrayDatasetInit>('dataset', init,
      ['images', 'labels', 'n', 'channels', 'height', 'width', 'layout', 'classes', 'transform']);
    this.transform = o.transform === undefined ? undefined : checkTransform('dataset.transform', o.transform);
    if (!(o.images instanceof Uint8Array)) throw invalidType('dataset.images', 'a Uint8Array', o.images);
    const labels = o.labels;
    if (!(labels instanceof Int32Array || labels instanceof Uint8Array || Array.isArray(labels))) {
      throw invalidType('dataset.labels', 'an Int32Array, Uint8Array or array of integers', labels);
    }
    this.n = checkInteger('dataset.n', o.n, 0);
    this.channels = checkInteger('dataset.channels', o.channels ?? 1, 1);
    this.height = checkInteger('dataset.height', o.height, 1);
    this.width = checkInteger('dataset.width', o.width, 1);
    this.layout = checkOneOf<ImageLayout>('dataset.layout', o.layout ?? 'CHW', ['HWC', 'CHW']);
    const expected = this.n * this.channels * this.height * this.width;
    if (o.images.length !== expected) {
      throw invalidRange('dataset.images', `n*channels*height*width = ${expected} bytes`, `${o.images.length} bytes`);
    }
    if (labels.length !== this.n) throw invalidRange('dataset.labels', `n = ${this.n} labels`, `${labels.length} labels`);
    let classes: readonly string[] | undefined;
    if (o.classes !== undefined) {
      if (!Array.isArray(o.classes) || o.classes.length === 0 || !o.classes.every((c) => typeof c === 'string')) {
        throw invalidType('dataset.classes', 'a non-empty array of class names', o.classes);
      }
      classes = Object.freeze([...o.classes]);
    }
    const max = classes ? classes.length - 1 : 0x7fffffff;
    const out = new Int32Array(this.n);
    for (let i = 0; i < this.n; i++) out[i] = checkInteger(`dataset.labels[${i}]`, labels[i], 0, max);
    this.images = o.images;
    this.labels = out;
    this.classes = classes;
  }

  /** The same images and labels (not copied) with another transform, as torchvision's `dataset.transform = t`. */
  withTransform(transform: AnyTransform | undefined): ImageArrayDataset {
    return new ImageArrayDataset({
      images: this.images, labels: this.labels, n: this.n, channels: this.channels, height: this.height, width: this.width,
      layout: this.layout, classes: this.classes, transform,
    });
  }

  /** The examples at `indices`, in that order (torch's Subset), copied into a new dataset. */
  subset(indices: readonly number[]): ImageArrayDataset {
    if (!Array.isArray(indices)) throw invalidType('indices', 'an array of example indices', indices);
    const size = this.channels * this.height * this.width;
    const images = new Uint8Array(indices.length * size);
    const labels = new Int32Array(indices.length);
    indices.forEach((i, k) => {
      checkInteger(`indices[${k}]`, i, 0, this.n - 1);
      images.set(this.images.subarray(i * size, (i + 1) * size), k * size);
      labels[k] = this.labels[i];
    });
    return new ImageArrayDataset({
      images, labels, n: indices.length, channels: this.channels, height: this.height, width: this.width,
      layout: this.layout, classes: this.classes, transform: this.transform,
    });
  }

  /** Copies example i into `dst` at `offset` as CHW (planar) bytes. */
  copyCHW(i: number, dst: Uint8Array, offset: number): void {
    const { channels: c, height: h, width: w } = this;
    const size = c * h * w;
    const src = this.images.subarray(i * size, (i + 1) * size);
    if (this.layout === 'CHW' || c === 1) {
      dst.set(src, offset);
      return;
    }
    hwcToChw(src, c, h * w, dst, offset);
  }
}
