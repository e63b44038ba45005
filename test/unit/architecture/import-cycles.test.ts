import test from 'ava';
import madge from 'madge';
import { packageRoot } from '../../../server/package-info.js';

// A cycle (type-only imports included) means two modules each need the other: one of them holds a piece that belongs in a module of its own.
test('no module of the server imports itself through others', async (t) => {
  const graph = await madge('server', { baseDir: packageRoot, fileExtensions: ['ts'], tsConfig: `${packageRoot}/tsconfig.json` });
  t.true(Object.keys(graph.obj()).length > 300, 'the whole server was read');
  t.deepEqual(graph.warnings().skipped, [], 'every import was resolved');
  t.deepEqual(graph.circular(), []);
});
