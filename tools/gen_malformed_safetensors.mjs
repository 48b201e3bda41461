#!/usr/bin/env node
// Writes test/fixtures/malformed-safetensors/: small safetensors files, each with one distinct
// defect, plus valid ones, and index.json saying what each is and what a load must report.
// Deterministic (no randomness, no clock): running it again gives the same bytes.
//
// The files use the state-dict names of `new Sequential(new Conv2d(1, 2, 1), new BatchNorm2d(2))`
// (see VALID below), so many of them "almost" fit that model: right names, one thing wrong.
// test/24.checkpoint-robustness.test.mjs loads every file into that model and checks that each
// malformed one throws a CheckpointError whose message matches `match`, leaving the model as it
// was, and that each valid one loads.
//
//   node tools/gen_malformed_safetensors.mjs [outDir]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT = path.resolve(process.argv[2] ?? path.join(ROOT, 'test/fixtures/malformed-safetensors'));

// --- the valid checkpoint: names, dtypes, shapes and values

const TENSORS = [
  // name, dtype, shape, values (layout order of the reference writer: I64 first, then F32 by name)
  ['1.num_batches_tracked', 'I64', [], [3n]],
  ['0.bias', 'F32', [2], [0.5, -0.25]],
  ['0.weight', 'F32', [2, 1, 1, 1], [1.5, -2]],
  ['1.bias', 'F32', [2], [0.125, 0.75]],
  ['1.running_mean', 'F32', [2], [0.1, -0.1]],
  ['1.running_var', 'F32', [2], [1.25, 0.875]],
  ['1.weight', 'F32', [2], [2, 3]],
];

function tensorBytes(dtype, values) {
  if (dtype === 'I64') return Buffer.from(BigInt64Array.from(values).buffer);
  if (dtype === 'F64') return Buffer.from(Float64Array.from(values).buffer);
  if (dtype === 'F32') return Buffer.from(Float32Array.from(values).buffer);
  if (dtype === 'U8') return Buffer.from(Uint8Array.from(values));
  throw new Error(dtype);
}

/** { header (object, insertion order kept), data (Buffer) } for a list of tensors. */
function layout(tensors, metadata) {
  const header = {};
  if (metadata) header.__metadata__ = metadata;
  const chunks = [];
  let offset = 0;
  for (const [name, dtype, shape, values] of tensors) {
    const bytes = tensorBytes(dtype, values);
    header[name] = { dtype, shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  return { header, data: Buffer.concat(chunks) };
}

function pad(json) {
  const b = Buffer.from(json, 'utf8');
  return b.length % 8 ? Buffer.concat([b, Buffer.alloc(8 - (b.length % 8), 0x20)]) : b;
}

function lengthField(n) {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

/** A file from raw header bytes (written as they are) and data. */
function raw(headerBytes, data = Buffer.alloc(0), length = headerBytes.length) {
  return Buffer.concat([lengthField(length), headerBytes, data]);
}

/** A file from a header given as JSON text (padded to 8 like the reference writer) and data. */
function fromText(text, data = Buffer.alloc(0)) {
  return raw(pad(text), data);
}

function fromHeader(header, data) {
  return fromText(JSON.stringify(header), data);
}

const VALID = layout(TENSORS, { format: 'pt' });
const validFile = fromHeader(VALID.header, VALID.data);

/** The valid header with `edit(header)` applied (a deep copy), and the valid data. */
function edited(edit, data = VALID.data) {
  const header = JSON.parse(JSON.stringify(VALID.header));
  edit(header);
  return fromHeader(header, data);
}

/** The valid header's JSON text with a textual replacement (for what JSON.stringify cannot write). */
function replaced(from, to, data = VALID.data) {
  const text = JSON.stringify(VALID.header);
  if (!text.includes(from)) throw new Error(`no ${from} in the header`);
  return fromText(text.replace(from, to), data);
}

const W = '0.weight';

// --- the corpus: [file name, defect, bytes, regex source the error message must match]
const cases = [];
const add = (name, defect, bytes, match) => cases.push({ name, defect, bytes, match });

// the length field and the file's size
add('empty', 'an empty file', Buffer.alloc(0), 'truncated: 0 bytes');
add('seven-bytes', '7 bytes: shorter than the length field', Buffer.from([8, 0, 0, 0, 0, 0, 0]), 'truncated: 7 bytes');
add('length-only-zero', 'only a length field, of 0', lengthField(0), 'header length 0 is too short');
add('length-one', 'header length 1', raw(Buffer.from('{')), 'header length 1 is too short');
add('length-beyond-file', 'header length larger than the rest of the file', raw(Buffer.from('{}      '), Buffer.alloc(0), 100), 'header length 100 is beyond the end of the file');
add('length-off-by-one', 'header length one byte past the end', raw(pad(JSON.stringify(VALID.header)), VALID.data, pad(JSON.stringify(VALID.header)).length + VALID.data.length + 1), 'beyond the end of the file');
add('length-2-63', 'header length 2^63', Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 0, 0x80]), Buffer.from('{}      ')]), 'header length 9223372036854775808 is beyond');
add('length-max-u64', 'header length 2^64 - 1', Buffer.concat([Buffer.alloc(8, 0xff), Buffer.from('{}      ')]), 'header length 18446744073709551615 is beyond');
add('length-only', 'a length field and nothing after it', lengthField(56), 'header length 56 is beyond the end of the file \\(0 bytes');
add('header-cut', 'the file ends inside the header', validFile.subarray(0, 40), 'beyond the end of the file');
add('data-cut', 'the file ends 5 bytes before the data does', validFile.subarray(0, validFile.length - 5), 'out of range: the data region has');
add('trailing-garbage-after-data', 'bytes after the last tensor', Buffer.concat([validFile, Buffer.from('garbage!')]), '8 trailing bytes after the last tensor');

// the header's encoding and JSON
add('bom', 'a UTF-8 byte order mark before the JSON', raw(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), pad(JSON.stringify(VALID.header))]), VALID.data), 'byte order mark');
add('not-json', 'a header that is not JSON', fromText('hello, world'), 'must be a JSON object starting with');
add('not-json-object-syntax', 'a header that starts like an object but is not JSON', fromText('{hello}'), 'not valid JSON');
add('json-array', 'a JSON array header', fromText('[{"dtype":"F32","shape":[2],"data_offsets":[0,8]}]', Buffer.alloc(8)), 'must be a JSON object');
add('json-string', 'a JSON string header', fromText('"{}"'), 'must be a JSON object');
add('json-number', 'a JSON number header', fromText('12345678'), 'must be a JSON object');
add('json-null', 'a JSON null header', fromText('null'), 'must be a JSON object');
add('json-truncated', 'a header cut in the middle of the JSON', fromText(JSON.stringify(VALID.header).slice(0, 60)), 'not valid JSON');
add('invalid-utf8', 'a header that is not UTF-8', raw(Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d])), 'not valid UTF-8');
add('trailing-garbage-in-header', 'text after the JSON object in the header', fromText(`${JSON.stringify(VALID.header)} xyz`, VALID.data), 'not valid JSON');
add('nul-padding', 'header padded with NUL bytes instead of spaces', raw(Buffer.concat([Buffer.from(JSON.stringify(VALID.header)), Buffer.alloc(8 - (JSON.stringify(VALID.header).length % 8) || 8)]), VALID.data), 'not valid JSON');
add('control-char-in-name', 'a raw newline inside a tensor name', replaced('"0.bias"', '"0.\nbias"'), 'not valid JSON');
add('two-objects', 'two JSON objects back to back', fromText(`${JSON.stringify(VALID.header)}{}`, VALID.data), 'not valid JSON');

// nesting and structure bombs (small files; the reader must reject them before building them)
add('depth-bomb-arrays', 'arrays nested 10,000 deep', fromText(`{"a":${'['.repeat(10000)}${']'.repeat(10000)}}`), 'an array inside an array');
add('depth-bomb-arrays-unclosed', '5,000 unclosed arrays', fromText(`{"a":${'['.repeat(5000)}`), 'an array inside an array');
add('depth-bomb-objects', 'objects nested 2,000 deep', fromText(`${'{"a":'.repeat(2000)}0${'}'.repeat(2000)}`), 'nests too deep');
add('depth-bomb-in-entry', 'a deep array in an extra field of a real entry', replaced('"data_offsets":[0,8]', `"data_offsets":[0,8],"extra":${'['.repeat(3000)}${']'.repeat(3000)}`), 'an array inside an array');
add('depth-bomb-in-metadata', 'a nested object as a metadata value', replaced('"format":"pt"', `"format":${'{"a":'.repeat(500)}"x"${'}'.repeat(500)}`), 'nests too deep');
add('array-of-objects', 'an array of empty objects in an entry', replaced('"shape":[2]', `"shape":[${'{},'.repeat(300)}{}]`), 'an object inside an array');
add('long-array', 'a 1,000-element array', replaced('"shape":[2]', `"shape":[${'1,'.repeat(999)}2]`), 'array of more than 64 elements');

// duplicate keys (JSON.parse would keep the last silently)
add('duplicate-tensor', 'the same tensor name twice', replaced('"0.bias":', '"0.bias":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"0.bias":'), 'duplicate key "0.bias"');
add('duplicate-tensor-escaped', 'the same name twice, once spelt with \\u escapes', replaced('"1.weight":', '"\\u0031.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"1.weight":'), 'duplicate key "1.weight"');
add('duplicate-field', 'dtype given twice in one entry', replaced('"dtype":"F32"', '"dtype":"F64","dtype":"F32"'), 'duplicate key "dtype"');
add('duplicate-metadata-section', '__metadata__ given twice', replaced('"__metadata__":{"format":"pt"}', '"__metadata__":{"format":"pt"},"__metadata__":{"x":"y"}'), 'duplicate key "__metadata__"');
add('duplicate-metadata-key', 'a metadata key given twice', replaced('"format":"pt"', '"format":"pt","format":"np"'), 'duplicate key "format"');

// names that look like object internals (valid files that do not fit the model)
add('proto-extra', 'an extra tensor named __proto__', edited((h) => { Object.defineProperty(h, '__proto__', { value: { dtype: 'F32', shape: [0], data_offsets: [0, 0] }, enumerable: true, writable: true, configurable: true }); }), 'unexpected keys: __proto__');
add('proto-instead', '__proto__ in place of 0.bias', replaced('"0.bias":', '"__proto__":'), 'missing keys: 0\\.bias[\\s\\S]*unexpected keys: __proto__');
add('constructor-extra', 'an extra tensor named constructor', edited((h) => { h.constructor = { dtype: 'F32', shape: [0], data_offsets: [0, 0] }; }), 'unexpected keys: constructor');
add('lone-surrogate-name', 'a name with a lone surrogate escape', replaced('"1.bias":', '"1.bias\\ud800":'), 'missing keys: 1\\.bias');

// dtype
add('dtype-unknown', 'an unknown dtype', replaced('"dtype":"F32"', '"dtype":"Q7"'), 'unknown dtype "Q7"');
add('dtype-unsupported', 'a dtype of the format we do not read (BOOL)', replaced('"dtype":"F32","shape":[2]', '"dtype":"BOOL","shape":[8]'), 'unknown dtype "BOOL" \\(valid safetensors, but not supported here\\)');
add('dtype-lowercase', 'a dtype in lower case', replaced('"dtype":"F32"', '"dtype":"f32"'), 'unknown dtype "f32"');
add('dtype-number', 'a dtype that is a number', replaced('"dtype":"F32"', '"dtype":4'), 'dtype must be a string, found 4');
add('dtype-missing', 'an entry without a dtype', replaced('"dtype":"F32",', ''), 'dtype must be a string, found nothing');

// shape
add('shape-negative', 'a negative dimension', replaced('"shape":[2]', '"shape":[-2]'), 'shape must be an array of non-negative integers');
add('shape-fraction', 'a fractional dimension', replaced('"shape":[2]', '"shape":[1.5]'), 'number 1\\.5 in an array');
add('shape-float', 'a dimension written 2.0', replaced('"shape":[2]', '"shape":[2.0]'), 'number 2\\.0 in an array');
add('shape-exponent', 'a dimension written 2e0', replaced('"shape":[2]', '"shape":[2e0]'), 'number 2e0 in an array');
add('shape-string', 'a dimension that is a string', replaced('"shape":[2]', '"shape":["2"]'), 'shape must be an array of non-negative integers, found \\["2"\\]');
add('shape-not-array', 'a shape that is a number', replaced('"shape":[2]', '"shape":2'), 'shape must be an array of non-negative integers, found 2');
add('shape-missing', 'an entry without a shape', replaced('"shape":[2],', ''), 'shape must be an array of non-negative integers, found nothing');
add('shape-nested', 'a shape of arrays', replaced('"shape":[2]', '"shape":[[2]]'), 'an array inside an array');
add('shape-overflow-zero', 'dimensions whose product overflows before a 0', replaced('"shape":[2]', '"shape":[4294967296,4294967296,0]'), 'has more elements than a file can hold');
add('shape-overflow', 'dimensions whose product is past 2^53', replaced('"shape":[2]', '"shape":[134217728,134217728,134217728]'), 'has more elements than a file can hold');
add('shape-unsafe-dim', 'a dimension past 2^53', replaced('"shape":[2]', '"shape":[9007199254740993]'), 'shape must be an array of non-negative integers');
add('shape-65-dims', '65 dimensions of 1', replaced('"shape":[2]', `"shape":[${'1,'.repeat(64)}2]`), 'array of more than 64 elements');
add('shape-wrong-bytes', 'a shape that needs more bytes than the offsets give', replaced('"shape":[2]', '"shape":[3]'), 'holds 8 bytes but shape \\[3\\] of F32 needs 12');

// data_offsets
add('offsets-past-end', 'an end past the data region', edited((h) => { h['1.weight'].data_offsets = [52, 64]; }), 'out of range: the data region has 56 bytes');
add('offsets-overlap', 'two tensors sharing bytes', edited((h) => { h['1.weight'].data_offsets = [40, 48]; }), 'overlap those of');
add('offsets-reversed', 'end before begin', edited((h) => { h['0.bias'].data_offsets = [16, 8]; }), 'data_offsets \\[16, 8\\] end before they begin');
add('offsets-gap', 'a gap left between tensors', edited((h) => { h['1.running_mean'].shape = [1]; h['1.running_mean'].data_offsets = [32, 36]; }), 'entry "1\\.running_var": data_offsets \\[40, 48\\] leave a gap of 4 bytes after byte 36');
add('offsets-not-covering', 'the tensors do not reach the end of the data', edited((h) => { h['1.weight'].shape = [1]; h['1.weight'].data_offsets = [48, 52]; }), '4 trailing bytes after the last tensor');
add('offsets-three', 'three data_offsets', replaced('"data_offsets":[0,8]', '"data_offsets":[0,8,8]'), 'data_offsets must be \\[begin, end\\]');
add('offsets-negative', 'a negative offset', replaced('"data_offsets":[8,16]', '"data_offsets":[-8,0]'), 'data_offsets must be \\[begin, end\\]');
add('offsets-float', 'an offset written 8.0', replaced('"data_offsets":[8,16]', '"data_offsets":[8.0,16]'), 'number 8\\.0 in an array');
add('offsets-unsafe', 'an offset past 2^53', replaced('"data_offsets":[8,16]', '"data_offsets":[9007199254740993,9007199254741001]'), 'data_offsets must be \\[begin, end\\]');
add('offsets-missing', 'an entry without data_offsets', replaced(',"data_offsets":[0,8]', ''), 'data_offsets must be \\[begin, end\\]');
add('offsets-string', 'offsets that are strings', replaced('"data_offsets":[8,16]', '"data_offsets":["8","16"]'), 'data_offsets must be \\[begin, end\\]');

// entries
add('entry-number', 'an entry that is a number', replaced('"0.bias":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}', '"0.bias":8'), 'entry "0\\.bias": must be an object');
add('entry-array', 'an entry that is an array', replaced('"0.bias":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}', '"0.bias":["F32",[2],[8,16]]'), 'an array inside an array');
add('entry-null', 'an entry that is null', replaced('"0.bias":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}', '"0.bias":null'), 'entry "0\\.bias": must be an object');

// __metadata__
add('metadata-number', 'a metadata value that is a number', replaced('"format":"pt"', '"epoch":3'), '__metadata__\\["epoch"\\] must be a string, found number');
add('metadata-null', 'a metadata value that is null', replaced('"format":"pt"', '"format":null'), '__metadata__\\["format"\\] must be a string, found null');
add('metadata-array', '__metadata__ that is an array', replaced('{"format":"pt"}', '["pt"]'), '__metadata__ must be an object of strings');
add('metadata-string', '__metadata__ that is a string', replaced('{"format":"pt"}', '"pt"'), '__metadata__ must be an object of strings');

// valid safetensors that do not fit the model (an "almost" match)
add('fit-shape', '0.weight with shape [2, 1, 1, 1] stored as [1, 2, 1, 1]', edited((h) => { h[W].shape = [1, 2, 1, 1]; }), '0\\.weight: shape \\[1, 2, 1, 1\\] in the file, \\[2, 1, 1, 1\\] in the model');
add('fit-dtype', '1.num_batches_tracked stored as F64', edited((h) => { h['1.num_batches_tracked'].dtype = 'F64'; }), '1\\.num_batches_tracked: dtype F64 in the file, I64 \\(int64\\) in the model');
add('fit-missing', '1.running_var left out', (() => { const t = TENSORS.filter(([n]) => n !== '1.running_var'); const l = layout(t, { format: 'pt' }); return fromHeader(l.header, l.data); })(), 'missing keys: 1\\.running_var');
add('fit-extra', 'an extra tensor 2.weight', (() => { const l = layout([...TENSORS, ['2.weight', 'F32', [1], [1]]]); return fromHeader(l.header, l.data); })(), 'unexpected keys: 2\\.weight');
add('fit-no-tensors', 'a header with only __metadata__', fromText('{"__metadata__":{"format":"pt"}}'), 'missing keys: 0\\.weight');
add('fit-empty-object', 'an empty header object', fromText('{}'), 'missing keys: 0\\.weight');

// valid files that fit: these must load
const valid = [
  { name: 'valid', defect: null, bytes: validFile },
  { name: 'valid-proto-metadata', defect: null, bytes: replaced('"format":"pt"', '"format":"pt","__proto__":"x","constructor":"y"') },
  { name: 'valid-unpadded', defect: null, bytes: raw(Buffer.from(JSON.stringify(VALID.header)), VALID.data) },
];

fs.rmSync(OUT, { recursive: true, force: true });
fs.mkdirSync(OUT, { recursive: true });
const index = [];
const names = new Set();
cases.forEach((c, i) => {
  const file = `${String(i + 1).padStart(2, '0')}-${c.name}.safetensors`;
  if (names.has(c.name)) throw new Error(`duplicate case ${c.name}`);
  names.add(c.name);
  if (!Buffer.isBuffer(c.bytes)) throw new Error(`case ${c.name}: no bytes`);
  fs.writeFileSync(path.join(OUT, file), c.bytes);
  index.push({ file, defect: c.defect, error: 'CheckpointError', match: c.match });
});
for (const v of valid) {
  const file = `${v.name}.safetensors`;
  fs.writeFileSync(path.join(OUT, file), v.bytes);
  index.push({ file, defect: null, valid: true });
}
const values = Object.fromEntries(TENSORS.map(([name, , , vals]) => [name, vals.map((v) => (typeof v === 'bigint' ? Number(v) : Math.fround(v)))]));
fs.writeFileSync(path.join(OUT, 'index.json'), `${JSON.stringify({
  generator: 'tools/gen_malformed_safetensors.mjs',
  model: 'new Sequential(new Conv2d(1, 2, 1), new BatchNorm2d(2))',
  values,
  files: index,
}, null, 1)}\n`);
const total = index.reduce((n, e) => n + fs.statSync(path.join(OUT, e.file)).size, 0);
console.log(`${cases.length} malformed + ${valid.length} valid files, ${total} bytes, in ${path.relative(ROOT, OUT)}`);
