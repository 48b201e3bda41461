// Runs `node cli ...args` and sends it SIGINT at its first progress line (stderr is not a TTY,
// so train prints "step i/n" lines): what a user's Ctrl-C does once training has started.
import { spawn } from 'node:child_process';

export async function interruptAtFirstStep(cli, args, options = {}) {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  let stderr = '';
  let stdout = '';
  let sent = false;
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => {
    stderr += d;
    if (!sent && /step \d+\/\d+/.test(stderr)) {
      sent = true;
      child.kill('SIGINT');
    }
  });
  const t = performance.now();
  const code = await new Promise((resolve) => child.on('exit', (c) => resolve(c)));
  return { code, sent, stdout, stderr, ms: performance.now() - t };
}
