import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { corrupt, WsiError } from '../../errors.js';
import { RandomAccessFile } from '../../tiff/file.js';
import type { AssociatedName } from '../format.js';
import { isDicomFile, readInstanceHeader, releaseHeader } from './dataset.js';
import { pixelFormat, unsupportedReason, type PixelFormat } from './decode.js';
import { concatenated, indexFrames, tileGrid, type FrameStore, type TileGrid } from './frames.js';
import { describeInstance, type DicomInstance, type OpticalPath } from './instance.js';
import { WSI_SOP_CLASS } from './syntax.js';

/** A folder of more instances than this is not one slide. */
const MAX_INSTANCES = 4096;
/** Media Storage Directory (DICOMDIR): an index of a folder, not an image. */
const DICOMDIR_SOP_CLASS = '1.2.840.10008.1.3.10';

/** One image of the series: a pyramid level or an associated image, with its frames indexed. */
export interface DicomImage {
  /** The instance, or the parts of its concatenation in order. */
  instances: DicomInstance[];
  width: number;
  height: number;
  tileWidth: number;
  tileHeight: number;
  format: PixelFormat;
  frames: FrameStore;
  grid: TileGrid;
}

export interface DicomSeries {
  /** Pyramid levels, largest first. */
  levels: DicomImage[];
  associated: Map<AssociatedName, DicomImage>;
  /** The optical path whose frames are read (the first of the largest level's Optical Path Sequence). */
  opticalPath: OpticalPath;
  opticalPathCount: number;
  /** Every instance read, in the order the series was read. */
  instances: DicomInstance[];
  /** Identifying attributes of the series (manufacturer, model, UIDs, …), kept out of the slide's properties. */
  identifying: Record<string, string>;
  /** The file of the largest level's (first) instance. */
  file: RandomAccessFile;
  /** Close every file the series opened, but `except`. */
  close(except?: RandomAccessFile): Promise<void>;
}

/** Where the associated images come from, by Image Type value 3. */
const ASSOCIATED: Record<string, AssociatedName> = { LABEL: 'label', OVERVIEW: 'macro', THUMBNAIL: 'thumbnail' };

/**
 * Open a DICOM whole-slide series: a folder holding its instances (one file
 * each, any names; files that are not DICOM are passed over), or a single
 * file. Only headers and offset tables are read. The pyramid is the VOLUME
 * instances, a level per distinct Total Pixel Matrix size, largest first;
 * LABEL, OVERVIEW and THUMBNAIL instances are the label, macro and thumbnail,
 * and a localizer stands in for a missing OVERVIEW as the macro.
 */
export async function openDicomSeries(path: string): Promise<DicomSeries> {
  const files: RandomAccessFile[] = [];
  try {
    const instances = await readInstances(path, files);
    const series = assemble(path, instances);
    const levels = await Promise.all(series.levels.map((parts) => indexImage(files, parts, series.opticalPath.id, 'level')));
    const associated = new Map<AssociatedName, DicomImage>();
    for (const [name, instance] of series.associated) {
      // An associated image the reader cannot decode is left out rather than failing the slide.
      if (unsupportedReason(pixelFormat(instance))) continue;
      associated.set(name, await indexImage(files, [instance], series.opticalPath.id, name));
    }
    for (const instance of instances) releaseHeader(instance.header);
    const identifying = { ...instances.find((i) => i.flavor === 'VOLUME')?.identifying };
    return {
      levels,
      associated,
      opticalPath: series.opticalPath,
      opticalPathCount: series.opticalPathCount,
      instances,
      identifying,
      file: files.find((f) => f.path === levels[0]!.instances[0]!.header.path)!,
      close: (except) => closeAll(files.filter((f) => f !== except)),
    };
  } catch (error) {
    await closeAll(files);
    throw error;
  }
}

async function closeAll(files: RandomAccessFile[]): Promise<void> {
  await Promise.all(files.map((f) => f.close().catch(() => undefined)));
}

async function readInstances(path: string, files: RandomAccessFile[]): Promise<DicomInstance[]> {
  let folder: boolean;
  try {
    folder = (await stat(path)).isDirectory();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new WsiError('not_found', `${path}: no such file or folder`, { cause: error });
    throw new WsiError('unsupported_format', `${path}: cannot open (${(error as Error).message})`, { cause: error });
  }
  const names = folder
    ? (await readdir(path, { withFileTypes: true }))
        .filter((e) => e.isFile() && !e.name.startsWith('.') && e.name.toUpperCase() !== 'DICOMDIR')
        .map((e) => e.name)
        .sort()
    : [''];
  if (names.length > MAX_INSTANCES) throw new WsiError('unsupported_format', `${path}: ${names.length} files, more than the ${MAX_INSTANCES} instances a slide may have`);
  const instances: DicomInstance[] = [];
  for (const name of names) {
    const file = await RandomAccessFile.open(folder ? join(path, name) : path);
    if (folder && !(await isDicomFile(file))) {
      await file.close();
      continue;
    }
    files.push(file);
    const instance = describeInstance(await readInstanceHeader(file));
    if (instance.sopClass === DICOMDIR_SOP_CLASS) continue;
    if (instance.sopClass !== WSI_SOP_CLASS) {
      throw new WsiError('unsupported_format', `${file.path}: a DICOM object of SOP class ${instance.sopClass || '(none)'}, not a whole-slide image (VL Whole Slide Microscopy Image Storage, ${WSI_SOP_CLASS})`);
    }
    instances.push(instance);
  }
  if (instances.length === 0) throw new WsiError('unsupported_format', `${path}: no DICOM files in the folder`);
  const series = new Set(instances.map((i) => i.seriesUid));
  if (series.size > 1) {
    throw new WsiError('unsupported_format', `${path}: the folder mixes instances of ${series.size} series; a slide is one series (Series Instance UID)`);
  }
  return instances;
}

interface Assembly {
  levels: DicomInstance[][];
  associated: Map<AssociatedName, DicomInstance>;
  opticalPath: OpticalPath;
  opticalPathCount: number;
}

function assemble(path: string, instances: DicomInstance[]): Assembly {
  const byNumber = [...instances].sort((a, b) => a.instanceNumber - b.instanceNumber);
  const volumes = byNumber.filter((i) => i.flavor === 'VOLUME');
  if (volumes.length === 0) {
    throw new WsiError('unsupported_format', `${path}: no VOLUME instance (Image Type value 3) to make a pyramid of; found ${[...new Set(instances.map((i) => i.flavor || '(none)'))].join(', ')}`);
  }
  const largest = volumes.reduce((a, b) => (b.width * b.height > a.width * a.height ? b : a));
  const opticalPath = largest.opticalPaths[0] ?? { id: '1' };

  // A level per distinct size, largest first; several instances of one size are the parts of a concatenation.
  const sizes = new Map<string, DicomInstance[]>();
  for (const v of volumes) {
    const key = `${v.width}×${v.height}`;
    sizes.set(key, [...(sizes.get(key) ?? []), v]);
  }
  const levels = [...sizes.entries()]
    .sort(([, a], [, b]) => b[0]!.width - a[0]!.width || b[0]!.height - a[0]!.height)
    .map(([size, group]) => levelParts(size, group, opticalPath.id));

  const associated = new Map<AssociatedName, DicomInstance>();
  for (const instance of byNumber) {
    const name = ASSOCIATED[instance.flavor];
    if (name && !associated.has(name)) associated.set(name, instance);
  }
  const localizer = byNumber.find((i) => i.flavor.includes('LOCALIZER'));
  if (localizer && !associated.has('macro')) associated.set('macro', localizer);
  return { levels, associated, opticalPath, opticalPathCount: largest.opticalPaths.length || 1 };
}

/** The instances of one level: one, or every part of its concatenation (all of them, or the level is refused). */
function levelParts(size: string, group: DicomInstance[], pathId: string): DicomInstance[] {
  const concatenation = group[0]!.concatenation;
  if (concatenation && group.every((g) => g.concatenation?.uid === concatenation.uid)) {
    const numbers = new Set(group.map((g) => g.concatenation!.number));
    const missing: number[] = [];
    for (let n = 1; n <= concatenation.total; n++) if (!numbers.has(n)) missing.push(n);
    if (missing.length > 0 || numbers.size !== group.length) {
      throw corrupt(
        `${group[0]!.header.path}: the level of ${size} pixels is a concatenation of ${concatenation.total} instances, but part${missing.length === 1 ? '' : 's'} ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing from the series`,
      );
    }
    return [...group].sort((a, b) => a.concatenation!.number - b.concatenation!.number);
  }
  // Several whole instances of one size (one per optical path, or copies): the chosen optical path's, else the first.
  return [group.find((g) => g.opticalPaths[0]?.id === pathId) ?? group[0]!];
}

async function indexImage(files: RandomAccessFile[], parts: DicomInstance[], pathId: string, what: string): Promise<DicomImage> {
  const base = parts[0]!;
  const format = pixelFormat(base);
  const reason = unsupportedReason(format);
  if (reason) {
    throw new WsiError(reason.startsWith('transfer syntax') ? 'unsupported_compression' : 'unsupported_format', `${base.header.path}: ${what} of ${base.width}×${base.height} pixels: ${reason}`);
  }
  const stores: { offset: number; store: FrameStore }[] = [];
  let offset = 0;
  for (const part of parts) {
    if (part.tileWidth !== base.tileWidth || part.tileHeight !== base.tileHeight || part.header.transferSyntax !== base.header.transferSyntax) {
      throw corrupt(`${part.header.path}: a part of a concatenation whose tiles or transfer syntax differ from its first part's`);
    }
    const file = files.find((f) => f.path === part.header.path)!;
    const store = await indexFrames(file, part);
    stores.push({ offset: part.concatenation ? part.concatenation.frameOffset : offset, store });
    offset += store.count;
  }
  const frames = stores.length === 1 ? stores[0]!.store : concatenated(stores);
  const grid = tileGrid(parts, frames.count, pathId);
  return { instances: parts, width: base.width, height: base.height, tileWidth: base.tileWidth, tileHeight: base.tileHeight, format, frames, grid };
}
