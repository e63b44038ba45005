/**
 * DICOM data sets (server/wsi/dicom-writer's element model) as the DICOM JSON
 * Model (PS3.18 F.2), and the attribute keywords DICOMweb queries name.
 * Binary values become BulkDataURIs, made by the caller from the element's
 * place in the data set.
 */
import type { Dataset, Element } from '../../wsi/dicom-writer/index.js';

export interface JsonAttribute {
  vr: string;
  Value?: unknown[];
  BulkDataURI?: string;
  InlineBinary?: string;
}
export type JsonDataset = Record<string, JsonAttribute>;

const NUMBER_STRINGS = new Set(['DS', 'IS']);

/** An element's tag as DICOM JSON names it: eight upper-case hex digits. */
export const tagKey = (tag: number) => tag.toString(16).padStart(8, '0').toUpperCase();

/**
 * A data set as DICOM JSON. `bulk(path)` gives the BulkDataURI of a binary
 * element, `path` being its tag and, inside sequences, the item index and the
 * nested tag (`00480105.0.00282000`).
 */
export function toDicomJson(dataset: Dataset, bulk: (path: string) => string, prefix = ''): JsonDataset {
  const out: JsonDataset = {};
  for (const element of [...dataset].sort((a, b) => a.tag - b.tag)) out[tagKey(element.tag)] = attribute(element, bulk, `${prefix}${tagKey(element.tag)}`);
  return out;
}

function attribute({ vr, value }: Element, bulk: (path: string) => string, path: string): JsonAttribute {
  if (Buffer.isBuffer(value)) return { vr, BulkDataURI: bulk(path) };
  if (vr === 'SQ') {
    const items = value as readonly Dataset[];
    return items.length ? { vr, Value: items.map((item, i) => toDicomJson(item, bulk, `${path}.${i}.`)) } : { vr };
  }
  const values = value as readonly (string | number)[];
  if (values.length === 0 || (values.length === 1 && values[0] === '')) return { vr };
  if (vr === 'PN') return { vr, Value: values.map((v) => ({ Alphabetic: v })) };
  if (vr === 'AT') return { vr, Value: values.map((v) => tagKey(Number(v))) };
  if (NUMBER_STRINGS.has(vr)) return { vr, Value: values.map(Number) };
  // The file holds single precision: the value served is the one stored (1.1477 is stored as 1.1476999521255493).
  if (vr === 'FL') return { vr, Value: values.map((v) => Math.fround(Number(v))) };
  return { vr, Value: [...values] };
}

/** The binary value at `path` (see toDicomJson) in a data set, if there is one. */
export function bulkValue(dataset: Dataset, path: string): Buffer | undefined {
  const parts = path.split('.');
  let current: Dataset | undefined = dataset;
  for (let i = 0; i < parts.length; i += 2) {
    const tag = /^[0-9A-F]{8}$/i.test(parts[i]!) ? parseInt(parts[i]!, 16) : NaN;
    const element: Element | undefined = current?.find((e) => e.tag === tag);
    if (!element) return undefined;
    if (i === parts.length - 1) return Buffer.isBuffer(element.value) ? element.value : undefined;
    if (element.vr !== 'SQ') return undefined;
    current = (element.value as readonly Dataset[])[Number(parts[i + 1])];
  }
  return undefined;
}

/** The keywords of the attributes the query answers hold, for matching and includefield (PS3.6). */
export const KEYWORDS: Record<string, number> = {
  SpecificCharacterSet: 0x0008_0005,
  ImageType: 0x0008_0008,
  SOPClassUID: 0x0008_0016,
  SOPInstanceUID: 0x0008_0018,
  StudyDate: 0x0008_0020,
  SeriesDate: 0x0008_0021,
  ContentDate: 0x0008_0023,
  AcquisitionDateTime: 0x0008_002a,
  StudyTime: 0x0008_0030,
  SeriesTime: 0x0008_0031,
  ContentTime: 0x0008_0033,
  AccessionNumber: 0x0008_0050,
  InstanceAvailability: 0x0008_0056,
  Modality: 0x0008_0060,
  ModalitiesInStudy: 0x0008_0061,
  Manufacturer: 0x0008_0070,
  ReferringPhysicianName: 0x0008_0090,
  TimezoneOffsetFromUTC: 0x0008_0201,
  ManufacturerModelName: 0x0008_1090,
  RetrieveURL: 0x0008_1190,
  AvailableTransferSyntaxUID: 0x0008_3002,
  PatientName: 0x0010_0010,
  PatientID: 0x0010_0020,
  PatientBirthDate: 0x0010_0030,
  PatientSex: 0x0010_0040,
  PatientIdentityRemoved: 0x0012_0062,
  StudyInstanceUID: 0x0020_000d,
  SeriesInstanceUID: 0x0020_000e,
  StudyID: 0x0020_0010,
  SeriesNumber: 0x0020_0011,
  InstanceNumber: 0x0020_0013,
  FrameOfReferenceUID: 0x0020_0052,
  NumberOfStudyRelatedSeries: 0x0020_1206,
  NumberOfStudyRelatedInstances: 0x0020_1208,
  NumberOfSeriesRelatedInstances: 0x0020_1209,
  DimensionOrganizationType: 0x0020_9311,
  SamplesPerPixel: 0x0028_0002,
  PhotometricInterpretation: 0x0028_0004,
  NumberOfFrames: 0x0028_0008,
  Rows: 0x0028_0010,
  Columns: 0x0028_0011,
  BitsAllocated: 0x0028_0100,
  ContainerIdentifier: 0x0040_0512,
  ImagedVolumeWidth: 0x0048_0001,
  ImagedVolumeHeight: 0x0048_0002,
  TotalPixelMatrixColumns: 0x0048_0006,
  TotalPixelMatrixRows: 0x0048_0007,
  TotalPixelMatrixFocalPlanes: 0x0048_0303,
  NumberOfOpticalPaths: 0x0048_0302,
};

/** The tag a query parameter names, by keyword or as eight hex digits; undefined when it names none this server knows. */
export function tagOf(name: string): number | undefined {
  if (/^[0-9A-Fa-f]{8}$/.test(name)) return parseInt(name, 16);
  return KEYWORDS[name];
}
