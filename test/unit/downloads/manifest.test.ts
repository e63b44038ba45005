import test from 'ava';
import { normalizeSha256 } from '../../../server/downloads/checksums.js';
import { isSafeRelativePath, manifestTsv, parseManifest, ManifestError, type Manifest } from '../../../server/downloads/manifest.js';
import { etagFor } from '../../../server/downloads/range.js';
import { describeSelection } from '../../../server/downloads/selection.js';
import { bundlePath, sha256Manifest } from '../../../server/downloads/bundle-contents.js';
import { attachment, digestHeaders } from '../../../server/http/download-headers.js';

const HEX = 'ab'.repeat(32);

const manifest: Manifest = {
  format: 'slidebank-manifest',
  version: 1,
  generatedAt: new Date('2026-11-29T00:00:00.000Z'),
  selection: { filter: 'organ=CO' },
  licence: 'CC BY-NC 4.0',
  slides: 1,
  totalBytes: 15,
  files: [
    { slideId: 3, slide: 'SB1-CO-ADC-HE-WD-00-00-ABCDEFGHJK', kind: 'slide', path: 'slides/SB1-CO-ADC-HE-WD-00-00-ABCDEFGHJK.svs', href: '/api/slides/3/files/slide', url: 'http://h/api/slides/3/files/slide', size: 10, sha256: HEX },
    { slideId: 3, slide: 'SB1-CO-ADC-HE-WD-00-00-ABCDEFGHJK', kind: 'annotation', path: 'annotations/SB1-CO-ADC-HE-WD-00-00-ABCDEFGHJK.xml', href: '/api/slides/3/files/annotation', url: 'http://h/api/slides/3/files/annotation', size: 5, sha256: HEX.toUpperCase() },
  ],
};

test('the fetch client reads the server\'s JSON and TSV manifests alike', (t) => {
  const fromJson = parseManifest(JSON.stringify(manifest));
  const fromTsv = parseManifest(manifestTsv(manifest));
  t.is(fromJson.length, 2);
  t.like(fromJson[0], { path: manifest.files[0]!.path, href: '/api/slides/3/files/slide', size: 10, sha256: HEX });
  t.is(fromJson[1]!.sha256, HEX, 'checksums are lower-cased');
  t.deepEqual(
    fromTsv.map(({ path, url, size, sha256, slideId, kind }) => ({ path, url, size, sha256, slideId, kind })),
    fromJson.map(({ path, url, size, sha256, slideId, kind }) => ({ path, url, size, sha256, slideId, kind })),
  );
  t.is(parseManifest(`\uFEFF${manifestTsv(manifest).replace(/\n/g, '\r\n')}`).length, 2, 'a BOM and CRLF (a spreadsheet\'s save) are fine');
});

test('bad manifests are refused with the place of the problem', (t) => {
  t.throws(() => parseManifest('{"files": 3}'), { instanceOf: ManifestError, message: /no "files" list/ });
  t.throws(() => parseManifest('{not json'), { message: /not valid JSON/ });
  t.throws(() => parseManifest(JSON.stringify({ files: [{ path: 'a', size: -1, sha256: HEX, href: '/x' }] })), { message: /file 1 of the manifest: size/ });
  t.throws(() => parseManifest(JSON.stringify({ files: [{ path: 'a', size: 1, sha256: 'abc', href: '/x' }] })), { message: /sha256 must be 64 hex digits/ });
  t.throws(() => parseManifest(JSON.stringify({ files: [{ path: 'a', size: 1, sha256: HEX }] })), { message: /neither href nor url/ });
  t.throws(() => parseManifest('name\tsize\n'), { message: /no "url" column/ });
  t.throws(() => parseManifest('url\tsize\tsha256\tpath\nhttp://h/x\tlots\t\ta\n'), { message: /line 2 of the manifest: size/ });
});

test('only plain relative paths may be written by the fetch client', (t) => {
  for (const ok of ['slides/SB1-LV-HCC-HE-MD-00-00-7K3Q9P2M4T.svs', 'annotations/x.xml', 'a']) t.true(isSafeRelativePath(ok), ok);
  for (const bad of ['', '/etc/passwd', '../x', 'slides/../../x', 'slides//x', './x', 'slides/x y', 'C:\\x', 'slides/\u00e9.svs', 'a/'.repeat(300)]) {
    t.false(isSafeRelativePath(bad), bad);
  }
});

test('a selection is written down as slide ids, or as the canonical filter expression', (t) => {
  t.deepEqual(describeSelection({ kind: 'slides', ids: [3, 1] }), { slides: [3, 1] });
  t.deepEqual(describeSelection({ kind: 'filter', filter: { stain: ['IHC'], organ: ['CO', 'a;b'] } }), { filter: 'organ=CO,a%3Bb;stain=IHC' });
});

test('file headers: ETag, digests, Content-Disposition', (t) => {
  t.is(normalizeSha256(` ${HEX.toUpperCase()} `), HEX);
  t.is(normalizeSha256('abc'), null);
  t.is(normalizeSha256(null), null);
  t.is(etagFor(HEX), `"sha256-${HEX}"`);
  const sha = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'; // SHA-256 of nothing
  t.deepEqual(digestHeaders(sha), {
    'Repr-Digest': 'sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:',
    Digest: 'SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=',
    'X-Checksum-SHA256': sha,
  });
  t.is(attachment('SB1-LV-HCC-HE-MD-00-00-7K3Q9P2M4T.svs'), 'attachment; filename="SB1-LV-HCC-HE-MD-00-00-7K3Q9P2M4T.svs"');
  t.is(attachment('a"b\\c.svs'), `attachment; filename="a_b_c.svs"; filename*=UTF-8''a%22b%5Cc.svs`);
  t.is(attachment('슬라이드.svs'), `attachment; filename="____.svs"; filename*=UTF-8''%EC%8A%AC%EB%9D%BC%EC%9D%B4%EB%93%9C.svs`);
});

test('bundle paths keep the slide\'s extension; the checksum manifest is sha256sum -c format, sorted', (t) => {
  t.is(bundlePath({ name: 'N', filePath: 'N.svs' }, 'slide'), 'slides/N.svs');
  t.is(bundlePath({ name: 'N', filePath: 'sub/N.TIF' }, 'slide'), 'slides/N.tif');
  t.is(bundlePath({ name: 'N', filePath: 'N.svs' }, 'annotation'), 'annotations/N.xml');
  t.is(sha256Manifest([{ path: 'slides/b', sha256: HEX }, { path: 'README.txt', sha256: HEX }]), `${HEX}  README.txt\n${HEX}  slides/b\n`);
});
