import * as fs from 'node:fs';
import * as path from 'node:path';

let cached: string | undefined;
/** This package's version, from its package.json ("unknown" if that cannot be read). */
export function packageVersion(): string {
  if (cached === undefined) {
    try {
      cached = (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      cached = 'unknown';
    }
  }
  return cached;
}
