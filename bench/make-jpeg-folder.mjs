// Writes an ImageFolder tree for the data-loading benchmark: DIR/class_CC/img_NNNN.jpg, `classes`
// x `perClass` JPEGs of size x size (default 10 x 50 of 224x224, quality 90) with varied,
// seeded synthetic content (a two-colour gradient at a random angle, a few soft discs, a
// sinusoidal texture and pixel noise), so files decode like photographs of that size (tens of KB)
// rather than like flat colour. Same seed, same bytes.
//
//   node bench/make-jpeg-folder.mjs DIR [--classes 10] [--per-class 50] [--size 224] [--quality 90] [--seed 0]
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
// mulberry32, the package's seeded PRNG, [0, 1)
const { mulberry32: prng } = require('../dist/data/fashion-mnist.js');

function loadSharp() {
  try {
    return require('sharp');
  } catch (e) {
    throw new Error(`make-jpeg-folder: sharp is needed to write JPEGs and could not be loaded (${e.message.split('\n')[0]})`);
  }
}

const clamp = (v) => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));

/** RGB pixels (size*size*3 bytes) of one synthetic image drawn from `rnd`. */
function synthImage(rnd, size) {
  const c0 = [rnd() * 255, rnd() * 255, rnd() * 255];
  const c1 = [rnd() * 255, rnd() * 255, rnd() * 255];
  const angle = rnd() * 2 * Math.PI;
  const [dx, dy] = [Math.cos(angle), Math.sin(angle)];
  const discs = Array.from({ length: 2 + Math.floor(rnd() * 4) }, () => ({
    x: rnd() * size, y: rnd() * size, r: size * (0.05 + rnd() * 0.25), c: [rnd() * 255, rnd() * 255, rnd() * 255],
  }));
  const freq = (2 + rnd() * 10) * 2 * Math.PI / size;
  const texture = 10 + rnd() * 25;
  const noise = 8 + rnd() * 24;
  const px = Buffer.alloc(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const t = Math.min(1, Math.max(0, ((x - size / 2) * dx + (y - size / 2) * dy) / size + 0.5));
      const wave = texture * Math.sin(freq * x) * Math.cos(freq * 0.7 * y);
      let r = c0[0] * (1 - t) + c1[0] * t;
      let g = c0[1] * (1 - t) + c1[1] * t;
      let b = c0[2] * (1 - t) + c1[2] * t;
      for (const d of discs) {
        const a = 1 - Math.hypot(x - d.x, y - d.y) / d.r; // soft edge
        if (a > 0) { r += (d.c[0] - r) * a; g += (d.c[1] - g) * a; b += (d.c[2] - b) * a; }
      }
      const o = (y * size + x) * 3;
      px[o] = clamp(r + wave + (rnd() - 0.5) * 2 * noise);
      px[o + 1] = clamp(g + wave + (rnd() - 0.5) * 2 * noise);
      px[o + 2] = clamp(b + wave + (rnd() - 0.5) * 2 * noise);
    }
  }
  return px;
}

/**
 * Writes the tree under `dir` (created if needed) and returns { dir, classes, perClass, files, bytes }.
 */
export async function makeJpegFolder(dir, { classes = 10, perClass = 50, size = 224, quality = 90, seed = 0 } = {}) {
  const sharp = loadSharp();
  const rnd = prng(seed);
  const jobs = [];
  for (let c = 0; c < classes; c++) {
    const classDir = path.join(dir, `class_${String(c).padStart(2, '0')}`);
    mkdirSync(classDir, { recursive: true });
    for (let i = 0; i < perClass; i++) jobs.push({ file: path.join(classDir, `img_${String(i).padStart(4, '0')}.jpg`), px: null });
  }
  let bytes = 0;
  const CHUNK = 16; // pixels are drawn in order (same seed, same images); encoding overlaps within a chunk
  for (let s = 0; s < jobs.length; s += CHUNK) {
    const chunk = jobs.slice(s, s + CHUNK);
    for (const j of chunk) j.px = synthImage(rnd, size);
    const infos = await Promise.all(chunk.map((j) =>
      sharp(j.px, { raw: { width: size, height: size, channels: 3 } }).jpeg({ quality }).toFile(j.file)));
    for (const info of infos) bytes += info.size;
    for (const j of chunk) j.px = null;
  }
  return { dir, classes, perClass, size, quality, seed, files: jobs.length, bytes };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [dir, ...rest] = process.argv.slice(2);
  if (!dir) {
    console.error('usage: node bench/make-jpeg-folder.mjs DIR [--classes 10] [--per-class 50] [--size 224] [--quality 90] [--seed 0]');
    process.exit(2);
  }
  const names = { '--classes': 'classes', '--per-class': 'perClass', '--size': 'size', '--quality': 'quality', '--seed': 'seed' };
  const opts = {};
  for (let i = 0; i < rest.length; i += 2) {
    if (!(rest[i] in names) || !Number.isInteger(Number(rest[i + 1]))) {
      console.error(`make-jpeg-folder: expected one of ${Object.keys(names).join(', ')} followed by an integer, received ${rest[i]} ${rest[i + 1]}`);
      process.exit(2);
    }
    opts[names[rest[i]]] = Number(rest[i + 1]);
  }
  const r = await makeJpegFolder(dir, opts);
  console.log(`wrote ${r.files} JPEGs (${r.classes} classes x ${r.perClass}, ${r.size}x${r.size}, quality ${r.quality}), ${(r.bytes / 1024 / 1024).toFixed(1)} MiB, under ${r.dir}`);
}
