import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { DICOM_FILE_EXTENSIONS, dicomSeriesFolders } from './dicom-series.js';
import { sheetKey } from './metadata-sheet.js';

const SLIDE_EXTENSIONS = /\.(svs|tiff?|ndpi)$/i;
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
    const xml = xmlByKey.get(key);
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
  const unsettled: string[] = [];
  if (options.minAgeMs) {
    const cutoff = (options.now ?? new Date()).getTime() - options.minAgeMs;
    const recent = async (file: string | null) => file !== null && (await stat(file)).mtimeMs > cutoff;
    for (const candidate of [...candidates]) {
      if ((await recent(candidate.file)) || (await recent(candidate.xml))) {
        unsettled.push(candidate.fileName);
        candidates.splice(candidates.indexOf(candidate), 1);
      }
    }
  }
  const sheet = entries.find((e) => e.name.toLowerCase() === SHEET_NAME)?.name;
  const used = new Set([...slides.map((e) => e.name), ...xmlByKey.values(), ...(sheet ? [sheet] : [])]);
  return {
    candidates,
    sheet: sheet ? path.join(dir, sheet) : null,
    ignored: entries.filter((e) => !used.has(e.name)).map((e) => e.name),
    orphanXml: [...xmlByKey.entries()].filter(([key]) => !byKey.has(key)).map(([, name]) => name),
    unsettled,
  };
}
