// Memory stays flat: intermediates are freed as soon as nothing needs them, and the garbage
// collector frees tensors nobody disposed. Each runs in a child process so RSS is its own.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const child = fileURLToPath(new URL('./support/memory-child.cjs', import.meta.url));
const run = (...args) => JSON.parse(execFileSync(process.execPath, [child, ...args], { encoding: 'utf8', env: { ...process.env, CUDNN_RESBLOCK_DEVICE: 'cpu' } }));
const MB = 1024 * 1024;

describe('memory', function () {
  it('10,000 training steps of a small network keep RSS flat (and the loss falls)', function () {
    this.timeout(300000);
    const { samples, first, last, cpu } = run('train', '10000');
    // After warm-up (second sample), RSS may not grow by more than 24 MB over 9,000 steps.
    const growth = samples.at(-1) - samples[1];
    expect(growth / MB, `RSS samples (MB): ${samples.map((s) => (s / MB).toFixed(1)).join(', ')}`).to.be.below(24);
    expect(last).to.be.below(first);
    // Only parameters, buffers, momentum and the two inputs are alive at the end.
    expect(cpu.allocated).to.be.below(64 * 1024);
  });

  // A loop that never awaits: before handles were freed during GC itself, 2,000 steps grew RSS
  // by ~32 MB (with or without dispose()) and 1,000 dropped 1 MB tensors by ~1 GB; now ~2 MB
  // and ~130 MB.
  for (const mode of ['sync-dispose', 'sync-keep']) {
    it(`2,000 synchronous training steps (${mode === 'sync-dispose' ? 'with' : 'without'} dispose()) keep RSS flat`, function () {
      this.timeout(120000);
      const { samples, cpu } = run(mode, '2000');
      const growth = samples.at(-1) - samples[1];
      expect(growth / MB, `RSS samples (MB): ${samples.map((s) => (s / MB).toFixed(1)).join(', ')}`).to.be.below(10);
      expect(cpu.allocated).to.be.below(64 * 1024);
    });
  }

  it('tensors dropped without dispose() in a synchronous loop are freed by garbage collection', function () {
    this.timeout(120000);
    const { samples } = run('sync-gc', '1000'); // 1 GB allocated in total
    expect(Math.max(...samples) / MB, `RSS samples (MB): ${samples.map((s) => (s / MB).toFixed(1)).join(', ')}`).to.be.below(400);
  });

  it('tensors dropped without dispose() are freed by garbage collection', function () {
    this.timeout(120000);
    const { samples } = run('gc', '500'); // 2 GB allocated in total
    expect(Math.max(...samples) / MB).to.be.below(1024);
  });
});
