// `cudnn-resblock launch --nproc N script.js [args]`: torchrun for Node. Starts N copies of the
// script with RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT set
// (what distributed.initProcessGroup reads), forwards SIGINT/SIGTERM to every rank, and when one
// rank fails ends the others and exits with the failing rank's code.
import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import * as os from 'node:os';

export interface LaunchFlags {
  nproc: number;
  masterAddr: string;
  /** undefined: a free port */
  masterPort?: number;
  /** CPU backend threads per rank; undefined: the cores divided among the ranks */
  threadsPerRank?: number;
  /** the program and its arguments (node runs it; a leading node binary is allowed) */
  command: string[];
}

/** A port nobody listens on now, from the kernel. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** How long a rank gets to exit after SIGTERM before SIGKILL. */
const GRACE_MS = 5000;

export async function runLaunch(flags: LaunchFlags, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  const port = flags.masterPort ?? (await freePort(flags.masterAddr === 'localhost' ? '127.0.0.1' : flags.masterAddr));
  const cores = os.availableParallelism ? os.availableParallelism() : os.cpus().length;
  const threads = flags.threadsPerRank ?? Math.max(1, Math.floor(cores / flags.nproc));
  const [first, ...rest] = flags.command;
  const args = first === 'node' || first === process.execPath ? rest : flags.command;
  const children: ChildProcess[] = [];
  let failed: { rank: number; code: number } | null = null;
  let ending = false;

  const endAll = (signal: NodeJS.Signals): void => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill(signal);
  };
  const killTimer = (): NodeJS.Timeout => setTimeout(() => endAll('SIGKILL'), GRACE_MS).unref();
  const onSignal = (signal: NodeJS.Signals): void => {
    ending = true;
    endAll(signal);
  };
  const sigint = (): void => onSignal('SIGINT');
  const sigterm = (): void => onSignal('SIGTERM');
  const onExit = (): void => endAll('SIGKILL');
  process.on('SIGINT', sigint);
  process.on('SIGTERM', sigterm);
  process.on('exit', onExit);

  const exits = Array.from({ length: flags.nproc }, (_, rank) => {
    const env = {
      ...process.env,
      RANK: String(rank), LOCAL_RANK: String(rank), WORLD_SIZE: String(flags.nproc), LOCAL_WORLD_SIZE: String(flags.nproc),
      GROUP_RANK: '0', MASTER_ADDR: flags.masterAddr, MASTER_PORT: String(port),
      CRB_NUM_THREADS: process.env.CRB_NUM_THREADS ?? String(threads),
    };
    // Its own process group: a terminal's Ctrl-C reaches the ranks once, forwarded from here,
    // not twice (the CLI's train reads a second Ctrl-C as "quit without saving").
    const child = spawn(process.execPath, args, { env, stdio: 'inherit', detached: true });
    children.push(child);
    return new Promise<number>((resolve) => {
      child.on('error', (e) => {
        err.write(`launch: rank ${rank}: could not start ${process.execPath} ${args.join(' ')}: ${e.message}\n`);
        resolve(1);
      });
      child.on('exit', (code, signal) => {
        const status = code ?? (signal ? 128 + (os.constants.signals[signal] ?? 1) : 1);
        if (status !== 0 && failed === null && !ending) {
          failed = { rank, code: status };
          err.write(`launch: rank ${rank} exited with ${code !== null ? `code ${code}` : `signal ${signal}`}; ending the other ranks\n`);
          endAll('SIGTERM');
          killTimer();
        }
        resolve(status);
      });
    });
  });
  try {
    const codes = await Promise.all(exits);
    if (failed !== null) return (failed as { code: number }).code;
    return codes.find((c) => c !== 0) ?? 0;
  } finally {
    process.removeListener('SIGINT', sigint);
    process.removeListener('SIGTERM', sigterm);
    process.removeListener('exit', onExit);
  }
}
