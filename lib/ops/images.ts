// Image batches into network input: uint8 (N, C, H, W) -> resized, normalized floats (no autograd).
import { native, type Pair } from '../native';
import { checkTensor, Tensor } from '../tensor';
import { checkFinite, checkOptions, checkPair, invalidRange } from '../validate';

export interface NormalizeImagesOptions {
  /** output [height, width]; bilinear resize (align_corners false) when it differs */
  size?: number | Pair;
  mean?: number;
  std?: number;
  dtype?: 'float32' | 'float64';
}

/** uint8 images (N, C, H, W) -> float (N, C, h, w): resize, then (v / 255 - mean) / std. */
export function normalizeImages(images: Tensor, options: NormalizeImagesOptions = {}): Tensor {
  checkTensor('images', images);
  const o = checkOptions<NormalizeImagesOptions>('options', options, ['size', 'mean', 'std', 'dtype']);
  // The default size is the images' own. The native call checks the images (uint8, 4-D,
  // non-empty) and names them, so a malformed one gets a placeholder size here, not a wrong blame.
  const size = o.size === undefined ? [images.shape[2] || 1, images.shape[3] || 1] as Pair : checkPair('size', o.size, 1);
  const mean = checkFinite('mean', o.mean ?? 0);
  const std = checkFinite('std', o.std ?? 1, 0, Number.MAX_VALUE, 'a positive finite number');
  if (!(std > 0)) throw invalidRange('std', 'a positive finite number', std);
  const dtype = o.dtype ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'float64') throw invalidRange('dtype', '"float32" or "float64"', dtype);
  return Tensor._fromHandle(native.imagesU8ToFloat(images.handle, size, mean, std, dtype));
}
