import { z } from 'zod';
import { timestamp } from '../lib/schema-types.js';
import { FACETS, type Facet } from './filter.js';
import { SLIDE_STATUSES } from './slides-table.js';
import { THUMBNAIL_SIZES, type ThumbnailSize } from './thumbnails.js';

/** What ingest recorded about a slide's annotation (annotations/summary.ts), passed on as stored: older rows lack some fields. */
export const annotationSummary = z
  .looseObject({
    layers: z.array(z.looseObject({ id: z.number(), name: z.string(), colour: z.string().optional() })).optional(),
    regionCount: z.number().optional(),
    tumourLayerId: z.number().nullable().optional(),
    tumourAreaPx: z.number().nullable().optional(),
    tumourAreaMm2: z.number().nullable().optional().meta({ description: 'The tumour layer’s area; null when the microns per pixel are unknown' }),
  })
  .meta({ id: 'AnnotationSummary' });
export type AnnotationSummaryView = z.infer<typeof annotationSummary>;

const codeAndName = (facet: string) => ({
  code: z.string().nullable().meta({ description: `The ${facet} code as stored` }),
  name: z.string().nullable().meta({ description: `The ${facet}’s display name from the vocabulary (the code itself when unknown)` }),
});
const organ = codeAndName('organ');
const histology = codeAndName('histology');
const stain = codeAndName('stain');
const marker = codeAndName('IHC marker');
const differentiation = codeAndName('differentiation');
const annotationMethod = codeAndName('annotation method');

/** A published slide as the catalog shows it, in the search and on its own: never its file paths. */
export const catalogSlide = z
  .object({
    id: z.number().int(),
    name: z.string(),
    organ: organ.code,
    organName: organ.name,
    histology: histology.code,
    histologyName: histology.name,
    stain: stain.code,
    stainName: stain.name,
    marker: marker.code,
    markerName: marker.name,
    differentiation: differentiation.code,
    differentiationName: differentiation.name,
    annotationMethod: annotationMethod.code,
    annotationMethodName: annotationMethod.name,
    dataset: z.string().nullable(),
    pathologyInfo: z.string().nullable(),
    width: z.number().int(),
    height: z.number().int(),
    levelCount: z.number().int(),
    mpp: z.object({ x: z.number().nullable(), y: z.number().nullable() }).nullable().meta({ description: 'Microns per pixel at full resolution' }),
    objectivePower: z.number().nullable(),
    fileSize: z.number().int(),
    sha256: z.string().nullable(),
    hasAnnotation: z.boolean(),
    annotation: annotationSummary.nullable(),
    createdAt: timestamp,
    thumbnails: z.object(
      Object.fromEntries(Object.keys(THUMBNAIL_SIZES).map((size) => [size, z.string()])) as Record<ThumbnailSize, z.ZodString>,
    ),
    tiles: z.string().meta({ description: 'The Deep Zoom descriptor' }),
  })
  .meta({ id: 'CatalogSlide' });
export type CatalogSlideView = z.infer<typeof catalogSlide>;

export const facetCount = z.object({ value: z.string(), name: z.string(), count: z.number().int() }).meta({ id: 'FacetCount' });
export type FacetCount = z.infer<typeof facetCount>;

/** One page of a catalog search. */
export const catalogPage = z
  .object({
    items: z.array(catalogSlide),
    total: z.number().int(),
    page: z.number().int().nullable().meta({ description: '1-based; null when offset and limit asked for a window that is not a whole page' }),
    pageSize: z.number().int(),
    offset: z.number().int(),
    limit: z.number().int(),
    facets: z
      .object(Object.fromEntries(FACETS.map((facet) => [facet, z.array(facetCount)])) as Record<Facet, z.ZodArray<typeof facetCount>>)
      .meta({ description: 'Each facet’s counts under the search’s other conditions, so that a ticked value does not hide its siblings' }),
    staffFacets: z
      .object({ scannerVendor: z.array(facetCount), originalFormat: z.array(facetCount) })
      .optional()
      .meta({
        description:
          'For staff only (absent for everyone else): the matching slides counted by scanner vendor (aperio, hamamatsu, dicom, OpenSlide’s vendor of a converted slide, generic) and by the original’s format (svs, ndpi, tiff, dicom, mrxs, vms, …); slides ingested before these were recorded are not counted',
      }),
  })
  .meta({ id: 'CatalogPage' });
export type CatalogPage = z.infer<typeof catalogPage>;

export const countCell = z
  .object({
    value: z.string().nullable(),
    name: z.string().nullable(),
    count: z.number().int(),
    share: z.number().meta({ description: "count / the row's count, to 4 decimals" }),
  })
  .meta({ id: 'CountCell' });
export type CountCell = z.infer<typeof countCell>;

/** Published slides by organ and histology, and by organ and annotation method (the PAIP platform's tables; docs/references.md). */
export const catalogSummary = z
  .object({
    total: z.number().int(),
    organHistology: z.object({
      rows: z.array(
        z.object({
          organ: organ.code,
          organName: organ.name,
          histology: histology.code,
          histologyName: histology.name,
          count: z.number().int(),
        }),
      ),
      total: z.number().int(),
    }),
    organAnnotationMethod: z.object({
      methods: z.array(z.object({ value: annotationMethod.code, name: annotationMethod.name })),
      rows: z.array(z.object({ organ: organ.code, organName: organ.name, count: z.number().int(), methods: z.array(countCell) })),
      totals: z.array(countCell),
      total: z.number().int(),
    }),
  })
  .meta({ id: 'CatalogSummary' });
export type CatalogSummary = z.infer<typeof catalogSummary>;

const position = z.tuple([z.number(), z.number()]).meta({ description: 'x, y in level-0 pixels, y down' });
const annotationProperties = z.object({
  layerId: z.number().int(),
  layerName: z.string(),
  colour: z.string(),
  regionId: z.number().int(),
  type: z.number().int(),
  kind: z.string(),
  text: z.string(),
});
const holeNote = z.object({ layerId: z.number().int(), regionId: z.number().int(), message: z.string() });

/** A slide's annotation for the viewer's overlay (annotations/geojson.ts). */
export const annotationGeoJson = z
  .object({
    type: z.literal('FeatureCollection'),
    features: z.array(
      z.union([
        z.object({ type: z.literal('Feature'), geometry: z.object({ type: z.literal('Polygon'), coordinates: z.array(z.array(position)) }), properties: annotationProperties }),
        z.object({ type: z.literal('Feature'), geometry: z.object({ type: z.literal('LineString'), coordinates: z.array(position) }), properties: annotationProperties }),
      ]),
    ),
    unplacedHoles: z.array(holeNote).meta({ description: 'Holes that touch no positive shape of their layer, left out of the features' }),
    crossingHoles: z.array(holeNote).meta({ description: "Holes drawn across their shape's outline, kept as inner rings" }),
  })
  .meta({ id: 'AnnotationGeoJson' });
export type AnnotationGeoJson = z.infer<typeof annotationGeoJson>;

/** A slide as administrators and curators manage it: every status, never its file paths. */
export const managedSlide = z
  .object({
    id: z.number().int(),
    name: z.string(),
    status: z.enum(SLIDE_STATUSES),
    organ: z.string().nullable(),
    histology: z.string().nullable(),
    stain: z.string().nullable(),
    dataset: z.string().nullable(),
    fileSize: z.number().int(),
    createdAt: timestamp,
    updatedAt: timestamp,
    withdrawal: z
      .object({ reason: z.string().nullable(), at: timestamp, actorId: z.number().int().nullable() })
      .nullable()
      .meta({ description: 'The latest withdrawal of a withdrawn slide (its reason is kept in the audit log)' }),
  })
  .meta({ id: 'ManagedSlide' });
export type ManagedSlide = z.infer<typeof managedSlide>;

export const managedSlideList = z
  .object({ items: z.array(managedSlide), total: z.number().int(), limit: z.number().int(), offset: z.number().int() })
  .meta({ id: 'ManagedSlideList' });
export type ManagedSlideList = z.infer<typeof managedSlideList>;
