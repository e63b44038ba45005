import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * An independent BagIt check written from RFC 8493 for the tests, sharing no
 * code with server/bagit: it returns every problem it finds (an empty list is
 * a valid, complete bag) so tests compare against the RFC, not the exporter.
 */
export function rfc8493Problems(bag: string): string[] {
  const problems: string[] = [];
  const read = (name: string): Buffer | undefined => {
    try {
      return readFileSync(path.join(bag, name));
    } catch {
      return undefined;
    }
  };
  // §2.1.1: bagit.txt, exactly two lines, no BOM.
  const declaration = read('bagit.txt');
  if (!declaration) return ['bagit.txt is missing'];
  if (declaration[0] === 0xef && declaration[1] === 0xbb && declaration[2] === 0xbf) problems.push('bagit.txt has a BOM');
  const declLines = declaration.toString('utf8').split(/\r\n|\r|\n/).filter((l) => l !== '');
  if (declLines[0] !== 'BagIt-Version: 1.0' || declLines[1] !== 'Tag-File-Character-Encoding: UTF-8' || declLines.length !== 2) {
    problems.push(`bagit.txt is not the 1.0 declaration: ${JSON.stringify(declLines)}`);
  }
  // §2.1.2: the payload directory.
  if (!statSync(path.join(bag, 'data'), { throwIfNoEntry: false })?.isDirectory()) problems.push('data/ is missing');

  // §2.1.3: manifest-<alg>.txt lines "checksum<ws>filepath", %-encoded CR/LF/%.
  const decode = (p: string) => p.replace(/%0A/gi, '\n').replace(/%0D/gi, '\r').replace(/%25/g, '%');
  const parse = (text: string) =>
    text
      .split(/\r\n|\n/)
      .filter((l) => l.length > 0)
      .map((line) => {
        const m = /^(\S+)\s+(.*)$/.exec(line);
        return m ? { sum: m[1]!.toLowerCase(), file: decode(m[2]!) } : { sum: '', file: line };
      });
  const manifestFiles = readdirSync(bag).filter((n) => /^manifest-[a-z0-9]+\.txt$/.test(n));
  if (manifestFiles.length === 0) problems.push('no payload manifest');
  const payloadFiles: string[] = [];
  const walk = (rel: string) => {
    for (const entry of readdirSync(path.join(bag, rel), { withFileTypes: true })) {
      const child = `${rel}/${entry.name}`;
      if (entry.isDirectory()) walk(child);
      else payloadFiles.push(child);
    }
  };
  if (problems.every((p) => p !== 'data/ is missing')) walk('data');
  const hashOf = (alg: string, file: string) => createHash(alg).update(readFileSync(path.join(bag, file))).digest('hex');

  const fetchText = read('fetch.txt')?.toString('utf8');
  const fetchPaths = new Set(
    (fetchText ?? '')
      .split(/\r\n|\n/)
      .filter((l) => l !== '')
      .map((l) => decode(l.split(/\s+/).slice(2).join(' '))),
  );
  for (const manifest of manifestFiles) {
    const alg = /^manifest-(.+)\.txt$/.exec(manifest)![1]!;
    const entries = parse(read(manifest)!.toString('utf8'));
    const listed = new Set(entries.map((e) => e.file));
    // §3: every payload file listed in every manifest, and every listed file present and matching.
    for (const file of payloadFiles) if (!listed.has(file)) problems.push(`${file} not in ${manifest}`);
    for (const { sum, file } of entries) {
      if (!file.startsWith('data/')) problems.push(`${manifest} lists ${file} outside data/`);
      else if (!payloadFiles.includes(file)) problems.push(fetchPaths.has(file) ? `${file} not yet fetched` : `${file} missing`);
      else if (hashOf(alg, file) !== sum) problems.push(`${file} checksum mismatch`);
    }
  }
  // §2.2.2: bag-info.txt Payload-Oxum.
  const info = read('bag-info.txt')?.toString('utf8');
  const oxum = info && /^Payload-Oxum:\s*(\d+)\.(\d+)\s*$/m.exec(info);
  if (oxum && fetchPaths.size === 0) {
    const bytes = payloadFiles.reduce((sum, f) => sum + statSync(path.join(bag, f)).size, 0);
    if (Number(oxum[1]) !== bytes || Number(oxum[2]) !== payloadFiles.length) problems.push(`Payload-Oxum ${oxum[1]}.${oxum[2]} but payload is ${bytes}.${payloadFiles.length}`);
  }
  // §2.2.1: tag manifests.
  for (const tagManifest of readdirSync(bag).filter((n) => /^tagmanifest-[a-z0-9]+\.txt$/.test(n))) {
    const alg = /^tagmanifest-(.+)\.txt$/.exec(tagManifest)![1]!;
    for (const { sum, file } of parse(read(tagManifest)!.toString('utf8'))) {
      if (!read(file)) problems.push(`tag file ${file} missing`);
      else if (hashOf(alg, file) !== sum) problems.push(`tag file ${file} checksum mismatch`);
    }
  }
  return problems;
}
