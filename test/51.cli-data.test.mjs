// `train --data cifar10:DIR | folder:DIR --model resnet18 --pretrained FILE --workers N --augment`,
// end to end as child processes on data written here (a synthetic CIFAR binary, small PNGs).
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { interruptAtFirstStep } from './support/interrupt.mjs';
import { writeCifar10 } from './support/cifar.mjs';

const require = createRequire(import.meta.url);
const lib = require('../dist/index.js');
const sharp = require('sharp');
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');

function run(args, options = {}) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 170000, ...options });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function header(file) {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  return JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
}

async function writeSplit(dir, classes, perClass, seed) {
  for (const [c, name] of classes.entries()) {
    fs.mkdirSync(path.join(dir, name), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const px = Buffer.alloc(40 * 48 * 3);
      for (let j = 0; j < px.length; j++) px[j] = (j % 3 === c ? 200 : 30) + ((j * 13 + i * 7 + seed) % 40);
      await sharp(px, { raw: { width: 48, height: 40, channels: 3 } }).png().toFile(path.join(dir, name, `${i}.png`));
    }
  }
}

describe('51 cli: CIFAR, image folders, torchvision models, pretrained weights, workers', function () {
  this.timeout(180000);
  let tmp;
  before(async function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'crb-cli-data-'));
    writeCifar10(path.join(tmp, 'cifar', 'cifar-10-batches-bin'), 16);
    const classes = ['red', 'green', 'blue'];
    await writeSplit(path.join(tmp, 'photos', 'train'), classes, 12, 0);
    await writeSplit(path.join(tmp, 'photos', 'val'), classes, 4, 5);
  });
  after(function () {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('cifar10:DIR with torchvision\'s resnet18, --augment and 2 workers', function () {
    const out = path.join(tmp, 'run-cifar');
    const r = run(['train', '--data', `cifar10:${path.join(tmp, 'cifar')}`, '--model', 'resnet18', '--augment', '--workers', '2',
      '--epochs', '1', '--batch-size', '16', '--device', 'cpu', '--out', out, '--no-progress']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.include("training torchvision's resnet18").and.include('80 train / 16 test images at 32x32, 10 classes');
    expect(r.stdout).to.match(/epoch 1\/1: loss [\d.]+, train acc [\d.]+, test acc [\d.]+/);
    const log = JSON.parse(fs.readFileSync(path.join(out, 'log.json'), 'utf8'));
    expect(log.config).to.include({ model: 'resnet18', augment: true, workers: 2, resize: 32 });
    expect(log.data.classes).to.deep.equal(lib.CIFAR10_CLASSES);
    expect(log.data.transforms.train.transforms.map((t) => t.name)).to.deep.equal(['randomCrop', 'randomHorizontalFlip', 'normalize']);
    expect(log.data.transforms.test.transforms.map((t) => t.name)).to.deep.equal(['normalize']);
    const h = header(path.join(out, 'checkpoint.safetensors'));
    expect(h['conv1.weight'].shape).to.deep.equal([64, 3, 7, 7]);
    expect(h['fc.weight'].shape).to.deep.equal([10, 512]);
    expect(h.__metadata__).to.include({ model: 'resnet18', data: 'cifar10', numClasses: '10', inChannels: '3' });
  });

  it('folder:DIR fine-tunes from --pretrained torchvision weights: the 1000-class head is replaced', function () {
    const weights = path.join(tmp, 'resnet18-imagenet.safetensors');
    lib.manualSeed(1);
    const pretrained = lib.models.resnet18();
    lib.save(pretrained, weights);
    const conv1 = Float32Array.from(pretrained.conv1.weight.toArraySync());
    const out = path.join(tmp, 'run-folder');
    const r = run(['train', '--data', `folder:${path.join(tmp, 'photos')}`, '--model', 'resnet18', '--pretrained', weights,
      '--workers', '2', '--resize', '32', '--lr', '1e-9', '--epochs', '1', '--batch-size', '12', '--device', 'cpu', '--out', out, '--no-progress']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.include('fc.weight, fc.bias left at random init');
    expect(r.stdout).to.include('36 train / 12 test images at 32x32, 3 classes');
    const log = JSON.parse(fs.readFileSync(path.join(out, 'log.json'), 'utf8'));
    expect(log.model.weights).to.include(weights).and.include('new head');
    expect(log.data.classes).to.deep.equal(['blue', 'green', 'red']);
    expect(log.data.transforms.test.transforms.map((t) => t.name)).to.deep.equal(['resize', 'centerCrop', 'normalize']);
    // lr 1e-9: the trained conv1 is still the pretrained one.
    const trained = lib.io.loadStateDictFile(path.join(out, 'checkpoint.safetensors'));
    const got = trained['conv1.weight'].toArraySync();
    let worst = 0;
    for (let i = 0; i < conv1.length; i++) worst = Math.max(worst, Math.abs(got[i] - conv1[i]));
    expect(worst).to.be.below(1e-6);
    expect(trained['fc.weight'].shape).to.deep.equal([3, 512]);
  });

  it('Ctrl-C with loader workers: stops after the step, workers end, outputs written, exit 130', async function () {
    const out = path.join(tmp, 'run-sigint');
    const { code, sent, stderr, ms } = await interruptAtFirstStep(cli, ['train', '--data', `folder:${path.join(tmp, 'photos')}`, '--workers', '2',
      '--resize', '32', '--epochs', '5', '--batch-size', '4', '--device', 'cpu', '--out', out]);
    expect(sent, stderr).to.equal(true);
    expect(code, stderr).to.equal(130);
    expect(ms).to.be.below(60000);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'log.json'), 'utf8')).interrupted).to.equal(true);
    expect(fs.existsSync(path.join(out, 'checkpoint.safetensors'))).to.equal(true);
  });

  const usage = [
    [['train', '--data', 'imagenet'], /--data: expected fashion-mnist, cifar10:DIR, cifar100:DIR or folder:DIR, received "imagenet"/],
    [['train', '--data', 'folder:'], /--data: expected a directory after "folder:"/],
    [['train', '--model', 'vgg16'], /--model: expected d2l-resnet18, resnet18, resnet34, resnet50, received "vgg16"/],
    [['train', '--workers', '-1'], /--workers: expected an integer >= 0/],
    [['train', '--augment', 'yes'], /unexpected argument "yes"/],
  ];
  for (const [args, pattern] of usage) {
    it(`\`${args.join(' ')}\` exits 2 naming the problem`, function () {
      const r = run(args);
      expect(r.code).to.equal(2);
      expect(r.stderr).to.match(pattern);
    });
  }

  it('missing data is exit 1 with what was looked for: a folder without val/, a CIFAR path without the archive', function () {
    const lone = path.join(tmp, 'lone');
    fs.mkdirSync(path.join(lone, 'train', 'a'), { recursive: true });
    const f = run(['train', '--data', `folder:${lone}`, '--device', 'cpu']);
    expect(f.code).to.equal(1);
    expect(f.stderr).to.include(path.join(lone, 'val')).and.include('no val/test');
    const c = run(['train', '--data', `cifar100:${lone}`, '--device', 'cpu']);
    expect(c.code).to.equal(1);
    expect(c.stderr).to.include('cifar-100-binary').and.include('binary version');
  });
});
