// Mocha reporter for `npm run check:gpu`: the suite's own reporter (spec + "N passed, N failed,
// N skipped"), and a JSON record of every test to the file named by CHECK_GPU_TESTS_JSON,
// rewritten after each test so that a run stopped by its time limit still leaves what ran.
// Each entry: { title, fullTitle, file, state: "passed" | "failed" | "skipped", durationMs, error }.
const fs = require('node:fs');
const path = require('node:path');
const Mocha = require('mocha');
const SpecWithSummary = require('../test/support/reporter.cjs');

const { EVENT_TEST_PASS, EVENT_TEST_FAIL, EVENT_TEST_PENDING, EVENT_RUN_END } = Mocha.Runner.constants;

class CheckGpuReporter extends SpecWithSummary {
  constructor(runner, options) {
    super(runner, options);
    const file = process.env.CHECK_GPU_TESTS_JSON;
    const root = path.resolve(__dirname, '..');
    const tests = [];
    const write = (done) => {
      if (!file) return;
      const count = (state) => tests.filter((t) => t.state === state).length;
      const record = { done, passed: count('passed'), failed: count('failed'), skipped: count('skipped'), tests };
      fs.writeFileSync(file, JSON.stringify(record, null, 1));
    };
    const add = (test, state, err) => {
      tests.push({
        title: test.title,
        fullTitle: test.fullTitle(),
        file: test.file ? path.relative(root, test.file) : null,
        state,
        durationMs: test.duration ?? null,
        error: err ? String(err.message ?? err).slice(0, 2000) : null,
      });
      write(false);
    };
    runner.on(EVENT_TEST_PASS, (test) => add(test, 'passed'));
    // A failing hook is reported as a failure of "<hook> for <test>": recorded the same way.
    runner.on(EVENT_TEST_FAIL, (test, err) => add(test, 'failed', err));
    runner.on(EVENT_TEST_PENDING, (test) => add(test, 'skipped'));
    runner.once(EVENT_RUN_END, () => write(true));
  }
}

module.exports = CheckGpuReporter;
