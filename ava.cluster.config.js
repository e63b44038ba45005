import base from './ava.config.js';

/**
 * `npm run test:cluster`: the fault test on a real MariaDB Galera cluster
 * (three mariadbd processes, two app nodes, a worker). It takes minutes, so
 * `npm test` leaves it out.
 */
export default { ...base, files: ['test/cluster/**/*.test.ts'], timeout: '12m', concurrency: 1 };
