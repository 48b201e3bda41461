// ResNet-18 training on CUDA tracks the CPU backend step by step (same seed, same data).
import { expect } from 'chai';
import { createRequire } from 'node:module';
import { cudaStatus } from './support/devices.mjs';

const require = createRequire(import.meta.url);
const lib = require('../dist/index.js');
const { resnet18, SGD, crossEntropy, tensor, manualSeed, cudnn } = lib;

function trainLosses(device, steps) {
  manualSeed(0);
  const model = resnet18({ numClasses: 10, inChannels: 1, device: 'cpu' }).to(device);
  const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
  // Fixed images and labels: a learnable toy problem (labels follow the mean brightness).
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  const n = 32;
  const images = Float32Array.from({ length: n * 32 * 32 }, rnd);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 10);
  const x = tensor(images, [n, 1, 32, 32], { device });
  const y = tensor(labels, [n], { device });
  const losses = [];
  for (let i = 0; i < steps; i++) {
    const logits = model.forward(x);
    const loss = crossEntropy(logits, y);
    opt.zeroGrad();
    loss.backward();
    opt.step();
    losses.push(loss.itemSync());
    logits.dispose();
    loss.dispose();
  }
  model.dispose();
  opt.dispose();
  return losses;
}

describe('ResNet-18 training, CUDA against CPU @cuda', function () {
  this.timeout(600000);
  const status = cudaStatus();
  before(function () {
    if (!status.available && process.env.REQUIRE_CUDA !== '1') {
      console.log(`      skipped: CUDA unavailable: ${status.reason}`);
      this.skip();
    }
  });

  it('50 steps: the losses track the CPU run (TF32 off)', function () {
    if (!status.available) throw new Error(`CUDA required but unavailable: ${status.reason}`);
    cudnn.setAllowTF32(false);
    try {
      const cpu = trainLosses('cpu', 50);
      const gpu = trainLosses('cuda', 50);
      for (let i = 0; i < 50; i++) {
        // Chaotic dynamics amplify round-off slowly; early steps must agree closely.
        const tol = i < 10 ? 1e-3 : 5e-2;
        expect(Math.abs(gpu[i] - cpu[i]), `step ${i}: cuda ${gpu[i]} vs cpu ${cpu[i]}`).to.be.below(tol * Math.max(1, cpu[i]));
      }
      expect(gpu[49]).to.be.below(gpu[0]);
    } finally {
      cudnn.setAllowTF32(true);
    }
  });
});
