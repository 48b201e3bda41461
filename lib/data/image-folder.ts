// torchvision's ImageFolder: root/<class>/**/<image>, classes sorted by folder name, images
// decoded with sharp (JPEG, PNG, WebP, TIFF, GIF, AVIF) to RGB (or grayscale), alpha dropped as
// PIL's convert('RGB') does, EXIF orientation not applied (torchvision's PIL loader does not).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkTransform, decodeImageFile } from './batch';
import type { AnyTransform, FloatImage, Image } from './transforms';
import { checkInteger, checkOneOf, checkOptions, invalidType } from '../validate';

export const IMAGE_EXTENSIONS: readonly string[] = Object.freeze(['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.gif', '.avif']);

/** A file that could not be read or decoded as an image. */
export class ImageDecodeError extends Error {
  override name = 'ImageDecodeError';
  constructor(message: string, readonly file: string | null) {
    super(message);
  }
}

export interface ImageFolderOptions {
  /** per-image transforms (transforms.compose([...])), run in the DataLoader's workers */
  transform?: AnyTransform;
  /** 3 (RGB, the default) or 1 (grayscale) */
  channels?: 1 | 3;
  /** file extensions counted as images, lower case with the dot; default IMAGE_EXTENSIONS */
  extensions?: readonly string[];
  /** an unreadable image: 'error' (default) stops with an ImageDecodeError naming the file;
   * 'skip' leaves it out of its batch with a warning */
  onCorrupt?: 'error' | 'skip';
}

export class ImageFolder {
  readonly root: string;
  /** class names: the subfolders of root, sorted */
  readonly classes: readonly string[];
  readonly classToIdx: Readonly<Record<string, number>>;
  /** [file, class index] in order: classes in order, files sorted within each */
  readonly samples: readonly (readonly [string, number])[];
  readonly targets: Int32Array;
  readonly channels: 1 | 3;
  readonly transform: AnyTransform | undefined;
  readonly onCorrupt: 'error' | 'skip';

  /** Set only while subset() constructs: the parent's classes and chosen samples, instead of a scan. */
  static #preset: { classes: readonly string[]; samples: readonly (readonly [string, number])[] } | null = null;

  constructor(root: string, options: ImageFolderOptions = {}) {
    if (typeof root !== 'string' || root === '') throw invalidType('root', 'a directory path', root);
    const o = checkOptions<ImageFolderOptions>('options', options, ['transform', 'channels', 'extensions', 'onCorrupt']);
    if (o.channels !== undefined && o.channels !== 1 && o.channels !== 3) {
      throw new RangeError(`options.channels: expected 1 or 3, received ${String(o.channels)}`);
    }
    const exts = o.extensions ?? IMAGE_EXTENSIONS;
    if (!Array.isArray(exts) || exts.length === 0 || !exts.every((e) => typeof e === 'string' && e.startsWith('.'))) {
      throw invalidType('options.extensions', 'a non-empty array of extensions such as ".jpg"', exts);
    }
    this.onCorrupt = checkOneOf('options.onCorrupt', o.onCorrupt ?? 'error', ['error', 'skip'] as const);
    this.root = path.resolve(root);
    this.channels = o.channels ?? 3;
    this.transform = o.transform === undefined ? undefined : checkTransform('options.transform', o.transform);
    const preset = ImageFolder.#preset;
    [this.classes, this.samples] = preset ? [preset.classes, preset.samples] : scan(this.root, exts);
    this.classToIdx = Object.freeze(Object.fromEntries(this.classes.map((c, i) => [c, i])));
    this.targets = Int32Array.from(this.samples, (s) => s[1]);
  }

  /** The examples at `indices`, in that order (torch's Subset), with the same classes and options. */
  subset(indices: readonly number[]): ImageFolder {
    if (!Array.isArray(indices)) throw invalidType('indices', 'an array of example indices', indices);
    const samples = Object.freeze(indices.map((i, k) => this.samples[checkInteger(`indices[${k}]`, i, 0, this.n - 1)]));
    ImageFolder.#preset = { classes: this.classes, samples };
    try {
      return new ImageFolder(this.root, { transform: this.transform, channels: this.channels, onCorrupt: this.onCorrupt });
    } finally {
      ImageFolder.#preset = null;
    }
  }

  get n(): number {
    return this.samples.length;
  }

  get length(): number {
    return this.samples.length;
  }

  /** Example i, decoded and transformed (torchvision's `dataset[i]`); `random` seeds the random transforms. */
  async get(i: number, random?: () => number): Promise<{ image: Image | FloatImage; label: number; file: string }> {
    if (!Number.isInteger(i) || i < 0 || i >= this.n) throw new RangeError(`index: expected an integer in [0, ${this.n - 1}], received ${String(i)}`);
    const [file, label] = this.samples[i];
    let img: Image;
    try {
      img = await decodeImageFile(file, this.channels);
    } catch (e) {
      throw new ImageDecodeError(`cannot read image ${file}: ${(e as Error).message.split('\n')[0]}`, file);
    }
    return { image: this.transform ? this.transform(img, random) : img, label, file };
  }
}

/** The classes (sorted subfolders of root) and the [file, class] samples under them. */
function scan(root: string, exts: readonly string[]): [readonly string[], readonly (readonly [string, number])[]] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(root, { withFileTypes: true });
  } catch (e) {
    throw new Error(`ImageFolder: cannot read ${root}: ${(e as Error).message}`);
  }
  const isDir = (d: fs.Dirent): boolean => d.isDirectory() || (d.isSymbolicLink() && statIsDir(path.join(root, d.name)));
  const classes = Object.freeze(entries.filter(isDir).map((d) => d.name).sort(byCodePoint));
  if (classes.length === 0) throw new Error(`ImageFolder: no class folders in ${root} (expected ${root}/<class>/<image files>)`);
  const wanted = new Set(exts.map((e) => e.toLowerCase()));
  const samples: (readonly [string, number])[] = [];
  const empty: string[] = [];
  classes.forEach((name, label) => {
    const files = listFiles(path.join(root, name)).filter((f) => wanted.has(path.extname(f).toLowerCase()));
    if (files.length === 0) empty.push(name);
    for (const f of files) samples.push(Object.freeze([f, label] as const));
  });
  if (empty.length > 0) {
    throw new Error(`ImageFolder: no image files (${[...wanted].join(', ')}) for the class${empty.length > 1 ? 'es' : ''} ` +
      `${empty.map((c) => `"${c}"`).join(', ')} in ${root}`);
  }
  return [classes, Object.freeze(samples)];
}

/** Files under dir, recursively, in torchvision's make_dataset order: directories sorted by path
 * (sorted(os.walk(...))), files sorted within each. */
function listFiles(dir: string): string[] {
  const dirs: [string, string[]][] = [];
  const seen = new Set<string>();
  const walk = (d: string): void => {
    // A symlink back up the tree would otherwise recurse forever.
    const real = fs.realpathSync(d);
    if (seen.has(real)) return;
    seen.add(real);
    const files: string[] = [];
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      if (e.isDirectory() || (e.isSymbolicLink() && statIsDir(full))) walk(full);
      else if (e.isFile() || e.isSymbolicLink()) files.push(e.name);
    }
    dirs.push([d, files.sort(byCodePoint)]);
  };
  walk(dir);
  dirs.sort((a, b) => byCodePoint(a[0], b[0]));
  return dirs.flatMap(([d, files]) => files.map((f) => path.join(d, f)));
}

function statIsDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Python's sorted(): by code point, not by locale. */
function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
