// Bad sizes never kill the process (issue #10): an output the addon computes that cannot exist is
// a RangeError naming the argument responsible, one that could exist but does not fit is an
// OutOfMemoryError, and a read that does not fit in a JS typed array is an OutOfMemoryError
// (a rejected Promise for toArray). Each case runs in a child process (it used to crash).
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const child = fileURLToPath(new URL('./support/bad-sizes-child.cjs', import.meta.url));
function run(name, env = {}) {
  const r = spawnSync(process.execPath, [child, name], {
    encoding: 'utf8',
    env: { ...process.env, CUDNN_RESBLOCK_DEVICE: 'cpu', ...env },
  });
  expect(r.status, `case ${name} exited with ${r.status} (signal ${r.signal}): ${r.stderr}`).to.equal(0);
  return JSON.parse(r.stdout);
}

const limits = /every dimension at most 2147483647 and at most 2\^53 elements/;

describe('bad sizes (issue #10)', function () {
  this.timeout(60000);

  describe('impossible outputs are RangeErrors naming the argument', () => {
    for (const [name, arg, received] of [
      ['adaptiveScalar', 'outputSize', '[2147483647, 2147483647]'],
      ['adaptivePair', 'outputSize', '[1073741824, 1073741824]'],
      ['convPadding', 'padding', '[1000000000, 1000000000]'],
      ['conv2dModule', 'padding', '[1000000000, 1000000000]'],
      ['imagesSize', 'size', '[2147483647, 2147483647]'],
    ]) {
      it(`${name}: "${arg}"`, () => {
        const e = run(name);
        expect(e.name).to.equal('RangeError');
        expect(e.message).to.include(`argument "${arg}"`).and.include(`received ${received}`);
        expect(e.message).to.match(limits);
      });
    }

    it('creation functions with huge shapes', () => {
      for (const name of ['emptyHuge', 'randnHuge']) {
        const e = run(name);
        expect(e.name, name).to.equal('RangeError');
        expect(e.message, name).to.include('argument "shape"').and.include('at most 2^53 elements');
      }
    });
  });

  it('a possible but too large output is an OutOfMemoryError (2^44 bytes)', () => {
    for (const name of ['adaptiveOom', 'emptyOom']) {
      const e = run(name);
      expect(e.name, name).to.equal('OutOfMemoryError');
      expect(e.message, name).to.include('17592186044416 bytes');
    }
  });

  describe('reads larger than a typed array are OutOfMemoryErrors', () => {
    const env = { CRB_TEST_MAX_ARRAY_LENGTH: '1000' }; // the test hook of Note [reads never abort]

    it('toArraySync throws (float32 and widened float16)', () => {
      for (const name of ['readSync', 'readHalfSync']) {
        const e = run(name, env);
        expect(e.name, name).to.equal('OutOfMemoryError');
        expect(e.message, name).to.include('Float32Array of 2000 elements').and.include('typed-array limit of 1000');
      }
      expect(run('readSmall', env).returned).to.equal('1000');
    });

    it('toArray rejects its Promise instead of throwing', () => {
      const e = run('readAsync', env);
      expect(e.threwSync, 'threw synchronously').to.equal(undefined);
      expect(e.name).to.equal('OutOfMemoryError');
      expect(e.message).to.include('Uint8Array of 2000 elements');
    });

    it('save and saveAsync throw and write no file', () => {
      for (const name of ['save', 'saveAsync']) {
        const e = run(name, env); // Linear(40, 40).weight has 1600 elements
        expect(e.name, name).to.equal('OutOfMemoryError');
      }
    });
  });
});
