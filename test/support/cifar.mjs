// A synthetic CIFAR-10 in the official binary layout, for the CLI tests.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** CIFAR-10's binary layout: label byte + 3072 CHW bytes per record; class c is bright in channel c % 3. */
export function writeCifar10(dir, perFile) {
  fs.mkdirSync(dir, { recursive: true });
  let k = 0;
  const file = (name) => {
    const buf = Buffer.alloc(perFile * 3073);
    for (let r = 0; r < perFile; r++, k++) {
      const label = k % 10;
      buf[r * 3073] = label;
      for (let p = 0; p < 3072; p++) buf[r * 3073 + 1 + p] = ((p >> 10) === label % 3 ? 180 : 40) + ((k * 7 + p) % 50);
    }
    fs.writeFileSync(path.join(dir, name), buf);
  };
  for (let i = 1; i <= 5; i++) file(`data_batch_${i}.bin`);
  file('test_batch.bin');
}

