'use strict';
// The fuzz parent: runs cases [0, cases) of a seed in batches in child processes (a few at a
// time), pins every crash (signal, V8 fatal error, heap exhaustion) and hang to the case that was
// running, resumes after it in a fresh child, and collects one record per case.
//
//   node test/support/fuzz/runner.cjs [--seed N] [--cases N] [--parallel N] [--json out.json]
//   (CRB_FUZZ_SEED / CRB_FUZZ_CASES override the defaults too)
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const CHILD = path.join(__dirname, 'child.cjs');
const REPRO = 'test/support/fuzz/repro.cjs';

function reproLine(seed, id) {
  return `CRB_FUZZ_SEED=${seed} node ${REPRO} ${id}`;
}

/**
 * Runs a campaign. Options: seed, cases, parallel (children at a time), batch (cases per child),
 * caseTimeoutMs, heapMb (--max-old-space-size of a child), vmemKb (ulimit -v of a child).
 */
async function runCampaign(opts = {}) {
  const seed = opts.seed >>> 0;
  const cases = opts.cases ?? 3000;
  const parallel = opts.parallel ?? 2;
  const batch = opts.batch ?? 400;
  const caseTimeoutMs = opts.caseTimeoutMs ?? 5000;
  const heapMb = opts.heapMb ?? 512;
  const vmemKb = opts.vmemKb ?? 3_000_000;
  const t0 = Date.now();
  const work = [];
  for (let a = 0; a < cases; a += batch) work.push([a, Math.min(cases, a + batch)]);
  const records = new Map();
  const events = []; // crashes, hangs, late errors: { id, kind, ... }
  const hangsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'crb-fuzz-parent-'));
  const hangsFile = path.join(hangsDir, 'hangs.json');
  const hangSigs = [];
  fs.writeFileSync(hangsFile, JSON.stringify({ signatures: hangSigs }));
  let children = 0;

  const runRange = (from, to) => new Promise((resolve) => {
    children++;
    const cmd = `ulimit -v ${vmemKb} 2>/dev/null; exec "${process.execPath}" --max-old-space-size=${heapMb} "${CHILD}" ${seed} ${from} ${to}`;
    const child = spawn('/bin/sh', ['-c', cmd], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CRB_FUZZ_HANGS: hangsFile, CRB_FUZZ_TMP: hangsDir, CRB_NUM_THREADS: process.env.CRB_NUM_THREADS ?? '1' },
    });
    let current = null; // the id started and not finished
    let started = false;
    let desc = null;
    let done = false;
    let killedFor = null;
    let timer = null;
    let out = '';
    let err = '';
    const arm = (ms) => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        killedFor = { id: current, kind: 'hang' };
        child.kill('SIGKILL');
      }, ms);
    };
    arm(30000); // start-up
    const onLine = (line) => {
      if (!line.startsWith('@@fuzz ')) return;
      const body = line.slice(7);
      if (body.startsWith('start ')) {
        started = true;
        current = Number(body.slice(6));
        desc = null;
        arm(caseTimeoutMs);
      } else if (body.startsWith('desc ')) {
        const sp = body.indexOf(' ', 5);
        desc = JSON.parse(body.slice(sp + 1));
      } else if (body === 'done') {
        done = true;
        clearTimeout(timer);
      } else {
        const r = JSON.parse(body);
        if (r.late) {
          events.push({ id: r.id, kind: 'late', cls: r.cls, msg: r.msg, desc: records.get(r.id)?.desc ?? desc?.desc, target: records.get(r.id)?.target ?? desc?.target, late: r.late });
        } else {
          records.set(r.id, r);
          current = null;
          clearTimeout(timer);
          arm(caseTimeoutMs * 4); // between cases (finalizers, setImmediate)
        }
      }
    };
    child.stdout.on('data', (d) => {
      out += d;
      let nl;
      while ((nl = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        try { onLine(line); } catch { /* a garbled line */ }
      }
    });
    child.stderr.on('data', (d) => { err = (err + d).slice(-4000); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children--;
      const stderrTail = err.trim().split('\n').slice(-6).join(' | ').slice(-600);
      let resumeAt = null;
      if (killedFor && killedFor.id !== null) {
        const sig = desc ? `${desc.target}|${desc.arg}|${desc.value}` : null;
        if (sig && !hangSigs.includes(sig)) { hangSigs.push(sig); fs.writeFileSync(hangsFile, JSON.stringify({ signatures: hangSigs })); }
        events.push({ id: killedFor.id, kind: 'hang', desc: desc?.desc, target: desc?.target, arg: desc?.arg, value: desc?.value, msg: `no result within ${caseTimeoutMs} ms; child killed` });
        resumeAt = killedFor.id + 1;
      } else if (!done) {
        const id = current;
        const fatal = /FATAL ERROR|Fatal process out of memory|heap out of memory|Check failed|Fatal error/.exec(err);
        const kind = signal ? 'crash' : 'exit';
        events.push({ id, kind, signal, code, desc: desc?.desc, target: desc?.target, arg: desc?.arg, value: desc?.value, fatal: fatal ? fatal[0] : null, msg: stderrTail });
        if (id !== null) resumeAt = id + 1;
        else if (!started) {
          // the child died before its first case (a broken install or fuzzer): give up on the range
          events[events.length - 1].desc = `child for cases ${from}..${to - 1} died before its first case`;
          resumeAt = null;
        } else {
          // died between cases: resume after the last finished case of this range
          let last = from - 1;
          for (let i = from; i < to; i++) if (records.has(i)) last = i;
          resumeAt = last + 1;
        }
      }
      resolve(resumeAt !== null && resumeAt < to ? [resumeAt, to] : null);
    });
  });

  const worker = async () => {
    for (;;) {
      const range = work.shift();
      if (!range) return;
      let r = range;
      while (r) r = await runRange(r[0], r[1]);
      if (opts.onProgress) opts.onProgress(records.size, cases);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  fs.rmSync(hangsDir, { recursive: true, force: true });
  // a canary: no case may touch the machine outside its directory
  try {
    if (!fs.statSync('/dev/null').isCharacterDevice()) events.push({ id: -1, kind: 'exit', code: 'canary', desc: '/dev/null is no longer a character device after the campaign', msg: 'a case wrote outside its directory' });
  } catch { /* no /dev/null to check */ }
  return summarize({ seed, cases, records, events, ms: Date.now() - t0 });
}

function summarize({ seed, cases, records, events, ms }) {
  const counts = {};
  const failures = [];
  for (const r of [...records.values()].sort((a, b) => a.id - b.id)) {
    const k = r.outcome === 'ok' ? 'ok' : r.outcome === 'skipped' ? 'skipped (known hang)' : (r.cls ?? 'error');
    counts[k] = (counts[k] ?? 0) + 1;
    if (r.failure) failures.push({ id: r.id, kind: r.failure.startsWith('untyped') ? 'untyped' : 'wrong', what: r.failure, target: r.target, arg: r.arg, desc: r.desc, cls: r.cls, msg: r.msg, repro: reproLine(seed, r.id) });
  }
  for (const e of events) {
    const k = e.kind === 'crash' ? `crash (${e.signal})` : e.kind === 'exit' ? `child exited (code ${e.code})` : e.kind === 'hang' ? 'hang' : `late ${e.late}`;
    counts[k] = (counts[k] ?? 0) + 1;
    failures.push({ id: e.id, kind: e.kind, what: k + (e.fatal ? `: ${e.fatal}` : ''), target: e.target, desc: e.desc ?? `(case ${e.id})`, cls: e.cls, msg: e.msg, repro: reproLine(seed, e.id) });
  }
  failures.sort((a, b) => a.id - b.id);
  return { seed, cases, ran: records.size + events.filter((e) => e.kind !== 'late').length, ms, counts, failures, records: [...records.values()] };
}

/** A message with the case-specific parts (paths, shapes, numbers, argument names) blanked. */
function normalize(msg) {
  return String(msg ?? '')
    .replace(/x{20,}/g, '<long>')
    .replace(/(safetensors|save: cannot write|load) [^:]*?(:| entry)/, '$1 <file>$2')
    .replace(/\S*\/\S*/g, '<path>')
    .replace(/\(.*\)/g, '(…)')
    .replace(/\[[^\]]*\]/g, '[…]')
    .replace(/"[^"]*"/g, '"…"')
    .replace(/ for [\w.:\[\]…" ]+? but received/g, ' for <arg> but received')
    .replace(/-?\d+(\.\d+)?(e[+-]?\d+)?/g, 'N')
    .slice(0, 140);
}

/**
 * Failures grouped by what went wrong (kind, class, normalized message); crashes and hangs by
 * target, argument and value. Each group keeps its first case and the targets it was seen in.
 */
function groupFailures(failures) {
  const groups = new Map();
  for (const f of failures) {
    const key = f.kind === 'hang' || f.kind === 'crash' || f.kind === 'exit'
      ? `${f.what} | ${f.target} | ${String(f.desc).replace(/^.*<- /, '')}`
      : f.kind === 'wrong' ? `${f.what} | ${f.target} | ${String(f.arg ?? '').replace(/\[\d+\]/g, '[i]')}`
        : `${f.what} | ${f.cls ?? ''} | ${normalize(f.msg).slice(0, 60)}`;
    if (!groups.has(key)) groups.set(key, { key, what: f.what, cls: f.cls, msg: f.msg, n: 0, first: f, targets: new Set() });
    const g = groups.get(key);
    g.n++;
    if (f.target) g.targets.add(f.target);
  }
  const order = (g) => ({ crash: 0, exit: 1, hang: 2, late: 3, untyped: 4, wrong: 5 }[g.first.kind] ?? 6);
  return [...groups.values()].sort((a, b) => order(a) - order(b) || b.n - a.n);
}

function formatSummary(res) {
  const lines = [];
  lines.push(`fuzz: seed ${res.seed}, ${res.ran} of ${res.cases} cases in ${(res.ms / 1000).toFixed(1)} s`);
  lines.push('outcomes: ' + Object.entries(res.counts).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', '));
  const groups = groupFailures(res.failures);
  lines.push(`failures: ${res.failures.length} in ${groups.length} groups`);
  for (const g of groups) {
    const f = g.first;
    const where = f.kind === 'wrong' ? ` (${f.target}${f.arg ? `, ${f.arg}` : ''})` : '';
    lines.push(`- [${g.n}x] ${g.what}${where}${g.cls ? ` — ${g.cls}` : ''}${f.msg ? `: ${String(f.msg).replace(/\s+/g, ' ').slice(0, 220)}` : ''}`);
    if (g.targets.size > 1) lines.push(`    in: ${[...g.targets].slice(0, 12).join(', ')}${g.targets.size > 12 ? ', …' : ''}`);
    lines.push(`    case ${f.id}: ${String(f.desc).slice(0, 400)}`);
    lines.push(`    repro: ${f.repro}`);
  }
  return lines.join('\n');
}

module.exports = { runCampaign, formatSummary, groupFailures, reproLine };

if (require.main === module) {
  const argv = process.argv.slice(2);
  const get = (name, def) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] : def; };
  const seed = Number(get('seed', process.env.CRB_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31)));
  const cases = Number(get('cases', process.env.CRB_FUZZ_CASES ?? 3000));
  const parallel = Number(get('parallel', 2));
  const json = get('json', null);
  console.log(`fuzz: seed ${seed} (CRB_FUZZ_SEED=${seed} to repeat), ${cases} cases, ${parallel} children`);
  runCampaign({ seed, cases, parallel, caseTimeoutMs: Number(get('timeout', 5000)) }).then((res) => {
    console.log(formatSummary(res));
    if (json) fs.writeFileSync(json, JSON.stringify(res, null, 1));
    process.exitCode = res.failures.length ? 1 : 0;
  });
}
