// transforms (torchvision.transforms.v2 on uint8 HWC images) against torchvision itself: every case
// of test/fixtures/transforms.safetensors (tools/gen_transform_fixtures.py, see its docstring),
// then what a fixture cannot show: randomResizedCrop statistics, seeded reproducibility, compose,
// spec round trips and argument errors.
import { expect } from 'chai';
import * as path from 'node:path';

import { io, transforms as T, data } from '../dist/index.js';
import { FIXTURES } from './helpers/block-fixtures.mjs';
import { expectThrow } from './support/expect-throw.mjs';

const file = io.readSafetensorsFile(path.join(FIXTURES, 'transforms.safetensors'));
const CASES = JSON.parse(file.metadata.cases);
const RRC_PARAMS = JSON.parse(file.metadata.rrc_params);

function entry(key) {
  const e = file.get(key);
  if (!e) throw new Error(`transforms fixture has no entry ${key}`);
  return e;
}

/** A fixture tensor (HWC) as an image. */
function imageAt(key) {
  const { data: pixels, shape: [height, width, channels] } = entry(key);
  return { data: pixels, height, width, channels };
}

/** A Random returning `uniforms` in order; `used()` says how many it gave. */
function scripted(uniforms) {
  let i = 0;
  const random = () => {
    if (i >= uniforms.length) throw new Error('ran out of scripted draws');
    return uniforms[i++];
  };
  random.used = () => i;
  return random;
}

function maxAbsDiff(a, b) {
  expect(a.length).to.equal(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function countDiffs(a, b) {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

function shapeOf(img) {
  return [img.height, img.width, img.channels];
}

/** Our output for a case, on `input` (uint8, or float32 for the functional ops). */
function run(c, input) {
  const F = T.functional;
  const opts = { interpolation: c.interpolation, antialias: c.antialias };
  switch (c.op) {
    case 'hflip': return F.hflip(input);
    case 'crop': return F.crop(input, c.top, c.left, c.height, c.width);
    case 'center_crop': return F.centerCrop(input, c.size);
    case 'pad': return F.pad(input, c.padding, c.fill, c.mode);
    case 'resize': {
      if (Array.isArray(c.size)) return F.resize(input, c.size, opts);
      if (input.data instanceof Uint8Array) return T.resize(c.size, { ...opts, ...(c.max_size ? { maxSize: c.max_size } : {}) })(input);
      // the float path at the size the uint8 transform computes (checked in that case)
      const [h, w] = entry(c.key).shape;
      return F.resize(input, [h, w], opts);
    }
    case 'resized_crop': return F.resizedCrop(input, c.top, c.left, c.height, c.width, c.size, opts);
    case 'normalize': return T.normalize(c.mean, c.std)(input);
    case 'random_crop': {
      const random = scripted(c.uniforms);
      const t = T.randomCrop(c.size, { padding: c.padding ?? undefined, padIfNeeded: c.pad_if_needed, fill: c.fill, paddingMode: c.padding_mode });
      const out = t(input, random);
      expect(random.used(), 'draws').to.equal(c.uniforms.length);
      return out;
    }
    case 'random_resized_crop': {
      const random = scripted(c.uniforms);
      const out = T.randomResizedCrop(c.size, { scale: c.scale, ratio: c.ratio, antialias: c.antialias })(input, random);
      expect(random.used(), 'draws').to.equal(c.uniforms.length);
      return out;
    }
    default: throw new Error(`unknown fixture op ${c.op}`);
  }
}

/** A transform of a float image: random_resized_crop through the functional kernel, same box. */
function runFloat(c, input) {
  if (c.op !== 'random_resized_crop') return run(c, input);
  const box = T.randomResizedCropParams(input.height, input.width, c.scale, c.ratio, scripted(c.uniforms));
  return T.functional.resizedCrop(input, box.top, box.left, box.height, box.width, c.size, { antialias: c.antialias });
}

describe('transforms against torchvision.transforms.v2 (fixture)', function () {
  const stats = { f32: 0, u8FloatDiffs: 0, u8FloatMax: 0, nativeMax: 0, nativeDiffs: 0, values: 0, cases: 0 };
  after(function () {
    console.log(`      torchvision ${file.metadata.torchvision} (${file.metadata.cpu_capability}), ${stats.cases} bilinear cases, ` +
      `${stats.values} values: float32 max |diff| ${stats.f32.toExponential(2)}; uint8 vs its float path: ${stats.u8FloatDiffs} differ ` +
      `(max ${stats.u8FloatMax}); vs its native uint8 path: ${stats.nativeDiffs} differ (max ${stats.nativeMax})`);
  });

  for (const c of CASES) {
    it(`${c.key}`, function () {
      const input = imageAt(`${c.image}/input`);
      const expected = entry(c.key);
      const out = run(c, input);
      expect(shapeOf(out), 'shape').to.deep.equal(expected.shape);
      if (c.op === 'normalize') {
        expect(out.data).to.be.instanceOf(Float32Array);
        expect(maxAbsDiff(out.data, expected.data), 'normalize, bit for bit').to.equal(0);
        expect(T.functional.normalize(input, c.mean, c.std).data).to.deep.equal(out.data);
        return;
      }
      expect(out.data).to.be.instanceOf(Uint8Array);
      if (!file.get(`${c.key}/f32`)) {
        expect(countDiffs(out.data, expected.data), 'exact').to.equal(0);
        return;
      }
      // bilinear: the float path to 1e-5, uint8 against both of torchvision's uint8 paths
      const f32 = runFloat(c, imageAt(`${c.image}/input_f32`));
      expect(f32.data).to.be.instanceOf(Float32Array);
      const d = maxAbsDiff(f32.data, entry(`${c.key}/f32`).data);
      expect(d, 'float32 path').to.be.at.most(1e-5);
      const viaFloat = entry(`${c.key}/u8_float`).data;
      const dFloat = maxAbsDiff(out.data, viaFloat);
      expect(dFloat, 'uint8 vs torchvision float-then-round').to.be.at.most(1);
      // where the two differ, the value before rounding is a near tie (float32 vs double sums)
      const u8 = imageAt(`${c.image}/input`);
      const before = runFloat(c, { ...u8, data: Float32Array.from(u8.data) }).data;
      for (let i = 0; i < out.data.length; i++) {
        if (out.data[i] !== viaFloat[i]) expect(Math.abs((before[i] % 1) - 0.5), `value ${i} = ${before[i]}`).to.be.below(1e-3);
      }
      const dNative = maxAbsDiff(out.data, expected.data);
      expect(dNative, 'uint8 vs torchvision native uint8').to.be.at.most(1);
      stats.cases++;
      stats.values += out.data.length;
      stats.f32 = Math.max(stats.f32, d);
      stats.u8FloatDiffs += countDiffs(out.data, viaFloat);
      stats.u8FloatMax = Math.max(stats.u8FloatMax, dFloat);
      stats.nativeDiffs += countDiffs(out.data, expected.data);
      stats.nativeMax = Math.max(stats.nativeMax, dNative);
    });
  }

  it('uint8 rounding: half to even and clamped, as torchvision\'s round_(); differences only at near ties', function () {
    expect(stats.cases).to.be.at.least(30);
    expect(stats.u8FloatDiffs / stats.values).to.be.below(0.005);
    // 2x upsampling makes exact halves (weights 1/4, 3/4): 0.5 -> 0, 1.5 -> 2, 2.5 -> 2
    const img = { data: Uint8Array.of(0, 1, 2, 3, 4, 5), height: 1, width: 6, channels: 1 };
    const up = T.functional.resize(img, [1, 12], { antialias: false });
    expect(Array.from(up.data)).to.deep.equal([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
    const halves = T.functional.resize({ data: Uint8Array.of(0, 1, 1, 2, 2, 3), height: 1, width: 6, channels: 1 }, [1, 3], { antialias: false });
    expect(Array.from(halves.data)).to.deep.equal([0, 2, 2]);
  });

  it('randomResizedCropParams: torchvision\'s box for every scripted draw sequence (tries, then the fallback)', function () {
    let fallbacks = 0;
    for (const p of RRC_PARAMS) {
      const random = scripted(p.uniforms);
      const box = T.randomResizedCropParams(p.height, p.width, p.scale, p.ratio, random);
      expect(box, JSON.stringify(p)).to.deep.equal(p.box);
      expect(random.used()).to.equal(p.uniforms.length);
      if (p.uniforms.length === 20) fallbacks++;
    }
    expect(fallbacks).to.be.at.least(15);
  });
});

describe('transforms: randomness', function () {
  it('randomResizedCropParams: boxes always inside the image, area and log-ratio distributed as asked', function () {
    const random = data.mulberry32(1);
    const n = 20000;
    let area = 0;
    let logRatio = 0;
    for (let i = 0; i < n; i++) {
      const b = T.randomResizedCropParams(375, 500, [0.08, 1], [3 / 4, 4 / 3], random);
      expect(b.top >= 0 && b.left >= 0 && b.height >= 1 && b.width >= 1 && b.top + b.height <= 375 && b.left + b.width <= 500, JSON.stringify(b)).to.equal(true);
      const a = (b.height * b.width) / (375 * 500);
      expect(a).to.be.within(0.075, 1);
      area += a;
      logRatio += Math.log(b.width / b.height);
    }
    // torchvision's own make_params, 40,000 boxes on this size: mean area 0.4342 (± 0.0011),
    // mean log(w/h) 0.0317 (large tall boxes do not fit a wide image); here ± 4 standard errors
    expect(area / n).to.be.within(0.4342 - 0.006, 0.4342 + 0.006);
    expect(logRatio / n).to.be.within(0.0317 - 0.006, 0.0317 + 0.006);
    // small and odd images, any scale and ratio: still inside
    for (let i = 0; i < 5000; i++) {
      const h = 1 + Math.floor(random() * 40);
      const w = 1 + Math.floor(random() * 40);
      const s0 = random() * 2;
      const r0 = 0.05 + random() * 5;
      const b = T.randomResizedCropParams(h, w, [s0, s0 + random()], [r0, r0 * (1 + random() * 3)], random);
      expect(b.top >= 0 && b.left >= 0 && b.height >= 1 && b.width >= 1 && b.top + b.height <= h && b.left + b.width <= w, JSON.stringify({ h, w, b })).to.equal(true);
    }
    // impossible areas: the central box, clamped to the ratio range
    expect(T.randomResizedCropParams(20, 200, [1.5, 2], [3 / 4, 4 / 3], random)).to.deep.equal({ top: 0, left: 86, height: 20, width: 27 });
  });

  it('the same seed gives the same output; a different seed, another; no Random means Math.random', function () {
    const img = imageAt('rgb/input');
    const pipe = T.compose([T.randomResizedCrop(9), T.randomHorizontalFlip(), T.randomCrop(7, { padding: 2, paddingMode: 'reflect' }), T.normalize(T.CIFAR10_MEAN, T.CIFAR10_STD)]);
    const a = pipe(img, data.mulberry32(42));
    const b = pipe(img, data.mulberry32(42));
    expect(a.data).to.be.instanceOf(Float32Array);
    expect(Array.from(a.data)).to.deep.equal(Array.from(b.data));
    const others = [1, 2, 3, 4].map((s) => Array.from(pipe(img, data.mulberry32(s)).data));
    expect(others.some((o) => o.join() !== Array.from(a.data).join())).to.equal(true);
    expect(shapeOf(pipe(img))).to.deep.equal([7, 7, 3]);
  });

  it('randomHorizontalFlip flips when random() < p, one draw per call; p = 0 and 1 are constant', function () {
    const img = imageAt('rgb/input');
    const flipped = T.functional.hflip(img);
    const t = T.randomHorizontalFlip(0.3);
    expect(t(img, scripted([0.29])).data).to.deep.equal(flipped.data);
    expect(t(img, scripted([0.3]))).to.equal(img);
    expect(T.randomHorizontalFlip(0)(img, scripted([0]))).to.equal(img);
    expect(T.randomHorizontalFlip(1)(img, scripted([0.999])).data).to.deep.equal(flipped.data);
    expect(T.randomHorizontalFlip().spec).to.deep.equal({ name: 'randomHorizontalFlip', p: 0.5 });
    const random = data.mulberry32(3);
    let flips = 0;
    for (let i = 0; i < 2000; i++) if (T.randomHorizontalFlip()(img, random) !== img) flips++;
    expect(flips).to.be.within(900, 1100);
  });

  it('randomCrop draws nothing along an axis the crop fills, and only there', function () {
    const img = imageAt('rgb/input');
    const random = scripted([0.5]);
    const out = T.randomCrop([13, 9])(img, random);
    expect(random.used()).to.equal(1);
    expect(out.data).to.deep.equal(T.functional.crop(img, 0, 4, 13, 9).data);
    expect(T.randomCrop([13, 17])(img, scripted([]))).to.equal(img);
  });
});

describe('transforms: compose, specs, fromSpec', function () {
  const img = imageAt('rgb/input');

  it('compose applies steps in order and flattens nested composes', function () {
    const a = T.centerCrop([9, 11]);
    const b = T.resize([5, 6]);
    const c = T.randomHorizontalFlip(1);
    const n = T.normalize(0.5, 0.25);
    const flat = T.compose([a, b, c, n]);
    const nested = T.compose([T.compose([a, T.compose([b])]), T.compose([c, n])]);
    expect(nested.spec).to.deep.equal(flat.spec);
    expect(nested.spec.transforms).to.deep.equal([a.spec, b.spec, c.spec, n.spec]);
    const manual = n(c(b(a(img))));
    expect(Array.from(flat(img).data)).to.deep.equal(Array.from(manual.data));
    expect(Array.from(nested(img).data)).to.deep.equal(Array.from(manual.data));
    expect(shapeOf(T.compose([b, a])(img))).to.deep.equal([9, 11, 3]);
    expect(Object.isFrozen(flat.spec.transforms[0].size)).to.equal(true);
  });

  it('fromSpec(structuredClone(t.spec)) rebuilds the same transform', function () {
    const all = [
      T.resize(10), T.resize(7, { maxSize: 9, interpolation: 'nearest', antialias: false }), T.resize([5, 8]),
      T.centerCrop(6), T.centerCrop([20, 3]),
      T.randomCrop(8), T.randomCrop([15, 18], { padding: [1, 2], padIfNeeded: true, fill: 3, paddingMode: 'symmetric' }),
      T.randomResizedCrop([6, 7], { scale: [0.3, 0.9], ratio: [0.5, 2], interpolation: 'bilinear', antialias: false }),
      T.randomHorizontalFlip(0.7), T.normalize(T.IMAGENET_MEAN, T.IMAGENET_STD),
      T.compose([T.randomResizedCrop(8), T.randomHorizontalFlip(), T.normalize([0.5], [0.2, 0.3, 0.4])]),
    ];
    for (const t of all) {
      const clone = structuredClone(t.spec);
      const u = T.fromSpec(clone);
      expect(u.spec, JSON.stringify(t.spec)).to.deep.equal(t.spec);
      const x = t(img, data.mulberry32(5));
      const y = u(img, data.mulberry32(5));
      expect(shapeOf(y)).to.deep.equal(shapeOf(x));
      expect(Array.from(y.data)).to.deep.equal(Array.from(x.data));
    }
    expect(T.resize([5, 8]).spec).to.deep.equal({ name: 'resize', size: [5, 8], interpolation: 'bilinear', antialias: true, maxSize: null });
    expect(T.randomCrop(4, { padding: 1 }).spec).to.deep.equal({ name: 'randomCrop', size: [4, 4], padding: [1, 1, 1, 1], padIfNeeded: false, fill: 0, paddingMode: 'constant' });
  });

  it('normalize may only be last: the pipeline is uint8 until then', function () {
    const n = T.normalize(0.5, 0.5);
    expectThrow(() => T.compose([n, T.resize(4)]), TypeError, 'normalize must be the last step', 'step 1 of 2');
    expectThrow(() => T.compose([T.compose([T.centerCrop(4), n]), T.randomHorizontalFlip()]), TypeError, 'step 2 of 3');
    expectThrow(() => T.fromSpec({ name: 'compose', transforms: [n.spec, n.spec] }), TypeError, 'spec.transforms: normalize must be the last step');
  });

  it('fromSpec validates: names, missing and unknown fields, values, nesting', function () {
    expectThrow(() => T.fromSpec(null), TypeError, 'for spec');
    expectThrow(() => T.fromSpec({ name: 'rotate' }), RangeError, 'for spec.name', '"rotate"');
    expectThrow(() => T.fromSpec({ name: 'centerCrop' }), TypeError, 'Missing spec.size');
    expectThrow(() => T.fromSpec({ name: 'centerCrop', size: [3, 3], extra: 1 }), TypeError, 'Unknown option "extra" for spec');
    expectThrow(() => T.fromSpec({ name: 'randomHorizontalFlip', p: 2 }), RangeError, 'for spec.p but received 2');
    expectThrow(() => T.fromSpec({ name: 'compose', transforms: [{ name: 'centerCrop', size: [0, 3] }] }), RangeError, 'spec.transforms[0].size[0]');
    expectThrow(() => T.fromSpec({ name: 'compose', transforms: [] }), RangeError, 'at least one transform');
    expectThrow(() => T.fromSpec({ ...T.resize([2, 3]).spec, maxSize: 5 }), RangeError, 'spec.maxSize is only allowed with an integer size');
  });
});

describe('transforms: argument errors', function () {
  const img = imageAt('rgb/input');

  it('options: unknown keys are TypeErrors; bad values RangeError or TypeError naming the argument', function () {
    expectThrow(() => T.resize(10, { antialais: false }), TypeError, 'Unknown option "antialais" for resize options');
    expectThrow(() => T.randomCrop(10, { pad: 1 }), TypeError, 'Unknown option "pad" for randomCrop options');
    expectThrow(() => T.functional.resize(img, [4, 4], { mode: 'nearest' }), TypeError, 'Unknown option "mode"');
    expectThrow(() => T.resize(0), RangeError, 'for resize size but received 0');
    expectThrow(() => T.resize([4, 2.5]), RangeError, 'resize size[1]');
    expectThrow(() => T.resize('224'), TypeError, 'resize size');
    expectThrow(() => T.resize(10, { interpolation: 'bicubic' }), RangeError, '"bilinear", "nearest" for resize options.interpolation');
    expectThrow(() => T.resize(10, { antialias: 'yes' }), TypeError, 'a boolean for resize options.antialias');
    expectThrow(() => T.resize([10, 12], { maxSize: 20 }), RangeError, 'resize options.maxSize is only allowed with an integer size');
    expectThrow(() => T.resize(10, { maxSize: 10 }), RangeError, 'resize options.maxSize but received 10');
    expectThrow(() => T.centerCrop([3]), TypeError, 'centerCrop size');
    expectThrow(() => T.randomCrop(4, { padding: -1 }), RangeError, 'randomCrop options.padding');
    expectThrow(() => T.randomCrop(4, { padding: [1, 2, 3] }), TypeError, 'randomCrop options.padding');
    expectThrow(() => T.randomCrop(4, { fill: 256 }), RangeError, 'randomCrop options.fill');
    expectThrow(() => T.randomCrop(4, { paddingMode: 'wrap' }), RangeError, 'randomCrop options.paddingMode', '"wrap"');
    expectThrow(() => T.randomCrop(4, { padIfNeeded: 1 }), TypeError, 'randomCrop options.padIfNeeded');
    expectThrow(() => T.randomResizedCrop(4, { scale: [0.9, 0.1] }), RangeError, 'min <= max for randomResizedCrop options.scale');
    expectThrow(() => T.randomResizedCrop(4, { ratio: [0, 1] }), RangeError, 'randomResizedCrop options.ratio[0]');
    expectThrow(() => T.randomResizedCrop(4, { scale: 0.5 }), TypeError, 'randomResizedCrop options.scale');
    expectThrow(() => T.randomHorizontalFlip(1.5), RangeError, 'randomHorizontalFlip p');
    expectThrow(() => T.normalize([0.5, 0.5], 0), RangeError, 'a nonzero finite number for normalize std');
    expectThrow(() => T.normalize([0.5, 0.5], [1, 1, 1]), RangeError, 'mean and std of the same length');
    expectThrow(() => T.normalize([], 1), TypeError, 'normalize mean');
    expectThrow(() => T.compose([]), RangeError, 'at least one transform for compose transforms');
    expectThrow(() => T.compose([(x) => x]), TypeError, 'a transform made by transforms.* for compose transforms[0]');
    expectThrow(() => T.randomResizedCropParams(10, 10, [0.1, 1], [1, 2], 0.5), TypeError, 'randomResizedCropParams random');
  });

  it('images: shape, type, channels, crops larger than the image, pads too wide, random out of range', function () {
    expectThrow(() => T.centerCrop(3)({ ...img, height: 12 }), RangeError, 'height*width*channels = 612 values for centerCrop image.data but received 663 values');
    expectThrow(() => T.centerCrop(3)(imageAt('rgb/input_f32')), TypeError, 'a Uint8Array for centerCrop image.data');
    expectThrow(() => T.resize(3)(null), TypeError, 'resize image');
    expectThrow(() => T.normalize([0.5, 0.5], 0.5)(img), RangeError, '2 channels (one per mean/std value) for normalize image.channels but received 3');
    expectThrow(() => T.randomCrop(20)(img), RangeError, 'Required crop size (20, 20) is larger than input image size (13, 17)');
    expectThrow(() => T.randomCrop(20, { padding: 1 })(img), RangeError, 'larger than padded input image size (15, 19)');
    expectThrow(() => T.randomCrop(40, { padIfNeeded: true, paddingMode: 'reflect' })(img), RangeError, '"reflect" mode', 'width 17');
    expectThrow(() => T.functional.pad(img, [17, 0, 0, 0], 0, 'reflect'), RangeError, 'less than the image\'s width 17');
    expectThrow(() => T.functional.pad(img, [0, 14, 0, 0], 0, 'symmetric'), RangeError, 'at most the image\'s width 17 (left, right) and height 13');
    expectThrow(() => T.functional.pad(img, 1, 2.5), RangeError, 'pad fill');
    expectThrow(() => T.functional.crop(img, 0, 0, 0, 3), RangeError, 'crop height');
    expectThrow(() => T.randomHorizontalFlip()(img, () => 1), RangeError, 'a number in [0, 1) for random() but received 1');
    expectThrow(() => T.randomResizedCrop(4)(img, 'seed'), TypeError, 'randomResizedCrop random');
  });

  it('transforms never modify their input; the ESM entry exports the same namespace', async function () {
    const copy = Uint8Array.from(img.data);
    T.compose([T.randomResizedCrop(6), T.randomHorizontalFlip(1), T.randomCrop(8, { padding: 3, paddingMode: 'edge' }), T.normalize(0.5, 0.5)])(img);
    T.functional.pad(img, 2, 9);
    expect(img.data).to.deep.equal(copy);
    const esm = await import('../dist/index.mjs');
    expect(esm.transforms).to.equal(T);
    expect(esm.data.transforms).to.equal(T);
  });
});
