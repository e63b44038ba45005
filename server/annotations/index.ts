/**
 * Aperio ImageScope XML annotations: parse and write them, de-identify them
 * at ingest, check they fit their slide, summarise them for the catalog and
 * turn them into GeoJSON for the viewer and the toolbox.
 *
 * A pure library: no Koa, no knex, no file system — callers read and write
 * the text. Coordinates are level-0 pixels, y down, throughout.
 */
export { parseAperioXml, serializeAperioXml } from './aperio-xml.js';
export { checkBounds, defaultBoundsTolerance, type BoundsProblem } from './bounds.js';
export { ELLIPSE_SEGMENTS, placeHoles, pointInRing, polygonArea, regionArea, regionContains, regionLength, regionRing, signedArea } from './geometry.js';
export type { HolePlacement } from './geometry.js';
export { toGeoJson } from './geojson.js';
export type { AnnotationFeatureCollection, AnnotationProperties, GeoJsonOptions, HoleNote, LineFeature, PolygonFeature, Position } from './geojson.js';
export { AnnotationError, RegionType, bgrToHex, hexToBgr, isShape, regionKind } from './model.js';
export type {
  AnnotationErrorCode,
  AperioAnnotations,
  AperioAttribute,
  AperioLayer,
  AperioRegion,
  RegionKind,
  Vertex,
  XmlElement,
} from './model.js';
export { REMOVED_MARKER, compileTextPatterns, looksLikePath, scrubAnnotations, type ScrubOptions, type ScrubResult } from './scrub.js';
export { summarizeAnnotations, type AnnotationSummary, type LayerSummary } from './summary.js';
export { annotationsFromGeoJson } from './from-geojson.js';
export { countVertices, describeProblems, MAX_OUTLINE_VERTICES, validityProblems, type ValidityOptions, type ValidityProblem } from './validity.js';
export { selfIntersection } from './self-crossing.js';
