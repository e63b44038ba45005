/**
 * Slides the slide engine does not read but OpenSlide does (MIRAX, Leica SCN,
 * Ventana BIF, Philips TIFF, Hamamatsu VMS/VMU, Sakura, Trestle): converted at
 * ingest by libvips (`vips`, whose openslideload reads them through
 * OpenSlide) into a tiled pyramidal TIFF with JPEG tiles and only the
 * pyramid, which then goes through the same de-identification and
 * verification as any TIFF. The converter runs as a program of its own, in
 * its own process group, with a time limit and a bounded address space
 * (prlimit), and writes into a temporary folder that is removed whatever
 * happens.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { IdentifyingValue } from './deidentify/identifiers.js';
import { Refusal } from './refusal.js';
import type { ConversionReport, ConversionSettings } from './ingest-settings.js';

export type { ConversionReport, ConversionSettings };

/** The Debian packages that provide the converter and OpenSlide's own tools. */
export const CONVERTER_PACKAGES = 'libvips-tools (vips, vipsheader) and openslide-tools';

/** File extensions of the formats only OpenSlide reads, each with the format's name as the catalog records it. */
export const OPENSLIDE_EXTENSIONS: Readonly<Record<string, string>> = {
  '.mrxs': 'mrxs',
  '.vms': 'vms',
  '.vmu': 'vmu',
  '.scn': 'scn',
  '.bif': 'bif',
  '.svslide': 'svslide',
};

/** OpenSlide's vendor names, with the format each one's files are. */
const VENDOR_FORMATS: Readonly<Record<string, string>> = {
  mirax: 'mrxs',
  leica: 'scn',
  ventana: 'bif',
  philips: 'philips-tiff',
  sakura: 'svslide',
  trestle: 'trestle-tiff',
  aperio: 'svs',
  'generic-tiff': 'tiff',
};

/** The configuration's defaults, for callers that give no settings. */
export const DEFAULT_CONVERSION: ConversionSettings = { converter: 'vips', quality: 90, timeoutSeconds: 1800, memoryMegabytes: 4096 };

/** What OpenSlide says of a slide: its vendor and properties. */
export interface OpenSlideInfo {
  vendor: string;
  /** The format's name as the catalog records it (`vms`, `mrxs`, `scn`, …). */
  format: string;
  properties: Map<string, string>;
}

/** What a conversion made, for the catalog and the de-identification report. */
export interface Conversion {
  /** The converted TIFF, in a temporary folder. */
  file: string;
  /** The temporary folder, removed by the caller when done. */
  folder: string;
  info: OpenSlideInfo;
  quality: number;
  mppX: number | null;
  mppY: number | null;
  objectivePower: number | null;
}

/** Property names (after the vendor's prefix) whose values identify the slide, the patient, the scanner or when it was scanned. */
const IDENTIFYING_PROPERTY = /(barcode|slideid|slide_id|label|serial|s\/n|reference|date|time|created|updated|user|operator|name|uuid|id$|comment|description|institution|hospital|case|patient|accession|filename|path)/i;
/** OpenSlide's own properties that are derived geometry or hashes, never the vendor's text. */
const OPENSLIDE_DERIVED = /^openslide\.(level|mpp|objective-power|quickhash|vendor|bounds|background-color)/;

/** The identifying values among a slide's OpenSlide properties, to be searched for in every byte of the published file. */
export function vendorIdentifiers(info: OpenSlideInfo): IdentifyingValue[] {
  const found: IdentifyingValue[] = [];
  for (const [key, value] of info.properties) {
    if (OPENSLIDE_DERIVED.test(key) || value.trim() === '') continue;
    const name = key.includes('.') ? key.slice(key.indexOf('.') + 1) : key;
    if (IDENTIFYING_PROPERTY.test(name)) found.push({ source: `${info.vendor} property ${name}`, value: value.trim() });
  }
  return found;
}

/**
 * OpenSlide's view of a file (through `vipsheader`), or undefined when
 * OpenSlide cannot open it. Refuses the slide when the tools are missing.
 */
export async function openSlideInfo(file: string, settings: Pick<ConversionSettings, 'converter' | 'timeoutSeconds'>): Promise<OpenSlideInfo | undefined> {
  const header = headerCommand(settings.converter);
  let result: RunResult;
  try {
    result = await run(header, ['-a', `${file}[level=0]`], { timeoutMs: 60_000, env: {} });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw missingTools(header);
    throw error;
  }
  if (result.code !== 0) return undefined;
  const properties = new Map<string, string>();
  let loader = '';
  for (const line of result.stdout.split('\n')) {
    const colon = line.indexOf(': ');
    if (colon <= 0) continue;
    const key = line.slice(0, colon);
    const value = line.slice(colon + 2);
    if (key === 'vips-loader') loader = value;
    if (/^[a-z-]+\./.test(key) && key !== 'vips-loader') properties.set(key, value);
  }
  const vendor = properties.get('openslide.vendor');
  if (loader !== 'openslideload' || !vendor) return undefined;
  const extension = path.extname(file).toLowerCase();
  const format = OPENSLIDE_EXTENSIONS[extension] ?? VENDOR_FORMATS[vendor] ?? vendor;
  return { vendor, format, properties };
}

/** `vipsheader` beside the configured `vips`. */
function headerCommand(converter: string): string {
  return path.basename(converter) === 'vips' ? path.join(path.dirname(converter), 'vipsheader').replace(/^\.\//, '') : 'vipsheader';
}

function missingTools(command: string): Refusal {
  return new Refusal(
    'refused',
    `this slide is in a format only OpenSlide reads, and ${command} is not installed to convert it: install the Debian packages ${CONVERTER_PACKAGES} and ingest it again`,
  );
}

/**
 * Converts the slide into a tiled pyramidal TIFF (256-pixel JPEG tiles at the
 * configured quality, BigTIFF, no metadata but the resolution) in a new
 * temporary folder inside `workDir`. On any failure the folder is removed and
 * the slide quarantined with the reason.
 */
export async function convertSlide(
  input: string,
  info: OpenSlideInfo,
  workDir: string,
  settings: ConversionSettings,
  onProgress?: (percent: number) => void,
): Promise<Conversion> {
  const folder = await mkdtemp(path.join(workDir, '.convert-'));
  const output = path.join(folder, 'converted.tif');
  const mpp = (axis: 'x' | 'y') => positive(info.properties.get(`openslide.mpp-${axis}`));
  const mppX = mpp('x');
  const mppY = mpp('y');
  // vips counts resolution in pixels per millimetre; the TIFF gets pixels per centimetre.
  const options = [
    'tile',
    'pyramid',
    'bigtiff',
    'strip',
    'compression=jpeg',
    `Q=${settings.quality}`,
    'tile-width=256',
    'tile-height=256',
    'resunit=cm',
    ...(mppX && mppY ? [`xres=${1000 / mppX}`, `yres=${1000 / mppY}`] : []),
  ];
  // OpenSlide gives transparent pixels where the scanner scanned nothing: flattened onto white, as viewers show them.
  const args = ['flatten', `${input}[level=0]`, `${output}[${options.join(',')}]`, '--background', '255', '--vips-progress', '--vips-concurrency=2'];
  const limit = `--as=${settings.memoryMegabytes * 1024 * 1024}`;
  let result: RunResult;
  try {
    result = await run('prlimit', [limit, '--', settings.converter, ...args], {
      timeoutMs: settings.timeoutSeconds * 1000,
      env: { TMPDIR: folder },
      onOutput: (text) => {
        for (const match of text.matchAll(/(\d+)% complete/g)) onProgress?.(Number(match[1]));
      },
    });
  } catch (error) {
    await rm(folder, { recursive: true, force: true });
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw missingTools(settings.converter);
    throw error;
  }
  const made = await stat(output).catch(() => null);
  if (result.timedOut || result.code !== 0 || !made || made.size === 0) {
    await rm(folder, { recursive: true, force: true });
    const why = result.timedOut
      ? `did not finish within ${settings.timeoutSeconds} s (ingest.conversionTimeoutSeconds) and was stopped`
      : result.code === 127
        ? `could not be started (${settings.converter} not found: install the Debian packages ${CONVERTER_PACKAGES})`
        : result.code !== 0
          ? `failed (${result.signal ? `killed by ${result.signal}` : `exit status ${result.code}`}${lastLine(result.stderr)})`
          : 'wrote no file';
    throw new Refusal('quarantined', `converting the ${info.format} slide to a tiled TIFF ${why}; nothing was published`, {
      conversion: conversionReport(info, settings.quality),
    });
  }
  // vips ends with "done", not with 100%.
  onProgress?.(100);
  return {
    file: output,
    folder,
    info,
    quality: settings.quality,
    mppX,
    mppY,
    objectivePower: positive(info.properties.get('openslide.objective-power')),
  };
}

export function conversionReport(info: OpenSlideInfo, quality: number): ConversionReport {
  return {
    reEncoded: true,
    vendor: info.vendor,
    format: info.format,
    tool: 'libvips openslideload (OpenSlide) → tiled pyramidal TIFF',
    quality,
    dropped: ['associated images (label, macro, thumbnail)', `the ${info.properties.size} OpenSlide properties`],
  };
}

function positive(value: string | undefined): number | null {
  const n = value === undefined ? NaN : Number(value);
  return Number.isFinite(n) && n > 0 ? n : null;
}

function lastLine(text: string): string {
  const line = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/% complete/.test(l))
    .at(-1);
  return line ? `: ${line.slice(0, 300)}` : '';
}

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

/** Runs a program in a process group of its own; past the time limit the whole group is killed. */
function run(
  command: string,
  args: string[],
  options: { timeoutMs: number; env: Record<string, string>; onOutput?: (text: string) => void },
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    // sharp, loaded in this process, sets VIPSHOME to its own libvips, where the system's vips would look for its OpenSlide module in vain.
    const { VIPSHOME: _sharpsVips, VIPS_BLOCK_UNTRUSTED: _blocked, ...env } = process.env;
    const child = spawn(command, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...env, ...options.env } });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const keep = (text: string, more: string) => (text + more).slice(-64 * 1024);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout = keep(stdout, chunk);
      options.onOutput?.(chunk);
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = keep(stderr, chunk);
      options.onOutput?.(chunk);
    });
    const killGroup = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, options.timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      // Anything the converter left running in its group goes with it.
      killGroup();
      resolve({ code, signal, timedOut, stdout, stderr });
    });
  });
}
