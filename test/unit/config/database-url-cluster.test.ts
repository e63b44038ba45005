import test from 'ava';
import { describeDatabase, parseDatabaseUrl } from '../../../server/config/index.js';

/** DATABASE_URL naming the nodes of a Galera cluster: the first is the node's own, the others are where it fails over to. */

test('a list of hosts names the first as the server and the others to fail over to', (t) => {
  const target = parseDatabaseUrl('mariadb://app:s%40cret@db1.example:3307,db2.example,[fd00::3]:3308/slidebank', '/');
  t.like(target, { client: 'mariadb', host: 'db1.example', port: 3307, user: 'app', password: 's@cret', database: 'slidebank' });
  t.deepEqual(target.client === 'mariadb' ? target.failover : undefined, [
    { host: 'db2.example', port: 3306 },
    { host: 'fd00::3', port: 3308 },
  ]);
  t.is(describeDatabase(target), 'mariadb app@db1.example:3307,db2.example:3306,fd00::3:3308/slidebank');
});

test('one host has no fail-over list', (t) => {
  const target = parseDatabaseUrl('mariadb://app@db1.example/slidebank', '/');
  t.is(target.client === 'mariadb' ? target.failover : 'sqlite', undefined);
});

test('a bad host in the list is refused with the URL (password masked) and the host', (t) => {
  t.throws(() => parseDatabaseUrl('mariadb://app:secret@db1:3306,db2:99999/slidebank', '/'), {
    message: '"mariadb://app:****@db1:3306,db2:99999/slidebank" has an invalid host "db2:99999" in its list of hosts',
  });
});
