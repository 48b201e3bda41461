// torchvision's ResNets (models.resnet18/34/50): state-dict names, order, shapes and dtypes
// against a fixture generated from real torchvision 0.28 (tools/gen_torchvision_keys.py),
// forward shapes, torchvision's init, zeroInitResidual, and the fine-tuning workflow
// (replaceHead, requiresGrad_ freezing, non-strict loads that report what differs).
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { functional as F, io, load, manualSeed, models, noGrad, randn, resnet18, resnet34, resnet50, save, SGD, tensor } from '../dist/index.js';
import { FIXTURES } from './helpers/block-fixtures.mjs';

const TV = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'torchvision_resnet_keys.json'), 'utf8'));

function values(t) {
  return Array.from(t.toArraySync(), Number);
}

describe('39 torchvision ResNets (models.resnet18/34/50)', function () {
  this.timeout(300000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'crb-tv-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('keeps d2l\'s resnet18 at the top level and exports torchvision\'s under models', () => {
    expect(models.resnet34).to.equal(resnet34);
    expect(models.resnet50).to.equal(resnet50);
    expect(models.resnet18).to.not.equal(resnet18);
    const d2l = resnet18();
    expect(Object.keys(d2l.stateDict())[0]).to.equal('0.0.weight');
    d2l.dispose();
  });

  for (const name of ['resnet18', 'resnet34', 'resnet50']) {
    it(`${name}: state dict equals torchvision's (names in order, shapes, dtypes, parameter count)`, () => {
      const fixture = TV.models[name];
      const model = models[name]();
      const ours = Object.entries(model.stateDict()).map(([k, t]) => [k, [...t.shape], t.dtype]);
      expect(ours.map(([k]) => k)).to.deep.equal(fixture.keys.map(([k]) => k));
      expect(ours).to.deep.equal(fixture.keys);
      expect(model.numParameters()).to.equal(fixture.numParameters);
      expect(model.numParameters()).to.equal({ resnet18: 11689512, resnet34: 21797672, resnet50: 25557032 }[name]);
      model.dispose();
    });
  }

  it('uses torchvision\'s init: kaiming_normal_ fan_out for convs, BN 1/0, no conv biases', () => {
    manualSeed(0);
    const model = models.resnet50({ numClasses: 10 });
    const sd = model.stateDict();
    // conv1: fan_out = 64 * 7 * 7, std sqrt(2 / 3136) ≈ 0.02525
    const w = values(sd['conv1.weight']);
    const mean = w.reduce((a, b) => a + b, 0) / w.length;
    const std = Math.sqrt(w.reduce((a, b) => a + (b - mean) ** 2, 0) / w.length);
    expect(std).to.be.closeTo(Math.sqrt(2 / (64 * 49)), 0.002);
    expect(Math.abs(mean)).to.be.below(0.002);
    const w3 = values(sd['layer1.0.conv3.weight']); // fan_out = 256
    const std3 = Math.sqrt(w3.reduce((a, b) => a + b * b, 0) / w3.length);
    expect(std3).to.be.closeTo(Math.sqrt(2 / 256), 0.005);
    expect(values(sd['layer1.0.bn3.weight']).every((v) => v === 1)).to.equal(true);
    expect(values(sd['layer1.0.bn3.bias']).every((v) => v === 0)).to.equal(true);
    expect(Object.keys(sd).some((k) => /conv\d?\.bias$|downsample\.0\.bias$/.test(k))).to.equal(false);
    // fc keeps nn.Linear's default init: U(-1/sqrt(2048), 1/sqrt(2048))
    const bound = 1 / Math.sqrt(2048);
    expect(values(sd['fc.weight']).every((v) => Math.abs(v) <= bound)).to.equal(true);
    model.dispose();
  });

  it('forward: [2, 3, 64, 64] -> [2, 1000], and [2, 10] with numClasses 10', () => {
    manualSeed(1);
    const x = randn([2, 3, 64, 64]);
    for (const [make, numClasses] of [[models.resnet18, undefined], [models.resnet50, 10], [models.resnet34, 10]]) {
      const model = make(numClasses === undefined ? {} : { numClasses }).eval();
      const y = noGrad(() => model.forward(x));
      expect(y.shape).to.deep.equal([2, numClasses ?? 1000]);
      expect(values(y).every(Number.isFinite)).to.equal(true);
      y.dispose();
      model.dispose();
    }
    x.dispose();
  });

  it('inChannels: 1-channel input', () => {
    const model = models.resnet18({ inChannels: 1, numClasses: 10 }).eval();
    expect(model.stateDict()['conv1.weight'].shape).to.deep.equal([64, 1, 7, 7]);
    const x = randn([1, 1, 32, 32]);
    const y = noGrad(() => model.forward(x));
    expect(y.shape).to.deep.equal([1, 10]);
    expect(() => model.forward(randn([1, 3, 32, 32]))).to.throw(RangeError, /ResNet: x/);
    y.dispose(); x.dispose(); model.dispose();
  });

  it('zeroInitResidual zeroes bn2 (BasicBlock) / bn3 (Bottleneck) weights, so every block starts as relu(identity)', () => {
    for (const [make, last] of [[models.resnet18, 'bn2'], [models.resnet50, 'bn3']]) {
      const model = make({ zeroInitResidual: true, numClasses: 10 });
      const sd = model.stateDict();
      const zeroed = Object.keys(sd).filter((k) => k.endsWith(`.${last}.weight`));
      expect(zeroed.length).to.equal(make === models.resnet18 ? 8 : 16);
      for (const k of zeroed) expect(values(sd[k]).every((v) => v === 0), k).to.equal(true);
      // everything else untouched: bn1, downsample BN, the stem
      expect(values(sd['layer1.0.bn1.weight']).every((v) => v === 1)).to.equal(true);
      expect(values(sd['layer2.0.downsample.1.weight']).every((v) => v === 1)).to.equal(true);
      expect(values(sd['bn1.weight']).every((v) => v === 1)).to.equal(true);
      model.dispose();
    }
    // a block without downsample then computes relu(x) = x for x >= 0
    const model = models.resnet18({ zeroInitResidual: true }).eval();
    const x = noGrad(() => randn([1, 64, 8, 8]).relu());
    const block = model.layer1.at(0);
    const y = noGrad(() => block.forward(x));
    expect(values(y)).to.deep.equal(values(x));
    const plain = models.resnet18().eval();
    const y2 = noGrad(() => plain.layer1.at(0).forward(x));
    expect(values(y2)).to.not.deep.equal(values(x));
    y.dispose(); y2.dispose(); x.dispose(); model.dispose(); plain.dispose();
  });

  it('replaceHead(numClasses): a fresh Linear on the same device replacing fc', () => {
    manualSeed(2);
    const model = models.resnet18();
    const old = model.fc;
    const body = model.stateDict()['layer4.1.conv2.weight'];
    const fc = model.replaceHead(7);
    expect(model.fc).to.equal(fc);
    expect(fc).to.not.equal(old);
    expect(model.numClasses).to.equal(7);
    expect(fc.inFeatures).to.equal(512);
    expect(fc.outFeatures).to.equal(7);
    expect(fc.weight.device).to.equal(old.weight.device);
    const sd = model.stateDict();
    expect(sd['fc.weight'].shape).to.deep.equal([7, 512]);
    expect(sd['fc.bias'].shape).to.deep.equal([7]);
    expect(Object.keys(sd).at(-1)).to.equal('fc.bias');
    expect(sd['layer4.1.conv2.weight']).to.equal(body);
    expect(model.parameters()).to.include(fc.weight);
    const bound = 1 / Math.sqrt(512);
    expect(values(fc.weight).every((v) => Math.abs(v) <= bound)).to.equal(true);
    const y = noGrad(() => model.eval().forward(randn([1, 3, 32, 32])));
    expect(y.shape).to.deep.equal([1, 7]);
    expect(() => model.replaceHead(0)).to.throw(RangeError, /numClasses/);
    expect(() => model.replaceHead(2.5)).to.throw(/numClasses/);
    y.dispose();
    model.dispose();
  });

  it('requiresGrad_(false) then fc.requiresGrad_(true): one SGD step changes only fc', () => {
    manualSeed(3);
    const model = models.resnet18({ numClasses: 4 });
    expect(model.requiresGrad_(false)).to.equal(model);
    expect(model.parameters().every((p) => !p.requiresGrad)).to.equal(true);
    model.fc.requiresGrad_(true);
    const trainable = model.parameters().filter((p) => p.requiresGrad);
    expect(trainable).to.have.members([model.fc.weight, model.fc.bias]);
    const before = Object.fromEntries(model.namedParameters().map(([k, p]) => [k, values(p)]));
    const opt = new SGD(trainable, { lr: 0.5 });
    const x = randn([4, 3, 32, 32]);
    const labels = tensor(Int32Array.of(0, 1, 2, 3), [4]);
    const loss = F.crossEntropy(model.forward(x), labels);
    loss.backward();
    opt.step();
    for (const [k, p] of model.namedParameters()) {
      if (k.startsWith('fc.')) {
        expect(values(p), k).to.not.deep.equal(before[k]);
      } else {
        expect(values(p), k).to.deep.equal(before[k]);
        expect(p.grad ?? null, k).to.equal(null);
      }
    }
    model.requiresGrad_();
    expect(model.parameters().every((p) => p.requiresGrad)).to.equal(true);
    expect(() => model.requiresGrad_('no')).to.throw(TypeError, /requiresGrad/);
    loss.dispose(); x.dispose(); labels.dispose(); model.dispose();
  });

  it('fine-tuning: strict:false reports missing/unexpected keys; a mismatched fc shape still throws', () => {
    manualSeed(4);
    const pretrained = models.resnet18({ numClasses: 1000 });
    const file = path.join(tmp, 'r18-1000.safetensors');
    save(pretrained, file);
    // different class count: the shape mismatch throws, strict or not (as PyTorch's load_state_dict)
    const target = models.resnet18({ numClasses: 10 });
    expect(() => load(target, file, { strict: false })).to.throw(/fc\.weight/);
    // the recipe: drop fc.* from the checkpoint, load with strict: false, keep the fresh head
    const sd = Object.fromEntries(Object.entries(pretrained.stateDict()).filter(([k]) => !k.startsWith('fc.')));
    const body = path.join(tmp, 'r18-body.safetensors');
    io.saveStateDict(sd, body);
    const result = load(target, body, { strict: false });
    expect(result.missingKeys).to.deep.equal(['fc.weight', 'fc.bias']);
    expect(result.unexpectedKeys).to.deep.equal([]);
    expect(values(target.stateDict()['layer3.1.conv1.weight'])).to.deep.equal(values(pretrained.stateDict()['layer3.1.conv1.weight']));
    // the same recipe in memory, as the README shows it
    const target2 = models.resnet18({ numClasses: 10 });
    const fromFile = Object.fromEntries(Object.entries(io.loadStateDictFile(file)).filter(([k]) => !k.startsWith('fc.')));
    expect(target2.loadStateDict(fromFile, { strict: false })).to.deep.equal({ missingKeys: ['fc.weight', 'fc.bias'], unexpectedKeys: [] });
    expect(values(target2.stateDict()['layer3.1.conv1.weight'])).to.deep.equal(values(pretrained.stateDict()['layer3.1.conv1.weight']));
    for (const t of Object.values(fromFile)) t.dispose();
    target2.dispose();
    // or: same class count, then replaceHead
    const other = models.resnet18();
    load(other, file);
    other.replaceHead(10);
    expect(other.stateDict()['fc.weight'].shape).to.deep.equal([10, 512]);
    // a d2l resnet18 checkpoint into torchvision's: nothing matches, everything is reported
    const d2l = resnet18({ inChannels: 3 });
    const d2lFile = path.join(tmp, 'd2l.safetensors');
    save(d2l, d2lFile);
    const r = load(models.resnet18(), d2lFile, { strict: false });
    expect(r.missingKeys).to.include('layer1.0.conv1.weight');
    expect(r.unexpectedKeys).to.include('0.0.weight');
    expect(() => load(models.resnet18(), d2lFile)).to.throw(/missing|unexpected/);
    pretrained.dispose(); target.dispose(); other.dispose(); d2l.dispose();
  });

  it('bad options: unknown keys and wrong types are TypeErrors naming the key', () => {
    for (const make of [models.resnet18, models.resnet34, models.resnet50]) {
      expect(() => make({ num_classes: 10 })).to.throw(TypeError, /num_classes/);
      expect(() => make({ pretrained: true })).to.throw(TypeError, /pretrained/);
    }
    expect(() => models.resnet18({ numClasses: 0 })).to.throw(RangeError, /numClasses/);
    expect(() => models.resnet18({ numClasses: '10' })).to.throw(TypeError, /numClasses/);
    expect(() => models.resnet18({ zeroInitResidual: 1 })).to.throw(TypeError, /zeroInitResidual/);
    expect(() => models.resnet18({ inChannels: -1 })).to.throw(RangeError, /inChannels/);
    expect(() => models.resnet18(null)).to.throw(TypeError, /args/);
    expect(() => models.resnet18({ device: 'tpu' })).to.throw(/device/);
  });
});
