/**
 * The whole suite, `npm test`. `ava.database.config.js` narrows it to the
 * files whose outcome depends on the test database, `npm run test:db`.
 */
export default {
  // test/cluster/ (a Galera cluster, minutes long) runs on its own: `npm run test:cluster`.
  files: ['test/**/*.test.ts', '!test/cluster/**'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  workerThreads: false,
  timeout: '2m',
};
