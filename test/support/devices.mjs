// One test body for every backend: forEachDevice runs `body(device)` in a describe per device.
// Without a usable GPU the CUDA suite is skipped with the reason printed; with REQUIRE_CUDA=1 it
// fails instead.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const lib = require('../../dist/index.js');

export function cudaStatus() {
  const info = lib.backendInfo().cuda;
  return { available: info.available, reason: info.reason ?? 'unknown', hint: info.hint ?? '' };
}

export function forEachDevice(title, body) {
  describe(`${title} [cpu]`, function () {
    body('cpu');
  });
  describe(`${title} [cuda] @cuda`, function () {
    const status = cudaStatus();
    if (!status.available) {
      if (process.env.REQUIRE_CUDA === '1') {
        it('has a usable CUDA device (REQUIRE_CUDA=1)', function () {
          throw new Error(`CUDA required but unavailable: ${status.reason}`);
        });
        return;
      }
      before(function () {
        console.log(`      skipped: CUDA unavailable: ${status.reason}`);
        this.skip();
      });
    }
    body('cuda');
  });
}

export const maxRelErr = (a, b) => {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(Number(a[i]) - Number(b[i])));
    den = Math.max(den, Math.abs(Number(b[i])));
  }
  return num / Math.max(den, 1e-12);
};
