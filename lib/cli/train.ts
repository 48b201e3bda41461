// `cudnn-resblock train`: d2l's train_ch6 (SGD, cross-entropy, train/test accuracy per epoch)
// for d2l's or torchvision's ResNets on Fashion-MNIST, CIFAR or a folder of images, from Node.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SingleBar } from 'cli-progress';
import { DataLoader } from '../data';
import { backendInfo, setDefaultDevice, setNumThreads } from '../device';
import { crossEntropy, accuracyCount } from '../functional';
import { noGrad } from '../autograd';
import { loadStateDictFile, save, writeFileAtomicSync } from '../io/checkpoint';
import { resnet18 as d2lResnet18, type Module } from '../nn';
import { resnet18, resnet34, resnet50 } from '../models';
import { SGD } from '../optim';
import { manualSeed, tensor } from '../creation';
import type { DeviceType } from '../native';
import { CPU_DEFAULTS, CUDA_DEFAULTS, RESIZE_DEFAULTS, type ModelChoice, type TrainFlags } from './args';
import { openData, type TrainData } from './data';
import { plotSvg } from './plot';
import { packageVersion } from './version';
import * as dist from '../distributed';
import { Writable } from 'node:stream';

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

/** Whether `flag` is true on any rank (one tiny all-reduce). */
async function anyRank(flag: boolean): Promise<boolean> {
  const t = tensor([flag ? 1 : 0], [1], { dtype: 'float32', device: 'cpu' });
  try {
    await dist.allReduce(t, 'max');
    return (await t.item()) > 0;
  } finally {
    t.dispose();
  }
}

/** The model for `choice`; --pretrained weights go in with torchvision's names, the head replaced
 * when its class count differs (fine-tuning). Returns what to print and log about the weights. */
function buildModel(choice: ModelChoice, data: TrainData, device: DeviceType, pretrained: string | undefined, err: NodeJS.WritableStream): { model: Module; weights: string } {
  const args = { numClasses: data.classes.length, inChannels: data.channels, device };
  const model: Module = choice === 'd2l-resnet18' ? d2lResnet18(args)
    : choice === 'resnet18' ? resnet18(args) : choice === 'resnet34' ? resnet34(args) : resnet50(args);
  if (pretrained === undefined) return { model, weights: 'random init' };
  let sd;
  try {
    sd = loadStateDictFile(path.resolve(pretrained), { device });
  } catch (e) {
    throw new CliError(`--pretrained ${pretrained}: ${(e as Error).message}`);
  }
  try {
    // The classifier is the last weight and bias. A file's head for another class count
    // (ImageNet's 1000) is dropped and the model's stays at random init: that is fine-tuning.
    const params = model.namedParameters();
    const head = new Set(params.slice(-2).filter(([k, t]) => k in sd && sd[k].shape.join() !== t.shape.join()).map(([k]) => k));
    const kept = Object.fromEntries(Object.entries(sd).filter(([k]) => !head.has(k)));
    let result;
    try {
      result = model.loadStateDict(kept, { strict: false });
    } catch (e) {
      throw new CliError(`--pretrained ${pretrained}: does not fit --model ${choice}: ${(e as Error).message}`);
    }
    const { missingKeys, unexpectedKeys } = result;
    const headKeys = missingKeys.filter((k) => head.has(k));
    const otherMissing = missingKeys.filter((k) => !head.has(k));
    if (otherMissing.length > 0 || unexpectedKeys.length > 0) {
      throw new CliError(`--pretrained ${pretrained}: does not fit --model ${choice}` +
        `${otherMissing.length ? `; missing: ${otherMissing.slice(0, 8).join(', ')}${otherMissing.length > 8 ? ` (+${otherMissing.length - 8})` : ''}` : ''}` +
        `${unexpectedKeys.length ? `; unexpected: ${unexpectedKeys.slice(0, 8).join(', ')}${unexpectedKeys.length > 8 ? ` (+${unexpectedKeys.length - 8})` : ''}` : ''}`);
    }
    if (headKeys.length > 0) err.write(`pretrained: ${headKeys.join(', ')} left at random init (the file's head has another class count)\n`);
    return { model, weights: `${path.resolve(pretrained)}${headKeys.length ? ` (new head: ${headKeys.join(', ')})` : ''}` };
  } finally {
    for (const t of Object.values(sd)) t.dispose();
  }
}

export async function runTrain(flags: TrainFlags, out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  const startedAt = new Date();
  // Under `launch` (or --nproc): one rank of a data-parallel run. Rank 0 prints, evaluates and
  // writes; every rank trains on its share of each epoch (DistributedSampler) through DDP.
  const worldSize = Number(process.env.WORLD_SIZE ?? 1);
  const distributed = worldSize > 1;
  if (distributed) await dist.initProcessGroup({ backend: 'gloo' });
  const rank = distributed ? dist.getRank() : 0;
  if (rank !== 0) {
    out = new Writable({ write: (_c, _e, done) => done() });
    err = new Writable({ write: (chunk: Buffer, _e, done) => (/error|warning/i.test(String(chunk)) ? process.stderr.write(`rank ${rank}: ${chunk}`, () => done()) : done()) });
  }
  try {
    return await trainRank(flags, out, err, startedAt, distributed, rank);
  } finally {
    if (distributed) dist.destroyProcessGroup();
  }
}

async function trainRank(flags: TrainFlags, out: NodeJS.WritableStream, err: NodeJS.WritableStream, startedAt: Date, distributed: boolean, rank: number): Promise<number> {
  if (flags.threads !== undefined) setNumThreads(flags.threads);
  const device = pickDevice(flags.device);
  setDefaultDevice(device);
  const defaults = device === 'cuda' ? CUDA_DEFAULTS : CPU_DEFAULTS;
  const dataKind = flags.data.kind;
  const modelName: ModelChoice = flags.model ?? (dataKind === 'fashion-mnist' ? 'd2l-resnet18' : 'resnet18');
  const cfg = {
    data: flags.data,
    model: modelName,
    pretrained: flags.pretrained ?? null,
    augment: flags.augment,
    workers: flags.workers,
    epochs: flags.epochs ?? defaults.epochs,
    batchSize: flags.batchSize ?? defaults.batchSize,
    lr: flags.lr ?? defaults.lr,
    resize: flags.resize ?? (dataKind === 'fashion-mnist' ? defaults.resize : RESIZE_DEFAULTS[dataKind]),
    momentum: flags.momentum,
    weightDecay: flags.weightDecay,
    seed: flags.seed,
    limitTrain: flags.limitTrain ?? null,
    limitTest: flags.limitTest ?? null,
    device,
    outDir: path.resolve(flags.out ?? path.join('runs', `${dataKind}-${timestamp()}`)),
  };

  let data: TrainData;
  try {
    data = openData(flags.data, {
      resize: cfg.resize, augment: cfg.augment, limitTrain: cfg.limitTrain, limitTest: cfg.limitTest, seed: cfg.seed,
      cacheDir: flags.cacheDir, splitSeed: flags.splitSeed, onWarning: (m) => err.write(`warning: ${m}\n`),
    });
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  const { train, test } = data;
  // BatchNorm cannot train on a batch of one image (the last stage is 1x1 spatially).
  const dropLast = train.n % cfg.batchSize === 1;
  const loaderOptions = {
    device, resize: data.resize, numWorkers: cfg.workers, onWarning: (m: string) => err.write(`warning: ${m}\n`),
  };
  const sampler = distributed ? new dist.DistributedSampler(train, { seed: cfg.seed }) : undefined;
  const trainLoader = new DataLoader(train, sampler
    ? { ...loaderOptions, batchSize: cfg.batchSize, seed: cfg.seed, dropLast, sampler }
    : { ...loaderOptions, batchSize: cfg.batchSize, seed: cfg.seed, dropLast });
  const testLoader = new DataLoader(test, { ...loaderOptions, batchSize: cfg.batchSize, shuffle: false });

  manualSeed(cfg.seed);
  const { model, weights } = buildModel(modelName, data, device, flags.pretrained, err);
  // DDP starts every rank from rank 0's weights and averages the gradients in backward.
  const net: Module = distributed ? new dist.DistributedDataParallel(model) : model;
  const opt = new SGD(model.parameters(), { lr: cfg.lr, momentum: cfg.momentum, weightDecay: cfg.weightDecay });
  const info = backendInfo();
  const threads = info.cpu.threads;
  const title = `${modelName === 'd2l-resnet18' ? "d2l's ResNet-18" : `torchvision's ${modelName}`}`;
  out.write(`training ${title} (${model.numParameters().toLocaleString('en-US')} parameters, ${weights}) on ${device}` +
    `${device === 'cpu' ? ` (${threads} threads, ${info.cpu.simd})` : ` (${info.cuda.devices[0]?.name ?? 'GPU'})`}: ` +
    `${train.n} train / ${test.n} test images at ${cfg.resize}x${cfg.resize}, ${data.classes.length} classes, ` +
    `${cfg.epochs} epoch${cfg.epochs === 1 ? '' : 's'}, batch ${cfg.batchSize}, lr ${cfg.lr}` +
    `${cfg.momentum ? `, momentum ${cfg.momentum}` : ''}${cfg.augment ? ', augmented' : ''}` +
    `${cfg.workers ? `, ${cfg.workers} loader worker${cfg.workers > 1 ? 's' : ''}` : ''}` +
    `${distributed ? `, data-parallel over ${dist.getWorldSize()} ranks (gloo; batch ${cfg.batchSize} per rank)` : ''}\n` +
    `data: ${data.name}, ${String(data.info.summary)}\n`);

  // Ctrl-C: the first stops after the current step (the loader's workers end with the loop) and
  // still writes everything; a second quits.
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
    const { summary: _summary, ...dataInfo } = data.info;
    const log = {
      tool: `cudnn-resblock ${packageVersion()}`,
      argv: process.argv.slice(2),
      config: cfg,
      device,
      backend: info,
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
      data: {
        name: data.name, ...dataInfo, classes: data.classes, trainExamples: train.n, testExamples: test.n, dropLast, transforms: data.recipe,
      },
      model: { name: modelName, parameters: model.numParameters(), weights },
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
    ], { title: `${title}, ${dataKind} ${cfg.resize}x${cfg.resize}, ${device}`, xlabel: 'epoch', xlim: [0, Math.max(1, cfg.epochs)] }));
    if (withCheckpoint) {
      const file = path.join(cfg.outDir, 'checkpoint.safetensors');
      const last = epochs[epochs.length - 1];
      save(model, file, {
        metadata: {
          model: modelName, numClasses: String(data.classes.length), inChannels: String(data.channels), resize: String(cfg.resize),
          data: dataKind, classes: JSON.stringify(data.classes),
          epochs: String(epochs.length), testAcc: String(last?.testAcc ?? ''), tool: `cudnn-resblock ${packageVersion()}`,
        },
      });
      written.push(file);
    }
    return written;
  };

  try {
    for (let epoch = 0; epoch < cfg.epochs && !stopRequested; epoch++) {
      net.train();
      const steps = trainLoader.length;
      const every = Math.max(1, Math.floor(steps / 5));
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      let step = 0;
      const te = performance.now();
      bar?.start(steps, 0, { epoch: `${epoch + 1}/${cfg.epochs}`, loss: '-', acc: '-', speed: '-' });
      for await (const batch of trainLoader.epoch(epoch)) {
        let lossValue: number;
        let right: number;
        try {
          const logits = net.forward(batch.images);
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
        // Every rank stops after the same step, or the others would wait in an all-reduce.
        if (distributed ? await anyRank(stopRequested) : stopRequested) {
          stopRequested = true;
          break;
        }
      }
      bar?.stop();
      const trainSeconds = (performance.now() - te) / 1000;
      const complete = step === steps;
      if (seen === 0) break;

      let testAcc: number | null = null;
      let evalSeconds = 0;
      if (complete && !stopRequested && rank === 0) {
        const tv = performance.now();
        model.eval();
        let testCorrect = 0;
        let testSeen = 0;
        for await (const batch of testLoader.epoch(0)) {
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
      if (distributed) await dist.barrier(); // the other ranks wait while rank 0 evaluates
      epochs.push(m);
      out.write(`epoch ${m.epoch}/${cfg.epochs}${complete ? '' : ' (interrupted)'}: loss ${m.trainLoss.toFixed(4)}, train acc ${m.trainAcc.toFixed(4)}, ` +
        `test acc ${testAcc === null ? '-' : testAcc.toFixed(4)} | ${trainSeconds.toFixed(1)} s, ${m.examplesPerSecond.toFixed(1)} examples/s` +
        `${evalSeconds ? `, eval ${evalSeconds.toFixed(1)} s` : ''}\n`);
      // Keep the log and plot current, so a run killed later still leaves its curves.
      if (rank === 0) writeOutputs(stopRequested, false);
    }
  } finally {
    bar?.stop();
    process.removeListener('SIGINT', onSigint);
  }

  if (rank !== 0) return stopRequested ? 130 : 0;
  const written = writeOutputs(stopRequested, true);
  const total = (performance.now() - t0) / 1000;
  out.write(`${stopRequested ? 'interrupted; ' : ''}wrote ${written.join(', ')} (${total.toFixed(1)} s)\n`);
  return stopRequested ? 130 : 0;
}
