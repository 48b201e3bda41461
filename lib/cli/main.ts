#!/usr/bin/env node
// The `cudnn-resblock` command. Exit codes: 0 ok, 1 failure (no data, no CUDA, a backend error),
// 2 bad usage (unknown flag, bad value), 130 interrupted by Ctrl-C (outputs still written).
import { parseDoctorArgs, parseLaunchArgs, parseTrainArgs, UsageError } from './args';
import { DOCTOR_HELP, LAUNCH_HELP, MAIN_HELP, TRAIN_HELP } from './help';
import { packageVersion } from './version';

const HELP = { main: MAIN_HELP, train: TRAIN_HELP, doctor: DOCTOR_HELP, launch: LAUNCH_HELP } as const;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case 'help':
      case '--help':
      case '-h': {
        const topic = command === 'help' ? rest[0] : undefined;
        if (topic !== undefined && topic !== 'train' && topic !== 'doctor' && topic !== 'launch') {
          throw new UsageError(`help: unknown command "${topic}" (commands: train, launch, doctor)`, 'main');
        }
        process.stdout.write((topic ? HELP[topic] : MAIN_HELP) + '\n');
        return command === undefined ? 2 : 0;
      }
      case '--version':
      case '-v':
      case 'version':
        process.stdout.write(packageVersion() + '\n');
        return 0;
      case 'train': {
        const flags = parseTrainArgs(rest);
        if (flags.help) {
          process.stdout.write(TRAIN_HELP + '\n');
          return 0;
        }
        if (flags.nproc > 1 && process.env.WORLD_SIZE === undefined) {
          // Data-parallel: this same command once per rank, under the launcher.
          const { runLaunch } = await import('./launch');
          const i = rest.indexOf('--nproc');
          const rankArgs = i >= 0 ? [...rest.slice(0, i), ...rest.slice(i + 2)] : rest.filter((a) => !a.startsWith('--nproc='));
          return await runLaunch({ nproc: flags.nproc, masterAddr: '127.0.0.1', command: [__filename, 'train', ...rankArgs] });
        }
        // sharp decodes on libuv's pool, which all the loader's workers share (4 threads by
        // default); it is sized when first used, so only before any async work.
        if (flags.workers > 2 && process.env.UV_THREADPOOL_SIZE === undefined) process.env.UV_THREADPOOL_SIZE = String(flags.workers + 2);
        // Loaded only now: help and usage errors must not need the native addon.
        const { runTrain } = await import('./train');
        return await runTrain(flags);
      }
      case 'launch': {
        const flags = parseLaunchArgs(rest);
        if (flags.help) {
          process.stdout.write(LAUNCH_HELP + '\n');
          return 0;
        }
        const { runLaunch } = await import('./launch');
        return await runLaunch(flags);
      }
      case 'doctor': {
        const flags = parseDoctorArgs(rest);
        if (flags.help) {
          process.stdout.write(DOCTOR_HELP + '\n');
          return 0;
        }
        const { runDoctor } = await import('./doctor');
        return runDoctor(flags.json);
      }
      default:
        throw new UsageError(command.startsWith('-') ? `unknown flag ${command}` : `unknown command "${command}" (commands: train, launch, doctor, help)`, 'main');
    }
  } catch (e) {
    if (e instanceof UsageError) {
      // The help first, the error last, so the error is what stays on screen.
      process.stderr.write(`${HELP[e.command]}\n\ncudnn-resblock: ${e.message}\n`);
      return 2;
    }
    const err = e as Error;
    if (err.name === 'CliError') {
      process.stderr.write(`cudnn-resblock: ${err.message}\n`);
    } else {
      process.stderr.write(`cudnn-resblock: ${err.name}: ${err.message}\n${process.env.CUDNN_RESBLOCK_DEBUG ? `${err.stack}\n` : ''}`);
    }
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  }, (e: unknown) => {
    process.stderr.write(`cudnn-resblock: ${String(e)}\n`);
    process.exitCode = 1;
  });
}
