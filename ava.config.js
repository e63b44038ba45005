/**
 * The whole suite, `npm test`. `ava.database.config.js` narrows it to the
 * files whose outcome depends on the test database, `npm run test:db`.
 */
export default {
  files: ['test/**/*.test.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  workerThreads: false,
  timeout: '2m',
};
