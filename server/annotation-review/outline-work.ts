import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  AnnotationError,
  annotationsFromGeoJson,
  describeProblems,
  isShape,
  parseAperioXml,
  regionArea,
  serializeAperioXml,
  summarizeAnnotations,
  toGeoJson,
  validityProblems,
  type AnnotationFeatureCollection,
  type AnnotationSummary,
  type AperioAnnotations,
} from '../annotations/index.js';
import { AppError, badRequest } from '../errors.js';
import { compareOutlines, type ComparedOutlines } from './comparison.js';

/** GeoJSON as it arrives: a FeatureCollection or a Feature, read and checked in full off the event loop, or its text. */
export type GeoJsonInput = string | { type: 'FeatureCollection' | 'Feature'; [member: string]: unknown };

/** An outline as it arrives: GeoJSON, Aperio XML text, a parsed document, or a file of Aperio XML. */
export type OutlineSource = { geojson: GeoJsonInput } | { xml: string } | { doc: AperioAnnotations } | { file: string };

/** An outline ready to be stored as a version. */
export interface PreparedOutline {
  xml: string;
  sha256: string;
  /** Shape regions (polygons, rectangles, ellipses). */
  regions: number;
  /** Positive shapes minus holes, summed over every layer, in level-0 pixels². */
  area: number;
}

/**
 * The work on outlines that takes CPU in proportion to their size: parsing,
 * checking, writing, rasterising. The server runs it on worker threads
 * (outline-pool.ts) so that a large outline never holds up other requests;
 * the command line runs it in place (`inlineOutlineWork`).
 */
export interface OutlineWork {
  /** Read and (with `check`) check an outline against its slide; a 400 that names every problem when it cannot be taken. */
  prepare(source: OutlineSource, slide: { width: number; height: number }, check: boolean): Promise<PreparedOutline>;
  /** A stored version as the slide's annotation file, with the catalog's summary of it. */
  release(file: string): Promise<{ xml: string; summary: AnnotationSummary }>;
  geoJson(file: string): Promise<AnnotationFeatureCollection>;
  /** Two stored versions compared (see comparison.ts). */
  compare(fileA: string, fileB: string, slide: { width: number; height: number }, downsample?: number): Promise<ComparedOutlines>;
  close(): Promise<void>;
}

export const outlineOperations = {
  async prepare(source: OutlineSource, slide: { width: number; height: number }, check: boolean): Promise<PreparedOutline> {
    const doc = await read(source);
    if (check) {
      const problems = validityProblems(doc, slide);
      if (problems.length > 0) throw badRequest('invalid_annotation', `The outline cannot be taken: ${describeProblems(problems)}`, { problems });
    }
    const xml = serializeAperioXml(doc);
    return {
      xml,
      sha256: createHash('sha256').update(xml).digest('hex'),
      regions: doc.layers.reduce((n, l) => n + l.regions.filter((r) => isShape(r.type)).length, 0),
      area: outlinedArea(doc),
    };
  },

  async release(file: string): Promise<{ xml: string; summary: AnnotationSummary }> {
    const doc = await readStored(file);
    return { xml: serializeAperioXml(doc), summary: summarizeAnnotations(doc, doc.micronsPerPixel) };
  },

  async geoJson(file: string): Promise<AnnotationFeatureCollection> {
    return toGeoJson(await readStored(file));
  },

  async compare(fileA: string, fileB: string, slide: { width: number; height: number }, downsample?: number): Promise<ComparedOutlines> {
    const [a, b] = await Promise.all([readStored(fileA), readStored(fileB)]);
    return compareOutlines(slide, a, b, downsample);
  },
};

export type OutlineOperation = keyof typeof outlineOperations;

/** The same work on the calling thread: for the command line, which has nobody else to keep waiting. */
export const inlineOutlineWork: OutlineWork = { ...outlineOperations, close: async () => undefined };

async function read(source: OutlineSource): Promise<AperioAnnotations> {
  if ('doc' in source) return source.doc;
  if ('file' in source) return readStored(source.file);
  try {
    if ('geojson' in source) return annotationsFromGeoJson(source.geojson);
    return source.xml.trimStart().startsWith('{') ? annotationsFromGeoJson(source.xml) : parseAperioXml(source.xml);
  } catch (error) {
    if (error instanceof AnnotationError) throw badRequest('invalid_annotation', `The outline cannot be read: ${error.message}`);
    throw error;
  }
}

async function readStored(file: string): Promise<AperioAnnotations> {
  try {
    return parseAperioXml(await readFile(file, 'utf8'));
  } catch (error) {
    throw new AppError(500, 'annotation_unreadable', 'A stored annotation cannot be read', { expose: true, cause: error });
  }
}

/** Positive shapes minus holes, summed over every layer, in level-0 pixels². */
function outlinedArea(doc: AperioAnnotations): number {
  let area = 0;
  for (const layer of doc.layers) for (const region of layer.regions) if (isShape(region.type)) area += (region.negative ? -1 : 1) * regionArea(region);
  return Math.max(0, area);
}
