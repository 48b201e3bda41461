// `cudnn-resblock train`: d2l's train_ch6 for ResNet-18 on Fashion-MNIST, from Node.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SingleBar } from 'cli-progress';
import { loadFashionMnist, takeFirst, DataLoader, type ImageDataset } from '../data';
import { backendInfo, setDefaultDevice, setNumThreads } from '../device';
import { crossEntropy, accuracyCount } from '../functional';
import { noGrad } from '../autograd';
import { save, writeFileAtomicSync } from '../io/checkpoint';
import { resnet18 } from '../nn';
import { SGD } from '../optim';
import { manualSeed } from '../creation';
import type { DeviceType } from '../native';
import { CPU_DEFAULTS, CUDA_DEFAULTS, type TrainFlags } from './args';
import { plotSvg } from './plot';

/** A failure the user can act on (no CUDA, no data): printed without a stack, exit 1. */
export class CliError extends Error {
  override name = 'CliError';
}

export interface EpochMetrics {
  epoch: number;
  trainLoss: number;
  trainAcc: number;
  /** null when the epoch was interrupted before evaluation */
  testAcc: number | null;
  trainExamples: number;
  steps: number;
  trainSeconds: number;
  evalSeconds: number;
  examplesPerSecond: number;
  complete: boolean;
}

interface PlotPoint { x: number; trainLoss?: number; trainAcc?: number; testAcc?: number }

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function timestamp(): string {
  const d = new Date();
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

function pickDevice(choice: TrainFlags['device']): DeviceType {
  const cuda = backendInfo().cuda;
  if (choice === 'cpu') return 'cpu';
  if (choice === 'auto') return cuda.available ? 'cuda' : 'cpu';
  if (!cuda.available) {
    throw new CliError(`--device cuda: CUDA is not usable here: ${cuda.reason ?? 'unknown reason'}` +
      `${cuda.hint ? ` (${cuda.hint})` : ''}. Run \`cudnn-resblock doctor\` for details, or use --device cpu.`);
  }
  return 'cuda';
}

function packageVersion(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export async function runTrain(flags: TrainFlags, out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  const startedAt = new Date();
  if (flags.threads !== undefined) setNumThreads(flags.threads);
  const device = pickDevice(flags.device);
  setDefaultDevice(device);
  const defaults = device === 'cuda' ? CUDA_DEFAULTS : CPU_DEFAULTS;
  const cfg = {
    epochs: flags.epochs ?? defaults.epochs,
    batchSize: flags.batchSize ?? defaults.batchSize,
    lr: flags.lr ?? defaults.lr,
    resize: flags.resize ?? defaults.resize,
    momentum: flags.momentum,
    weightDecay: flags.weightDecay,
    seed: flags.seed,
    limitTrain: flags.limitTrain ?? null,
    limitTest: flags.limitTest ?? null,
    device,
    outDir: path.resolve(flags.out ?? path.join('runs', `fashion-mnist-${timestamp()}`)),
  };

  let fm;
  try {
    fm = loadFashionMnist({ cacheDir: flags.cacheDir, splitSeed: flags.splitSeed, onWarning: (m) => err.write(`warning: ${m}\n`) });
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  const train: ImageDataset = cfg.limitTrain ? takeFirst(fm.train, cfg.limitTrain) : fm.train;
  const test: ImageDataset = cfg.limitTest ? takeFirst(fm.test, cfg.limitTest) : fm.test;
  // BatchNorm cannot train on a batch of one image (the last stage is 1x1 spatially at 28x28).
  const dropLast = train.n % cfg.batchSize === 1;
  const trainLoader = new DataLoader(train, { batchSize: cfg.batchSize, seed: cfg.seed, device, resize: cfg.resize, dropLast });
  const testLoader = new DataLoader(test, { batchSize: cfg.batchSize, shuffle: false, device, resize: cfg.resize });

  manualSeed(cfg.seed);
  const model = resnet18({ numClasses: 10, inChannels: 1, device });
  const opt = new SGD(model.parameters(), { lr: cfg.lr, momentum: cfg.momentum, weightDecay: cfg.weightDecay });
  const info = backendInfo();
  const threads = info.cpu.threads;
  out.write(`training ResNet-18 (${model.numParameters().toLocaleString('en-US')} parameters) on ${device}` +
    `${device === 'cpu' ? ` (${threads} threads, ${info.cpu.simd})` : ` (${info.cuda.devices[0]?.name ?? 'GPU'})`}: ` +
    `${train.n} train / ${test.n} test images at ${cfg.resize}x${cfg.resize}, ${cfg.epochs} epoch${cfg.epochs === 1 ? '' : 's'}, batch ${cfg.batchSize}, lr ${cfg.lr}` +
    `${cfg.momentum ? `, momentum ${cfg.momentum}` : ''}\n` +
    `data: fashion-mnist ${fm.info.source.version}, ${fm.info.converted ? 'converted' : 'cache read'} in ${fm.info.loadMs.toFixed(0)} ms (${fm.info.cacheFile})\n`);

  // Ctrl-C: the first stops after the current step and still writes everything; a second quits.
  let stopRequested = false;
  const onSigint = (): void => {
    if (stopRequested) {
      err.write('\nsecond Ctrl-C: quitting without saving\n');
      process.exit(130);
    }
    stopRequested = true;
    err.write('\nCtrl-C: stopping after this step (Ctrl-C again to quit without saving)\n');
  };
  process.on('SIGINT', onSigint);

  const epochs: EpochMetrics[] = [];
  const points: PlotPoint[] = [];
  const useBar = flags.progress && (err as NodeJS.WriteStream).isTTY === true;
  const bar = useBar ? new SingleBar({
    stream: err,
    format: 'epoch {epoch} [{bar}] {value}/{total} | loss {loss} | acc {acc} | {speed} ex/s | ETA {eta_formatted}',
    barsize: 24,
    hideCursor: true,
    clearOnComplete: true,
    fps: 5,
  }) : null;
  const t0 = performance.now();

  const writeOutputs = (interrupted: boolean, withCheckpoint: boolean): string[] => {
    fs.mkdirSync(cfg.outDir, { recursive: true });
    const written: string[] = [];
    const totalSeconds = (performance.now() - t0) / 1000;
    const trainSeconds = epochs.reduce((s, e) => s + e.trainSeconds, 0);
    const trainExamples = epochs.reduce((s, e) => s + e.trainExamples, 0);
    const log = {
      tool: `cudnn-resblock ${packageVersion()}`,
      argv: process.argv.slice(2),
      config: cfg,
      device,
      backend: info,
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
      data: {
        source: fm.info.source, split: fm.info.split, skipped: fm.info.skipped, cacheFile: fm.info.cacheFile,
        loadMs: fm.info.loadMs, converted: fm.info.converted, trainExamples: train.n, testExamples: test.n, dropLast,
      },
      model: { name: 'resnet18', parameters: model.numParameters() },
      epochs,
      points,
      interrupted,
      timings: {
        totalSeconds, trainSeconds,
        evalSeconds: epochs.reduce((s, e) => s + e.evalSeconds, 0),
        examplesPerSecond: trainSeconds > 0 ? trainExamples / trainSeconds : null,
      },
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
    };
    const write = (name: string, text: string): void => {
      const file = path.join(cfg.outDir, name);
      writeFileAtomicSync(file, new TextEncoder().encode(text));
      written.push(file);
    };
    write('log.json', JSON.stringify(log, null, 2) + '\n');
    write('plot.svg', plotSvg([
      { name: 'train loss', color: '#1f77b4', points: points.filter((p) => p.trainLoss !== undefined).map((p) => [p.x, p.trainLoss!]) },
      { name: 'train acc', color: '#d62728', dashed: true, points: points.filter((p) => p.trainAcc !== undefined).map((p) => [p.x, p.trainAcc!]) },
      { name: 'test acc', color: '#2ca02c', dashed: true, markers: true, points: points.filter((p) => p.testAcc !== undefined).map((p) => [p.x, p.testAcc!]) },
    ], { title: `ResNet-18, Fashion-MNIST ${cfg.resize}x${cfg.resize}, ${device}`, xlabel: 'epoch', xlim: [0, Math.max(1, cfg.epochs)] }));
    if (withCheckpoint) {
      const file = path.join(cfg.outDir, 'checkpoint.safetensors');
      const last = epochs[epochs.length - 1];
      save(model, file, {
        metadata: {
          model: 'resnet18', numClasses: '10', inChannels: '1', resize: String(cfg.resize),
          epochs: String(epochs.length), testAcc: String(last?.testAcc ?? ''), tool: `cudnn-resblock ${packageVersion()}`,
        },
      });
      written.push(file);
    }
    return written;
  };

  try {
    for (let epoch = 0; epoch < cfg.epochs && !stopRequested; epoch++) {
      model.train();
      const steps = trainLoader.length;
      const every = Math.max(1, Math.floor(steps / 5));
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      let step = 0;
      const te = performance.now();
      bar?.start(steps, 0, { epoch: `${epoch + 1}/${cfg.epochs}`, loss: '-', acc: '-', speed: '-' });
      for (const batch of trainLoader.epoch(epoch)) {
        let lossValue: number;
        let right: number;
        try {
          const logits = model.forward(batch.images);
          const loss = crossEntropy(logits, batch.labels);
          opt.zeroGrad();
          loss.backward();
          opt.step();
          const count = accuracyCount(logits, batch.labels);
          lossValue = await loss.item();
          right = await count.item();
          logits.dispose();
          loss.dispose();
          count.dispose();
        } finally {
          batch.dispose();
        }
        lossSum += lossValue * batch.size;
        correct += right;
        seen += batch.size;
        step++;
        const elapsed = (performance.now() - te) / 1000;
        const speed = seen / elapsed;
        if (step % every === 0 || step === steps) points.push({ x: epoch + step / steps, trainLoss: lossSum / seen, trainAcc: correct / seen });
        if (bar) {
          bar.update(step, { loss: (lossSum / seen).toFixed(3), acc: (correct / seen).toFixed(3), speed: speed.toFixed(0) });
        } else if (flags.progress && (step % Math.max(1, Math.floor(steps / 10)) === 0)) {
          err.write(`epoch ${epoch + 1}/${cfg.epochs} step ${step}/${steps}: loss ${(lossSum / seen).toFixed(4)}, acc ${(correct / seen).toFixed(4)}, ` +
            `${speed.toFixed(1)} ex/s, ${elapsed.toFixed(1)} s\n`);
        }
        await tick();
        if (stopRequested) break;
      }
      bar?.stop();
      const trainSeconds = (performance.now() - te) / 1000;
      const complete = step === steps;
      if (seen === 0) break;

      let testAcc: number | null = null;
      let evalSeconds = 0;
      if (complete && !stopRequested) {
        const tv = performance.now();
        model.eval();
        let testCorrect = 0;
        let testSeen = 0;
        for (const batch of testLoader.epoch(0)) {
          try {
            testCorrect += noGrad(() => {
              const logits = model.forward(batch.images);
              const c = accuracyCount(logits, batch.labels);
              logits.dispose();
              const v = c.itemSync();
              c.dispose();
              return v;
            });
            testSeen += batch.size;
          } finally {
            batch.dispose();
          }
          await tick();
          if (stopRequested) break;
        }
        evalSeconds = (performance.now() - tv) / 1000;
        if (testSeen === test.n) {
          testAcc = testCorrect / testSeen;
          points.push({ x: epoch + 1, testAcc });
        }
      }
      const m: EpochMetrics = {
        epoch: epoch + 1, trainLoss: lossSum / seen, trainAcc: correct / seen, testAcc, trainExamples: seen, steps: step,
        trainSeconds, evalSeconds, examplesPerSecond: seen / trainSeconds, complete,
      };
      epochs.push(m);
      out.write(`epoch ${m.epoch}/${cfg.epochs}${complete ? '' : ' (interrupted)'}: loss ${m.trainLoss.toFixed(4)}, train acc ${m.trainAcc.toFixed(4)}, ` +
        `test acc ${testAcc === null ? '-' : testAcc.toFixed(4)} | ${trainSeconds.toFixed(1)} s, ${m.examplesPerSecond.toFixed(1)} examples/s` +
        `${evalSeconds ? `, eval ${evalSeconds.toFixed(1)} s` : ''}\n`);
      // Keep the log and plot current, so a run killed later still leaves its curves.
      writeOutputs(stopRequested, false);
    }
  } finally {
    bar?.stop();
    process.removeListener('SIGINT', onSigint);
  }

  const written = writeOutputs(stopRequested, true);
  const total = (performance.now() - t0) / 1000;
  out.write(`${stopRequested ? 'interrupted; ' : ''}wrote ${written.join(', ')} (${total.toFixed(1)} s)\n`);
  return stopRequested ? 130 : 0;
}
