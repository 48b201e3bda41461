// Runs one case of test/36.bad-sizes.test.mjs in a child process, so a crash (SIGFPE, SIGSEGV,
// an abort) fails that case instead of the test run. Prints {name, message, ...} of what it threw.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const lib = require('../../dist/index.js');

const { functional: F, ones, full, empty, randn, Conv2d, Linear, normalizeImages, save } = lib;
const { saveAsync } = lib.io;
const images = () => full([1, 1, 2, 2], 7, { dtype: 'uint8' });
const tmp = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'crb-bad-sizes-')), 'model.safetensors');

const cases = {
  // impossible outputs (RangeError)
  adaptiveScalar: () => F.adaptiveAvgPool2d(ones([1, 1, 1, 1]), 2 ** 31 - 1),
  adaptivePair: () => F.adaptiveAvgPool2d(ones([4, 1, 1, 1]), [2 ** 30, 2 ** 30]),
  convPadding: () => F.conv2d(ones([1, 1, 1, 1]), ones([1, 1, 1, 1]), null, { padding: 1e9 }),
  conv2dModule: () => new Conv2d(1, 1, 1, { padding: 1e9 }).forward(ones([1, 1, 1, 1])),
  imagesSize: () => normalizeImages(images(), { size: 2 ** 31 - 1 }),
  emptyHuge: () => empty([2 ** 31 - 1, 2 ** 31 - 1, 2 ** 31 - 1]),
  randnHuge: () => randn([2 ** 27, 2 ** 27]),
  // possible but too large (OutOfMemoryError): 2^44 bytes
  adaptiveOom: () => F.adaptiveAvgPool2d(ones([1, 1, 1, 1]), [2 ** 21, 2 ** 21]),
  emptyOom: () => empty([2 ** 21, 2 ** 21]),
  // reads larger than a typed array (CRB_TEST_MAX_ARRAY_LENGTH=1000 in the test)
  readSync: () => full([2000], 1).toArraySync(),
  readHalfSync: () => full([2000], 1, { dtype: 'float16' }).toArraySync(),
  readAsync: () => {
    let promise;
    try {
      promise = full([2000], 1, { dtype: 'uint8' }).toArray();
    } catch (e) {
      return { threwSync: true, name: e.constructor.name, message: e.message };
    }
    return promise.then(() => ({ resolved: true }), (e) => { throw e; });
  },
  readSmall: () => full([1000], 2).toArraySync().length,
  save: () => {
    const file = tmp();
    try { save(new Linear(40, 40), file); } finally { if (fs.existsSync(file)) throw new Error('file written'); }
  },
  saveAsync: async () => {
    const file = tmp();
    try { await saveAsync(new Linear(40, 40), file); } finally { if (fs.existsSync(file)) throw new Error('file written'); }
  },
};

(async () => {
  let out;
  try {
    const value = await cases[process.argv[2]]();
    out = value && typeof value === 'object' && 'threwSync' in value ? value : { returned: String(value) };
  } catch (e) {
    out = { name: e.constructor.name, message: e.message, isRangeError: e instanceof RangeError };
  }
  process.stdout.write(JSON.stringify(out));
})();
