/**
 * A slide that ingest published from a DICOM original is a folder holding
 * its de-identified series, one instance per level (docs/dicom.md, Ingest).
 * DICOMweb serves those instances themselves: their UIDs and attributes as
 * the files hold them, their frames as stored (through the slide engine's
 * frame index, never decoded for the frames resource), and nothing written
 * anywhere else.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { WsiError } from '../../wsi/index.js';
import { readInstanceHeader, releaseHeader, type InstanceHeader } from '../../wsi/formats/dicom/dataset.js';
import { pixelFormat, type PixelFormat } from '../../wsi/formats/dicom/decode.js';
import { indexFrames, type FrameStore } from '../../wsi/formats/dicom/frames.js';
import { describeInstance } from '../../wsi/formats/dicom/instance.js';
import { describeSyntax, transferSyntax } from '../../wsi/formats/dicom/syntax.js';
import { RandomAccessFile } from '../../wsi/tiff/file.js';
import type { JsonDataset } from './dicom-json.js';
import { fileDataset, type BulkRange } from './part10-json.js';

/** One published instance: its attributes as DICOM JSON and its frames as stored. */
export interface PublishedInstance {
  sop: string;
  transferSyntax: string;
  /** The data set up to the Pixel Data; BulkDataURIs hold paths (see part10-json.ts). */
  attributes: JsonDataset;
  bulk: Map<string, BulkRange>;
  frames: FrameStore;
  format: PixelFormat;
  file: RandomAccessFile;
}

/** What names a published series, read once from its instances' headers: enough for every search. */
export interface PublishedIdentity {
  study: string;
  series: string;
  /** SOP Instance UIDs in the order served: levels largest first. */
  instances: string[];
  /** The first instance's top-level attributes but sequences and binary values: the study's and the series' among them. */
  first: JsonDataset;
}

export interface PublishedSeries {
  identity: PublishedIdentity;
  instances: PublishedInstance[];
  close(): Promise<void>;
}

interface Read {
  header: InstanceHeader;
  file: RandomAccessFile;
  sop: string;
  attributes: JsonDataset;
  bulk: Map<string, BulkRange>;
  area: number;
  number: number;
}

const text = (attributes: JsonDataset, key: string) => String(attributes[key]?.Value?.[0] ?? '');
const int = (attributes: JsonDataset, key: string) => Number(attributes[key]?.Value?.[0] ?? 0);

/** The published instances' file names: every file of the folder but hidden ones, in level order. */
async function instanceFiles(folder: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(folder, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new WsiError('not_found', `${folder}: no such folder`, { cause: error });
    throw error;
  }
  const names = entries.filter((e) => e.isFile() && !e.name.startsWith('.')).map((e) => path.join(folder, e.name));
  if (names.length === 0) throw new WsiError('unsupported_format', `${folder}: no DICOM instances in the published folder`);
  return names;
}

async function readOne(name: string): Promise<Read> {
  const file = await RandomAccessFile.open(name);
  try {
    const header = await readInstanceHeader(file);
    const syntax = transferSyntax(header.transferSyntax);
    if (!syntax?.explicit) throw new WsiError('unsupported_compression', `${name}: transfer syntax ${describeSyntax(header.transferSyntax)} is not served`);
    let dataset;
    try {
      dataset = fileDataset(header.bytes.buffer, name);
    } catch (error) {
      throw new WsiError('corrupt', `${name}: damaged DICOM data set (${(error as Error).message})`, { cause: error });
    }
    const { attributes, bulk } = dataset;
    const sop = text(attributes, '00080018');
    if (!sop) throw new WsiError('corrupt', `${name}: no SOP Instance UID`);
    const area = (int(attributes, '00480006') || int(attributes, '00280011')) * (int(attributes, '00480007') || int(attributes, '00280010'));
    return { header, file, sop, attributes, bulk, area, number: int(attributes, '00200013') };
  } catch (error) {
    await file.close();
    throw error;
  }
}

async function readAll(folder: string): Promise<Read[]> {
  const read: Read[] = [];
  try {
    for (const name of await instanceFiles(folder)) read.push(await readOne(name));
  } catch (error) {
    await Promise.all(read.map((r) => r.file.close()));
    throw error;
  }
  read.sort((a, b) => b.area - a.area || a.number - b.number);
  const [first] = read;
  const study = text(first!.attributes, '0020000D');
  const series = text(first!.attributes, '0020000E');
  const stray = read.find((r) => text(r.attributes, '0020000D') !== study || text(r.attributes, '0020000E') !== series);
  if (stray) {
    await Promise.all(read.map((r) => r.file.close()));
    throw new WsiError('corrupt', `${stray.file.path}: an instance of another study or series than ${first!.file.path}'s`);
  }
  return read;
}

function identityOf(read: Read[]): PublishedIdentity {
  // Kept for every published series the catalog holds: small, whatever the functional groups' size.
  const first = Object.fromEntries(Object.entries(read[0]!.attributes).filter(([, a]) => a.vr !== 'SQ' && a.BulkDataURI === undefined));
  return { study: text(first, '0020000D'), series: text(first, '0020000E'), instances: read.map((r) => r.sop), first };
}

/** The UIDs and first instance's attributes of a published series: every header read, no frame indexed, every file closed again. */
export async function readPublishedIdentity(folder: string): Promise<PublishedIdentity> {
  const read = await readAll(folder);
  await Promise.all(read.map((r) => r.file.close()));
  return identityOf(read);
}

/** A published series opened for serving: each instance's attributes and frame index; its files stay open until close(). */
export async function openPublishedSeries(folder: string): Promise<PublishedSeries> {
  const read = await readAll(folder);
  try {
    const instances: PublishedInstance[] = [];
    for (const r of read) {
      const described = describeInstance(r.header);
      instances.push({
        sop: r.sop,
        transferSyntax: r.header.transferSyntax,
        attributes: r.attributes,
        bulk: r.bulk,
        frames: await indexFrames(r.file, described),
        format: pixelFormat(described),
        file: r.file,
      });
      // The header's bytes were needed for the frame index only (the Extended Offset Table may lie in them).
      releaseHeader(r.header);
    }
    return {
      identity: identityOf(read),
      instances,
      close: async () => {
        await Promise.all(read.map((r) => r.file.close()));
      },
    };
  } catch (error) {
    await Promise.all(read.map((r) => r.file.close()));
    throw error;
  }
}
