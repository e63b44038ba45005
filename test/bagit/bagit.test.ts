import { createHash, randomBytes } from 'node:crypto';
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import {
  BagError,
  SIGNATURE_FILE,
  generateSigningKey,
  parseTagFile,
  signingKeyFromPem,
  validateBag,
  writeBag,
  type PayloadItem,
  type TrustedKey,
} from '../../server/bagit/index.js';
import { rfc8493Problems } from './rfc8493-check.js';

const site = generateSigningKey();
const siteKey = signingKeyFromPem(site.privatePem);
const trusted: TrustedKey[] = [{ name: 'origin', publicKey: site.publicKey }];

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-bagit-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A bag with two copied files (checksums given, as the catalog gives them) and two made for the bag. */
async function sampleBag(t: ExecutionContext, extra: Partial<{ holey: boolean; sign: boolean }> = {}): Promise<{ bag: string; files: Record<string, Buffer> }> {
  const dir = await tempDir(t);
  const files: Record<string, Buffer> = { 'slides/a.svs': randomBytes(300_000), 'slides/b 100%.svs': randomBytes(1234) };
  const payload: PayloadItem[] = [];
  for (const [name, bytes] of Object.entries(files)) {
    const source = path.join(dir, `source-${Object.keys(files).indexOf(name)}`);
    await writeFile(source, bytes);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    payload.push({
      path: name,
      source: extra.holey && name === 'slides/a.svs' ? { url: 'http://origin.example/api/slides/1/files/slide', sha256, size: bytes.length } : { file: source, sha256, size: bytes.length },
    });
  }
  payload.push({ path: 'metadata.json', source: { content: '{"schemaVersion":1}\n' } });
  payload.push({ path: 'LICENSE', source: { content: 'CC BY-NC 4.0\n' } });
  const bag = path.join(dir, 'bag');
  await writeBag(bag, payload, {
    info: [['Source-Organization', 'Origin Hospital'], ['External-Identifier', 'demo@1']],
    ...(extra.sign === false ? {} : { sign: { key: siteKey, signer: 'Origin Hospital' } }),
    now: new Date('2026-11-29T10:00:00Z'),
  });
  return { bag, files };
}

async function refusal(t: ExecutionContext, promise: Promise<unknown>): Promise<BagError> {
  const error = await t.throwsAsync(promise);
  t.true(error instanceof BagError, String(error));
  return error as BagError;
}

test('a written bag passes an independent RFC 8493 check and validates with its signature', async (t) => {
  const { bag } = await sampleBag(t);
  t.deepEqual(rfc8493Problems(bag), []);
  t.is(await readFile(path.join(bag, 'bagit.txt'), 'utf8'), 'BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n');
  const info = parseTagFile(await readFile(path.join(bag, 'bag-info.txt'), 'utf8'), 'bag-info.txt');
  t.deepEqual(Object.fromEntries(info), {
    'Source-Organization': 'Origin Hospital',
    'External-Identifier': 'demo@1',
    'Bagging-Date': '2026-11-29',
    'Payload-Oxum': `${300_000 + 1234 + 20 + 13}.4`,
  });
  t.regex(await readFile(path.join(bag, 'manifest-sha256.txt'), 'utf8'), /[0-9a-f]{64} {2}data\/slides\/b 100%25\.svs\n/);
  const progress: number[] = [];
  const valid = await validateBag(bag, { trustedKeys: trusted, onProgress: (done) => progress.push(done) });
  t.is(valid.signedBy?.name, 'origin');
  t.is(progress.at(-1), 300_000 + 1234 + 20 + 13);
  t.deepEqual(valid.payload.map((p) => p.path).sort(), ['data/LICENSE', 'data/metadata.json', 'data/slides/a.svs', 'data/slides/b 100%.svs']);
});

test('one flipped byte in a payload file is refused, naming the file', async (t) => {
  const { bag, files } = await sampleBag(t);
  const file = path.join(bag, 'data', 'slides', 'a.svs');
  const bytes = Buffer.from(files['slides/a.svs']!);
  bytes[123_456] = bytes[123_456]! ^ 0x01;
  await writeFile(file, bytes);
  const error = await refusal(t, validateBag(bag, { trustedKeys: trusted }));
  t.is(error.code, 'checksum_mismatch');
  t.is(error.file, 'data/slides/a.svs');
  t.regex(error.message, /data\/slides\/a\.svs does not match its checksum/);
  t.true(rfc8493Problems(bag).includes('data/slides/a.svs checksum mismatch'), 'the independent check agrees');
});

test('a missing payload file, an extra one and a truncated one are each refused by name', async (t) => {
  const missing = await sampleBag(t);
  await rm(path.join(missing.bag, 'data', 'LICENSE'));
  let error = await refusal(t, validateBag(missing.bag));
  t.like(error, { code: 'missing_file', file: 'data/LICENSE' });
  t.regex(error.message, /data\/LICENSE is in manifest-sha256\.txt but missing/);

  const extra = await sampleBag(t);
  await writeFile(path.join(extra.bag, 'data', 'slides', 'stray.txt'), 'x');
  error = await refusal(t, validateBag(extra.bag));
  t.like(error, { code: 'extra_file', file: 'data/slides/stray.txt' });
  t.regex(error.message, /data\/slides\/stray\.txt is in the bag but not in manifest-sha256\.txt/);

  const truncated = await sampleBag(t);
  await writeFile(path.join(truncated.bag, 'data', 'slides', 'a.svs'), truncated.files['slides/a.svs']!.subarray(0, 1000));
  error = await refusal(t, validateBag(truncated.bag));
  t.like(error, { code: 'oxum_mismatch', file: 'bag-info.txt' });
  t.regex(error.message, /Payload-Oxum says \d+ bytes in 4 files, the payload has \d+ bytes in 4 files/);
});

test('a wrong Payload-Oxum is refused even when the payload is intact', async (t) => {
  const { bag } = await sampleBag(t);
  const infoFile = path.join(bag, 'bag-info.txt');
  await writeFile(infoFile, (await readFile(infoFile, 'utf8')).replace(/Payload-Oxum: (\d+)\.4/, (_m, n: string) => `Payload-Oxum: ${Number(n) + 1}.4`));
  const error = await refusal(t, validateBag(bag));
  t.like(error, { code: 'oxum_mismatch', file: 'bag-info.txt' });
  t.regex(error.message, /Payload-Oxum says \d+ bytes in 4 files, the payload has \d+ bytes in 4 files/);
});

test('an altered tag file is refused by the tag manifest', async (t) => {
  const { bag } = await sampleBag(t);
  await appendFile(path.join(bag, 'bag-info.txt'), 'Contact-Name: Mallory\n');
  const error = await refusal(t, validateBag(bag));
  t.like(error, { code: 'checksum_mismatch', file: 'bag-info.txt' });
});

test('signatures: missing, untrusted, forged and re-signed tag manifests are refused precisely', async (t) => {
  const unsigned = await sampleBag(t, { sign: false });
  t.like(await refusal(t, validateBag(unsigned.bag, { trustedKeys: trusted })), { code: 'signature_missing', file: SIGNATURE_FILE });
  await t.notThrowsAsync(validateBag(unsigned.bag), 'without trusted keys a signature is not asked for');

  const { bag } = await sampleBag(t);
  const stranger = generateSigningKey();
  const error = await refusal(t, validateBag(bag, { trustedKeys: [{ name: 'other', publicKey: stranger.publicKey }] }));
  t.is(error.code, 'signature_untrusted');
  t.regex(error.message, /Origin Hospital/);

  // Someone changes bag-info.txt, fixes the tag manifest, and keeps the old signature.
  const forged = await sampleBag(t);
  const infoFile = path.join(forged.bag, 'bag-info.txt');
  const info = `${await readFile(infoFile, 'utf8')}Contact-Name: Mallory\n`;
  await writeFile(infoFile, info);
  const tagManifestFile = path.join(forged.bag, 'tagmanifest-sha256.txt');
  const tagManifest = (await readFile(tagManifestFile, 'utf8')).replace(/^[0-9a-f]{64}(?= {2}bag-info\.txt$)/m, createHash('sha256').update(info).digest('hex'));
  await writeFile(tagManifestFile, tagManifest);
  const invalid = await refusal(t, validateBag(forged.bag, { trustedKeys: trusted }));
  t.like(invalid, { code: 'signature_invalid', file: SIGNATURE_FILE });
  t.regex(invalid.message, /the signature does not match tagmanifest-sha256\.txt/);

  // And a stranger's signature over it with the trusted signer's name is still a stranger's.
  const sig = path.join(forged.bag, SIGNATURE_FILE);
  const strangerKey = signingKeyFromPem(stranger.privatePem);
  const { signTagManifest } = await import('../../server/bagit/index.js');
  await writeFile(sig, signTagManifest(Buffer.from(tagManifest), strangerKey, 'Origin Hospital'));
  t.like(await refusal(t, validateBag(forged.bag, { trustedKeys: trusted })), { code: 'signature_untrusted' });
});

test('a holey bag lists its missing files in fetch.txt; it validates only once they are fetched', async (t) => {
  const { bag, files } = await sampleBag(t, { holey: true });
  t.regex(await readFile(path.join(bag, 'fetch.txt'), 'utf8'), /^http:\/\/origin\.example\/api\/slides\/1\/files\/slide 300000 data\/slides\/a\.svs\n$/);
  t.like(await refusal(t, validateBag(bag)), { code: 'incomplete', file: 'data/slides/a.svs' });
  const holey = await validateBag(bag, { allowHoles: true, trustedKeys: trusted });
  t.deepEqual(holey.holes, ['data/slides/a.svs']);
  await writeFile(path.join(bag, 'data', 'slides', 'a.svs'), files['slides/a.svs']!);
  t.deepEqual(rfc8493Problems(bag), []);
  await t.notThrowsAsync(validateBag(bag, { trustedKeys: trusted }));
});

test('manifest paths that leave the bag, and links inside it, are refused', async (t) => {
  const { bag } = await sampleBag(t, { sign: false });
  const manifestFile = path.join(bag, 'manifest-sha256.txt');
  await appendFile(manifestFile, `${'0'.repeat(64)}  data/../../etc/passwd\n`);
  t.like(await refusal(t, validateBag(bag)), { code: 'unsafe_path' });

  const other = await sampleBag(t, { sign: false });
  const { symlink } = await import('node:fs/promises');
  await mkdir(path.join(other.bag, 'data', 'more'));
  await symlink('/etc/hostname', path.join(other.bag, 'data', 'more', 'link'));
  t.like(await refusal(t, validateBag(other.bag)), { code: 'unsafe_path', file: 'data/more/link' });
});

test('a folder that is not a bag, and a bad declaration, say so', async (t) => {
  const dir = await tempDir(t);
  t.like(await refusal(t, validateBag(dir)), { code: 'not_a_bag', file: 'bagit.txt' });
  const { bag } = await sampleBag(t);
  await writeFile(path.join(bag, 'bagit.txt'), '\uFEFFBagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n');
  t.like(await refusal(t, validateBag(bag)), { code: 'bad_tag_file', file: 'bagit.txt' });
});

test('tag values continue over indented lines, and a bag is never left half-written', async (t) => {
  t.deepEqual(parseTagFile('External-Description: one\n  two\nBag-Count: 1 of 2\n', 'bag-info.txt'), [
    ['External-Description', 'one two'],
    ['Bag-Count', '1 of 2'],
  ]);
  const dir = await tempDir(t);
  const bag = path.join(dir, 'bag');
  await t.throwsAsync(writeBag(bag, [{ path: 'x', source: { file: path.join(dir, 'absent'), sha256: '0'.repeat(64), size: 1 } }], { info: [] }));
  const { readdir } = await import('node:fs/promises');
  t.deepEqual(await readdir(dir), [], 'neither the bag nor its partial folder is left behind');
});
