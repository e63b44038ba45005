import type dicomParser from 'dicom-parser';
import { corrupt, WsiError } from '../../errors.js';
import type { InstanceHeader } from './dataset.js';

export type Organization = 'TILED_FULL' | 'TILED_SPARSE';

export interface OpticalPath {
  id: string;
  description?: string;
  objectiveLensPower?: number;
}

/**
 * What the reader needs of one instance of a whole-slide series, taken from
 * its parsed header. Attributes that can identify a patient, a site or a
 * device are in `identifying`, apart from the rest.
 */
export interface DicomInstance {
  header: InstanceHeader;
  sopClass: string;
  seriesUid: string;
  instanceNumber: number;
  /** Image Type value 3: VOLUME, LABEL, OVERVIEW, THUMBNAIL, … (upper case; '' when absent). */
  flavor: string;
  imageType: string[];
  organization: Organization;
  /** The Total Pixel Matrix (the whole image), or the frame's size for a single-frame instance without one. */
  width: number;
  height: number;
  /** A frame's size: the tile size. */
  tileWidth: number;
  tileHeight: number;
  frames: number;
  samplesPerPixel: number;
  photometric: string;
  planarConfiguration: number;
  bitsAllocated: number;
  bitsStored: number;
  pixelRepresentation: number;
  focalPlanes: number;
  opticalPaths: OpticalPath[];
  /** Pixel Spacing (row, column) in millimetres, from the Shared Functional Groups. */
  pixelSpacing?: [number, number];
  concatenation?: { uid: string; number: number; total: number; frameOffset: number };
  /** Manufacturer, model, serial number, software, study and series UIDs: identifying, kept out of the slide's properties. */
  identifying: Record<string, string>;
}

const T = {
  ImageType: 'x00080008',
  MediaStorageSOPClassUID: 'x00020002',
  SOPClassUID: 'x00080016',
  Manufacturer: 'x00080070',
  ManufacturerModelName: 'x00081090',
  DeviceSerialNumber: 'x00181000',
  SoftwareVersions: 'x00181020',
  StudyInstanceUID: 'x0020000d',
  SeriesInstanceUID: 'x0020000e',
  InstanceNumber: 'x00200013',
  ConcatenationUID: 'x00209161',
  InConcatenationNumber: 'x00209162',
  InConcatenationTotalNumber: 'x00209163',
  ConcatenationFrameOffsetNumber: 'x00209228',
  DimensionOrganizationType: 'x00209311',
  SamplesPerPixel: 'x00280002',
  PhotometricInterpretation: 'x00280004',
  PlanarConfiguration: 'x00280006',
  NumberOfFrames: 'x00280008',
  Rows: 'x00280010',
  Columns: 'x00280011',
  PixelSpacing: 'x00280030',
  BitsAllocated: 'x00280100',
  BitsStored: 'x00280101',
  PixelRepresentation: 'x00280103',
  PixelMeasuresSequence: 'x00289110',
  TotalPixelMatrixColumns: 'x00480006',
  TotalPixelMatrixRows: 'x00480007',
  TotalPixelMatrixFocalPlanes: 'x00480303',
  OpticalPathSequence: 'x00480105',
  OpticalPathIdentifier: 'x00480106',
  OpticalPathDescription: 'x00480107',
  ObjectiveLensPower: 'x00480112',
  SharedFunctionalGroupsSequence: 'x52009229',
  ContainerIdentifier: 'x00400512',
  AccessionNumber: 'x00080050',
  PatientID: 'x00100020',
  PatientName: 'x00100010',
  StudyDate: 'x00080020',
  AcquisitionDateTime: 'x0008002a',
  InstitutionName: 'x00080080',
} as const;

/** Attributes of VR IS (integers as text); the others read here are binary. */
const INTEGER_STRINGS = new Set<string>([T.NumberOfFrames, T.InstanceNumber]);

/** Identifying attributes kept apart (never slide properties): the de-identification of an ingest decides about them. */
const IDENTIFYING: (keyof typeof T)[] = [
  'Manufacturer',
  'ManufacturerModelName',
  'DeviceSerialNumber',
  'SoftwareVersions',
  'StudyInstanceUID',
  'SeriesInstanceUID',
  'ContainerIdentifier',
  'AccessionNumber',
  'PatientID',
  'PatientName',
  'StudyDate',
  'AcquisitionDateTime',
  'InstitutionName',
];

/** Interpret an instance's header; a missing or absurd attribute the reader needs is `corrupt`. */
export function describeInstance(header: InstanceHeader): DicomInstance {
  try {
    return interpret(header);
  } catch (error) {
    if (error instanceof WsiError) throw error;
    // dicom-parser's accessors throw on values that are not what their VR says.
    throw corrupt(`${header.path}: a damaged attribute in the DICOM header (${error instanceof Error ? error.message : String(error)})`);
  }
}

function interpret(header: InstanceHeader): DicomInstance {
  const ds = header.dataSet;
  const path = header.path;
  if (!ds) throw new Error('the header was released');
  const str = (tag: string) => ds.string(tag)?.trim() ?? '';
  const int = (tag: string, fallback?: number): number => {
    const element = ds.elements[tag];
    let value: number | undefined;
    if (element && element.length > 0) value = INTEGER_STRINGS.has(tag) ? ds.intString(tag) : uint(ds, tag, element);
    if (value === undefined || Number.isNaN(value)) {
      if (fallback !== undefined) return fallback;
      throw corrupt(`${path}: attribute ${tagName(tag)} is missing`);
    }
    return value;
  };
  const imageType = str(T.ImageType).split('\\').map((v) => v.trim().toUpperCase());
  const tileWidth = int(T.Columns);
  const tileHeight = int(T.Rows);
  const width = int(T.TotalPixelMatrixColumns, tileWidth);
  const height = int(T.TotalPixelMatrixRows, tileHeight);
  const frames = int(T.NumberOfFrames, 1);
  for (const [name, v, max] of [
    ['Columns', tileWidth, 1 << 16],
    ['Rows', tileHeight, 1 << 16],
    ['TotalPixelMatrixColumns', width, 2 ** 24],
    ['TotalPixelMatrixRows', height, 2 ** 24],
    ['NumberOfFrames', frames, 2 ** 26],
  ] as const) {
    if (!Number.isInteger(v) || v < 1 || v > max) throw corrupt(`${path}: ${name} is ${v}`);
  }
  const organizationText = str(T.DimensionOrganizationType).toUpperCase();
  // Without the attribute, a single frame covering the image is tiled full; anything else needs per-frame positions.
  const organization: Organization = organizationText === 'TILED_SPARSE' || (organizationText === '' && header.perFrame && frames > 1) ? 'TILED_SPARSE' : 'TILED_FULL';

  const identifying: Record<string, string> = {};
  for (const key of IDENTIFYING) {
    const value = str(T[key]);
    if (value) identifying[key] = value;
  }
  const concatenationUid = str(T.ConcatenationUID);
  return {
    header,
    sopClass: str(T.SOPClassUID) || str(T.MediaStorageSOPClassUID),
    seriesUid: str(T.SeriesInstanceUID),
    instanceNumber: int(T.InstanceNumber, 0),
    flavor: imageType[2] ?? '',
    imageType,
    organization,
    width,
    height,
    tileWidth,
    tileHeight,
    frames,
    samplesPerPixel: int(T.SamplesPerPixel, 1),
    photometric: str(T.PhotometricInterpretation).toUpperCase(),
    planarConfiguration: int(T.PlanarConfiguration, 0),
    bitsAllocated: int(T.BitsAllocated, 8),
    bitsStored: int(T.BitsStored, int(T.BitsAllocated, 8)),
    pixelRepresentation: int(T.PixelRepresentation, 0),
    focalPlanes: Math.max(1, int(T.TotalPixelMatrixFocalPlanes, 1)),
    opticalPaths: opticalPaths(ds),
    pixelSpacing: pixelSpacing(ds),
    concatenation: concatenationUid
      ? {
          uid: concatenationUid,
          number: int(T.InConcatenationNumber, 1),
          total: int(T.InConcatenationTotalNumber, 1),
          frameOffset: int(T.ConcatenationFrameOffsetNumber, 0),
        }
      : undefined,
    identifying,
  };
}

function uint(ds: dicomParser.DataSet, tag: string, element: dicomParser.Element): number | undefined {
  if (element.vr === 'UL' || element.length === 4) return ds.uint32(tag);
  return ds.uint16(tag);
}

function opticalPaths(ds: dicomParser.DataSet): OpticalPath[] {
  const items = ds.elements[T.OpticalPathSequence]?.items ?? [];
  return items.flatMap((item, i) => {
    const path = item.dataSet;
    if (!path) return [];
    const power = Number(path.string(T.ObjectiveLensPower));
    return [
      {
        id: path.string(T.OpticalPathIdentifier)?.trim() || String(i + 1),
        description: path.string(T.OpticalPathDescription)?.trim() || undefined,
        objectiveLensPower: power > 0 ? power : undefined,
      },
    ];
  });
}

/** Pixel Spacing from the Shared Functional Groups' Pixel Measures (where WSI instances keep it), or the top level. */
function pixelSpacing(ds: dicomParser.DataSet): [number, number] | undefined {
  const shared = ds.elements[T.SharedFunctionalGroupsSequence]?.items?.[0]?.dataSet;
  const measures = shared?.elements[T.PixelMeasuresSequence]?.items?.[0]?.dataSet;
  for (const source of [measures, ds]) {
    const [row, col] = (source?.string(T.PixelSpacing) ?? '').split('\\').map(Number);
    if (row! > 0 && col! > 0) return [row!, col!];
  }
  return undefined;
}

function tagName(tag: string): string {
  const name = Object.entries(T).find(([, v]) => v === tag)?.[0];
  return `${name ?? 'tag'} (${tag.slice(1, 5).toUpperCase()},${tag.slice(5).toUpperCase()})`;
}
