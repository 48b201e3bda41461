// The whole suite, numbered files in order. The reporter ends with "N passed, N failed, N skipped".
module.exports = {
  spec: ['test/*.test.mjs'],
  reporter: require.resolve('./test/support/reporter.cjs'),
  timeout: 120000,
  slow: 5000,
};
