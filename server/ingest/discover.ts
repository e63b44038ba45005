import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { DICOM_FILE_EXTENSIONS, dicomSeriesFolders, lastChange } from './dicom-series.js';
import { sheetKey } from './metadata-sheet.js';

const SLIDE_EXTENSIONS = /\.(svs|tiff?|ndpi|mrxs|vms|vmu|scn|bif|svslide)$/i;
export const SHEET_NAME = 'metadata.csv';

export interface Candidate {
  /** The slide file's path. */
  file: string;
  /** Its file name, which is itself identifying: used only in messages to the curator, never stored beside a published slide. */
  fileName: string;
  key: string;
  xml: string | null;
  /** Set when the candidate cannot be taken in on its own terms (two slides share a base name). */
  clash: string | null;
  /** The other files of a multi-file slide (MRXS's data folder, the JPEGs a VMS or VMU index names), part of the original. */
  companions?: string[];
  /** Set when a multi-file slide lacks a part (an MRXS without its data folder): quarantined with this reason. */
  missing?: string | null;
}

export interface Folder {
  candidates: Candidate[];
  sheet: string | null;
  /** Files that are neither a slide, its XML nor the sheet, reported so nothing is ignored silently. */
  ignored: string[];
  /** XML files without a slide of the same base name. */
  orphanXml: string[];
  /** Slides left for a later run because they (or their XML) changed too recently: still being copied in. */
  unsettled: string[];
}

export interface DiscoverOptions {
  /** Leave slides whose file or XML changed less than this long ago (a scanner may still be writing them). */
  minAgeMs?: number;
  now?: Date;
}

/** The slides in a folder (not its subfolders, but for DICOM series folders), each with the XML of the same base name. */
export async function discoverFolder(dir: string, options: DiscoverOptions = {}): Promise<Folder> {
  const entries = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile() && !e.name.startsWith('.'));
  const xmlByKey = new Map<string, string>();
  for (const e of entries) if (/\.xml$/i.test(e.name)) xmlByKey.set(e.name.replace(/\.xml$/i, '').toLowerCase(), e.name);

  // A DICOM series is one slide: a single .dcm/.dicom file, or a sub-folder of its instances.
  const series = (await dicomSeriesFolders(dir)).map((name) => ({ name }));
  const slides = [...entries.filter((e) => SLIDE_EXTENSIONS.test(e.name) || DICOM_FILE_EXTENSIONS.test(e.name)), ...series].sort((a, b) => a.name.localeCompare(b.name));
  const byKey = new Map<string, string[]>();
  for (const e of slides) {
    const key = sheetKey(e.name);
    byKey.set(key, [...(byKey.get(key) ?? []), e.name]);
  }
  const candidates = slides.map((e): Candidate => {
    const key = sheetKey(e.name);
    const same = byKey.get(key)!;
    const xml = xmlByKey.get(xmlKey(e.name));
    return {
      file: path.join(dir, e.name),
      fileName: e.name,
      key,
      xml: xml ? path.join(dir, xml) : null,
      clash:
        same.length > 1
          ? `name clash: ${same.join(' and ')} share the base name, so their metadata row and XML are ambiguous; rename one`
          : null,
    };
  });
  for (const candidate of candidates) Object.assign(candidate, await multiFileParts(dir, candidate.fileName, entries));
  const unsettled: string[] = [];
  if (options.minAgeMs) {
    const cutoff = (options.now ?? new Date()).getTime() - options.minAgeMs;
    // A series folder is as recent as its newest instance (a file still being copied in changes, the folder does not).
    const recent = async (file: string | null) => file !== null && (await lastChange(file)) > cutoff;
    for (const candidate of [...candidates]) {
      if ((await recent(candidate.file)) || (await recent(candidate.xml))) {
        unsettled.push(candidate.fileName);
        candidates.splice(candidates.indexOf(candidate), 1);
      }
    }
  }
  const sheet = entries.find((e) => e.name.toLowerCase() === SHEET_NAME)?.name;
  const parts = candidates.flatMap((c) => (c.companions ?? []).map((f) => path.basename(f)));
  const used = new Set([...slides.map((e) => e.name), ...xmlByKey.values(), ...(sheet ? [sheet] : []), ...parts]);
  return {
    candidates,
    sheet: sheet ? path.join(dir, sheet) : null,
    ignored: entries.filter((e) => !used.has(e.name)).map((e) => e.name),
    orphanXml: [...xmlByKey.entries()].filter(([key]) => !slides.some((e) => xmlKey(e.name) === key)).map(([, name]) => name),
    unsettled,
  };
}

/** The base name an annotation XML shares with its slide (a multi-file slide's: its index file's). */
function xmlKey(fileName: string): string {
  return sheetKey(fileName).replace(/\.(mrxs|vms|vmu|scn|bif|svslide)$/i, '');
}

/**
 * The other files of a multi-file slide: an MRXS index's data folder (of the
 * same base name), or the files a VMS or VMU index names (image, map,
 * optimisation and macro files). One slide, never offered file by file.
 */
async function multiFileParts(dir: string, fileName: string, entries: { name: string; isFile(): boolean }[]): Promise<Pick<Candidate, 'companions' | 'missing'>> {
  const extension = path.extname(fileName).toLowerCase();
  if (extension === '.mrxs') {
    const folder = path.join(dir, fileName.slice(0, -extension.length));
    const found = await stat(folder).catch(() => null);
    if (!found?.isDirectory()) {
      return { companions: [], missing: `the MRXS index has no data folder ${path.basename(folder)}/ beside it (with Slidedat.ini and the Data*.dat files); copy the folder in and ingest again` };
    }
    return { companions: [folder], missing: null };
  }
  if (extension !== '.vms' && extension !== '.vmu') return {};
  const text = await readFile(path.join(dir, fileName), 'latin1').catch(() => '');
  const names = new Set<string>();
  for (const line of text.split(/\r?\n/)) {
    const match = /^\s*(ImageFile(?:\(\d+,\d+\))?|MapFile|OptimisationFile|MacroImage)\s*=\s*(.+?)\s*$/i.exec(line);
    if (match) names.add(path.basename(match[2]!));
  }
  const present = new Set(entries.filter((e) => e.isFile()).map((e) => e.name));
  const missing = [...names].filter((name) => !present.has(name));
  return {
    companions: [...names].filter((name) => present.has(name)).map((name) => path.join(dir, name)),
    missing: missing.length ? `the ${extension.slice(1).toUpperCase()} index names files that are not beside it: ${missing.join(', ')}` : null,
  };
}
