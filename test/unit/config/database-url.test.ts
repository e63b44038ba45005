import test from 'ava';
import { describeDatabase, maskDatabaseUrl, parseDatabaseUrl } from '../../../server/config/index.js';

test('sqlite URLs resolve relative paths against the base folder', (t) => {
  t.deepEqual(parseDatabaseUrl('sqlite:var/slidebank.sqlite', '/srv/app'), { client: 'sqlite', filename: '/srv/app/var/slidebank.sqlite' });
  t.deepEqual(parseDatabaseUrl('sqlite:/data/x.sqlite', '/srv/app'), { client: 'sqlite', filename: '/data/x.sqlite' });
  t.deepEqual(parseDatabaseUrl('sqlite:///data/x.sqlite', '/srv/app'), { client: 'sqlite', filename: '/data/x.sqlite' });
  t.throws(() => parseDatabaseUrl('sqlite://var/x.sqlite', '/'), { message: /ambiguous/ });
  t.throws(() => parseDatabaseUrl('sqlite::memory:', '/'), { message: /names no database file/ });
});

test('mariadb URLs give host, port, user, decoded password and database', (t) => {
  t.deepEqual(parseDatabaseUrl('mariadb://slide%40bank:p%3Ass%2Fw@db.hospital.local:3307/slidebank', '/'), {
    client: 'mariadb',
    host: 'db.hospital.local',
    port: 3307,
    user: 'slide@bank',
    password: 'p:ss/w',
    database: 'slidebank',
  });
  t.like(parseDatabaseUrl('mysql://root@127.0.0.1/test', '/'), { client: 'mariadb', port: 3306, password: '' });
  t.like(parseDatabaseUrl('mariadb://app@localhost/sb?socketPath=/run/mysqld/mysqld.sock', '/'), {
    socketPath: '/run/mysqld/mysqld.sock',
  });
});

test('malformed mariadb URLs say what is missing', (t) => {
  t.throws(() => parseDatabaseUrl('mariadb://127.0.0.1:3306/test', '/'), { message: /names no user/ });
  t.throws(() => parseDatabaseUrl('mariadb://root@127.0.0.1:3306/', '/'), { message: /must name exactly one database/ });
  t.throws(() => parseDatabaseUrl('mariadb://root@h/a/b', '/'), { message: /must name exactly one database/ });
  t.throws(() => parseDatabaseUrl('mariadb://root@h/db?ssl=1', '/'), { message: /unknown parameter "ssl"/ });
  t.throws(() => parseDatabaseUrl('redis://h', '/'), { message: /unsupported scheme "redis:"/ });
});

test('error messages and descriptions never show the password', (t) => {
  const url = 'mariadb://app:s3cret@db:3306/sb';
  t.is(maskDatabaseUrl(url), 'mariadb://app:****@db:3306/sb');
  t.is(maskDatabaseUrl('mariadb://app@db/sb'), 'mariadb://app@db/sb');
  t.is(describeDatabase(parseDatabaseUrl(url, '/')), 'mariadb app@db:3306/sb');
  const error = t.throws(() => parseDatabaseUrl('mariadb://app:s3cret@db:3306', '/'));
  t.false(error.message.includes('s3cret'));
});
