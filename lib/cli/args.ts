// Command-line parsing (node:util parseArgs) and validation. Every problem becomes a UsageError
// that names the flag, what it expects and what it got; main.ts prints it with the help, exit 2.
import { parseArgs, type ParseArgsConfig } from 'node:util';

export class UsageError extends Error {
  constructor(message: string, readonly command: 'train' | 'doctor' | 'launch' | 'main') {
    super(message);
    this.name = 'UsageError';
  }
}

export type DeviceChoice = 'auto' | 'cpu' | 'cuda';

export type DataChoice =
  | { kind: 'fashion-mnist' }
  | { kind: 'cifar10' | 'cifar100' | 'folder'; dir: string };

export const MODEL_CHOICES = ['d2l-resnet18', 'resnet18', 'resnet34', 'resnet50'] as const;
export type ModelChoice = typeof MODEL_CHOICES[number];

/** What the user typed for train (undefined = not given); defaults depend on the device. */
export interface TrainFlags {
  data: DataChoice;
  /** undefined: d2l-resnet18 for fashion-mnist, resnet18 otherwise */
  model?: ModelChoice;
  pretrained?: string;
  workers: number;
  augment: boolean;
  /** data-parallel ranks (1: one process) */
  nproc: number;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  resize?: number;
  device: DeviceChoice;
  out?: string;
  seed: number;
  limitTrain?: number;
  limitTest?: number;
  momentum: number;
  weightDecay: number;
  cacheDir?: string;
  splitSeed?: number;
  threads?: number;
  progress: boolean;
  help: boolean;
}

/** d2l's recipe (chapter "Residual Networks"), the default on CUDA. */
export const CUDA_DEFAULTS = { epochs: 10, batchSize: 256, lr: 0.05, resize: 96 } as const;
/** On the CPU: no resize (96x96 costs ~12x the compute of 28x28) and one epoch. */
export const CPU_DEFAULTS = { epochs: 1, batchSize: 256, lr: 0.05, resize: 28 } as const;
/** The image side of the other datasets: CIFAR's own 32, ImageNet's 224 crop for a folder. */
export const RESIZE_DEFAULTS = { cifar10: 32, cifar100: 32, folder: 224 } as const;

const TRAIN_OPTIONS = {
  data: { type: 'string' },
  model: { type: 'string' },
  pretrained: { type: 'string' },
  workers: { type: 'string' },
  augment: { type: 'boolean' },
  nproc: { type: 'string' },
  epochs: { type: 'string' },
  'batch-size': { type: 'string' },
  lr: { type: 'string' },
  resize: { type: 'string' },
  device: { type: 'string' },
  out: { type: 'string' },
  seed: { type: 'string' },
  'limit-train': { type: 'string' },
  'limit-test': { type: 'string' },
  momentum: { type: 'string' },
  'weight-decay': { type: 'string' },
  'cache-dir': { type: 'string' },
  'split-seed': { type: 'string' },
  threads: { type: 'string' },
  'no-progress': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

const DOCTOR_OPTIONS = {
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

/** Runs parseArgs and turns its errors (unknown flag, missing value, stray argument) into UsageErrors. */
function parse<O extends ParseArgsConfig['options']>(args: string[], options: O, command: 'train' | 'doctor' | 'launch') {
  // parseArgs reads `--lr -1` as a flag followed by a flag; a negative number is meant as the
  // value, so glue it on and let the range check name the real problem.
  const glued: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const name = args[i].startsWith('--') ? args[i].slice(2) : '';
    const takesValue = (options as Record<string, { type: string }>)[name]?.type === 'string';
    if (takesValue && i + 1 < args.length && /^-\d|^-\.\d/.test(args[i + 1])) {
      glued.push(`${args[i]}=${args[i + 1]}`);
      i++;
    } else {
      glued.push(args[i]);
    }
  }
  try {
    return parseArgs({ args: glued, options, strict: true, allowPositionals: false });
  } catch (e) {
    const err = e as Error & { code?: string };
    const msg = err.message;
    switch (err.code) {
      case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
        const flag = /'([^']+)'/.exec(msg)?.[1] ?? msg;
        throw new UsageError(`unknown flag ${flag} for \`${command}\``, command);
      }
      case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
        const flag = /'(--?[a-z-]+)/.exec(msg)?.[1] ?? '';
        if (/argument missing/.test(msg)) throw new UsageError(`${flag}: expected a value after it, received nothing`, command);
        throw new UsageError(`${flag}: takes no value (${msg})`, command);
      }
      case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL': {
        const arg = /'([^']*)'/.exec(msg)?.[1] ?? msg;
        throw new UsageError(`unexpected argument "${arg}" for \`${command}\` (flags take the form --name value)`, command);
      }
      default:
        throw new UsageError(msg, command);
    }
  }
}

function parseNumber(flag: string, raw: string | undefined, opts: { integer?: boolean; min?: number; max?: number; minExclusive?: boolean; maxExclusive?: boolean }): number | undefined {
  if (raw === undefined) return undefined;
  const { integer = false, min = -Infinity, max = Infinity, minExclusive = false, maxExclusive = false } = opts;
  const pattern = integer ? /^\+?\d+$/ : /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
  const range = `${minExclusive ? '>' : '>='} ${min}${Number.isFinite(max) ? ` and ${maxExclusive ? '<' : '<='} ${max}` : ''}`;
  const what = integer ? `an integer ${range}` : `a number ${range}`;
  const value = Number(raw.trim());
  if (!pattern.test(raw.trim()) || !Number.isFinite(value)) throw new UsageError(`--${flag}: expected ${what}, received "${raw}"`, 'train');
  const low = minExclusive ? value <= min : value < min;
  const high = maxExclusive ? value >= max : value > max;
  if (low || high) throw new UsageError(`--${flag}: expected ${what}, received ${raw}`, 'train');
  return value;
}

export interface LaunchArgs {
  nproc: number;
  masterAddr: string;
  masterPort?: number;
  threadsPerRank?: number;
  command: string[];
  help: boolean;
}

const LAUNCH_OPTIONS = {
  nproc: { type: 'string' },
  'nproc-per-node': { type: 'string' },
  'master-addr': { type: 'string' },
  'master-port': { type: 'string' },
  'threads-per-rank': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

/** `launch [flags] script.js [script args]`: the flags end at the first argument that is not one. */
export function parseLaunchArgs(args: string[]): LaunchArgs {
  let k = 0;
  while (k < args.length && args[k].startsWith('-') && args[k] !== '--') {
    const name = args[k].replace(/^--?/, '').split('=')[0];
    const takesValue = (LAUNCH_OPTIONS as Record<string, { type: string }>)[name]?.type === 'string';
    k += takesValue && !args[k].includes('=') ? 2 : 1;
  }
  const flagArgs = args.slice(0, Math.min(k, args.length));
  const command = args.slice(args[k] === '--' ? k + 1 : k);
  const { values: v } = parse(flagArgs, LAUNCH_OPTIONS, 'launch');
  const num = (flag: string, raw: string | undefined, min: number, max: number): number | undefined => {
    if (raw === undefined) return undefined;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      throw new UsageError(`--${flag}: expected an integer >= ${min} and <= ${max}, received "${raw}"`, 'launch');
    }
    return Number(raw);
  };
  const nproc = num('nproc', v.nproc ?? v['nproc-per-node'], 1, 256);
  if (v.help) return { nproc: nproc ?? 1, masterAddr: '127.0.0.1', command, help: true };
  if (nproc === undefined) throw new UsageError('--nproc: expected the number of ranks to start, received nothing', 'launch');
  if (command.length === 0) throw new UsageError('launch: expected a script to run after the flags (launch --nproc 2 train.js)', 'launch');
  return {
    nproc,
    masterAddr: v['master-addr'] ?? '127.0.0.1',
    masterPort: num('master-port', v['master-port'], 1, 65535),
    threadsPerRank: num('threads-per-rank', v['threads-per-rank'], 1, 1024),
    command,
    help: false,
  };
}

/** `fashion-mnist`, or `cifar10:DIR`, `cifar100:DIR`, `folder:DIR` (a leading ~ is the home directory). */
function parseData(raw: string | undefined): DataChoice {
  if (raw === undefined || raw === 'fashion-mnist') return { kind: 'fashion-mnist' };
  const m = /^(cifar10|cifar100|folder):(.*)$/.exec(raw);
  if (!m) throw new UsageError(`--data: expected fashion-mnist, cifar10:DIR, cifar100:DIR or folder:DIR, received "${raw}"`, 'train');
  const dir = m[2].trim();
  if (dir === '') throw new UsageError(`--data: expected a directory after "${m[1]}:", received nothing`, 'train');
  const home = process.env.HOME ?? '';
  return { kind: m[1] as 'cifar10' | 'cifar100' | 'folder', dir: dir === '~' ? home : dir.startsWith('~/') ? home + dir.slice(1) : dir };
}

export function parseTrainArgs(args: string[]): TrainFlags {
  const { values: v } = parse(args, TRAIN_OPTIONS, 'train');
  if (v.model !== undefined && !(MODEL_CHOICES as readonly string[]).includes(v.model)) {
    throw new UsageError(`--model: expected ${MODEL_CHOICES.join(', ')}, received "${v.model}"`, 'train');
  }
  if (v.pretrained !== undefined && v.pretrained.trim() === '') throw new UsageError('--pretrained: expected a .safetensors file, received an empty string', 'train');
  const device = v.device ?? 'auto';
  if (device !== 'auto' && device !== 'cpu' && device !== 'cuda') {
    throw new UsageError(`--device: expected auto, cpu or cuda, received "${device}"`, 'train');
  }
  for (const flag of ['out', 'cache-dir'] as const) {
    if (v[flag] !== undefined && v[flag]!.trim() === '') throw new UsageError(`--${flag}: expected a directory, received an empty string`, 'train');
  }
  return {
    data: parseData(v.data),
    model: v.model as ModelChoice | undefined,
    pretrained: v.pretrained,
    workers: parseNumber('workers', v.workers, { integer: true, min: 0, max: 256 }) ?? 0,
    augment: v.augment ?? false,
    nproc: parseNumber('nproc', v.nproc, { integer: true, min: 1, max: 256 }) ?? 1,
    epochs: parseNumber('epochs', v.epochs, { integer: true, min: 1, max: 10000 }),
    batchSize: parseNumber('batch-size', v['batch-size'], { integer: true, min: 1, max: 65536 }),
    lr: parseNumber('lr', v.lr, { min: 0, minExclusive: true, max: 100 }),
    resize: parseNumber('resize', v.resize, { integer: true, min: 8, max: 512 }),
    device,
    out: v.out,
    seed: parseNumber('seed', v.seed, { integer: true, min: 0, max: 0xffffffff }) ?? 0,
    limitTrain: parseNumber('limit-train', v['limit-train'], { integer: true, min: 1 }),
    limitTest: parseNumber('limit-test', v['limit-test'], { integer: true, min: 1 }),
    momentum: parseNumber('momentum', v.momentum, { min: 0, max: 1, maxExclusive: true }) ?? 0,
    weightDecay: parseNumber('weight-decay', v['weight-decay'], { min: 0, max: 1 }) ?? 0,
    cacheDir: v['cache-dir'],
    splitSeed: parseNumber('split-seed', v['split-seed'], { integer: true, min: 0, max: 0xffffffff }),
    threads: parseNumber('threads', v.threads, { integer: true, min: 1, max: 1024 }),
    progress: !v['no-progress'],
    help: v.help ?? false,
  };
}

export interface DoctorFlags {
  json: boolean;
  help: boolean;
}

export function parseDoctorArgs(args: string[]): DoctorFlags {
  const { values: v } = parse(args, DOCTOR_OPTIONS, 'doctor');
  return { json: v.json ?? false, help: v.help ?? false };
}
