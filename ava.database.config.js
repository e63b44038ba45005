import base from './ava.config.js';
import { databaseTestFiles } from './test/support/test-files.js';

/**
 * `npm run test:db`: the files that use the test database, for the run on
 * MariaDB (TEST_DATABASE_URL); the rest do not depend on it and run once, in
 * `npm test`.
 */
export default { ...base, files: databaseTestFiles() };
