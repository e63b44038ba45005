/**
 * Annotations as GeoJSON (RFC 7946) for the viewer and the toolbox.
 *
 * Coordinates are level-0 pixels exactly as in the XML: x to the right and
 * y DOWN, not longitude/latitude. The viewer maps them onto its own plane
 * (Leaflet's CRS.Simple with y negated and scaled to its zoom levels); nothing
 * here knows about zoom. Ring orientation follows RFC 7946 §3.1.6 computed on
 * the numbers as written — outer rings have a positive signed shoelace area
 * ("counter-clockwise" with y up), holes a negative one — so GeoJSON tools
 * agree; drawn on screen with y down the same outer ring runs clockwise.
 */
import { ELLIPSE_SEGMENTS, placeHoles, regionRing, signedArea } from './geometry.js';
import { isShape, regionKind, type AperioAnnotations, type AperioLayer, type AperioRegion, type RegionKind, type Vertex } from './model.js';

export type Position = [x: number, y: number];

export interface AnnotationProperties {
  layerId: number;
  layerName: string;
  colour: string;
  regionId: number;
  /** The ImageScope region Type (0–4) and its name. */
  type: number;
  kind: RegionKind;
  text: string;
}

export interface PolygonFeature {
  type: 'Feature';
  geometry: { type: 'Polygon'; coordinates: Position[][] };
  properties: AnnotationProperties;
}

export interface LineFeature {
  type: 'Feature';
  geometry: { type: 'LineString'; coordinates: Position[] };
  properties: AnnotationProperties;
}

/** A hole that needs a person's look: where it is and what was done with it. */
export interface HoleNote {
  layerId: number;
  regionId: number;
  message: string;
}

export interface AnnotationFeatureCollection {
  type: 'FeatureCollection';
  features: (PolygonFeature | LineFeature)[];
  /** Holes that touch no positive shape of their layer, left out of `features` (a foreign member, RFC 7946 §6.1). */
  unplacedHoles: HoleNote[];
  /**
   * Holes drawn across their shape's outline (see placeHoles), kept as inner
   * rings. Such a ring crosses the outer one, which RFC 7946 does not allow
   * strictly; a renderer fills the part of it that lies outside the outline.
   */
  crossingHoles: HoleNote[];
}

export interface GeoJsonOptions {
  /** Vertices of an ellipse's polygon (default 64). */
  ellipseSegments?: number;
}

/** A closed ring (first position repeated last) running the way `outer` asks. */
function closedRing(points: readonly Vertex[], outer: boolean): Position[] {
  const ring: Position[] = points.map(([x, y]) => [x, y]);
  if (outer ? signedArea(ring) < 0 : signedArea(ring) > 0) ring.reverse();
  if (ring.length > 0) ring.push([ring[0]![0], ring[0]![1]]);
  return ring;
}

function properties(layer: AperioLayer, region: AperioRegion): AnnotationProperties {
  return {
    layerId: layer.id,
    layerName: layer.name,
    colour: layer.colour,
    regionId: region.id,
    type: region.type,
    kind: regionKind(region.type),
    text: region.text,
  };
}

/**
 * One Polygon feature per positive shape (rectangles and ellipses as
 * polygons), with the holes cut from it as inner rings; one LineString per
 * arrow or ruler (`kind` tells which). A hole belongs to the smallest
 * positive shape of its layer that contains its first vertex (placeHoles
 * says what happens to holes drawn across an outline); a hole inside no
 * shape is listed in `unplacedHoles` and left out.
 */
export function toGeoJson(doc: AperioAnnotations, options: GeoJsonOptions = {}): AnnotationFeatureCollection {
  const segments = options.ellipseSegments ?? ELLIPSE_SEGMENTS;
  const features: (PolygonFeature | LineFeature)[] = [];
  const unplacedHoles: HoleNote[] = [];
  const crossingHoles: HoleNote[] = [];
  for (const layer of doc.layers) {
    const { owner, crossing, unplaced } = placeHoles(layer.regions);
    const holesOf = new Map<number, number[]>();
    for (const [hole, shape] of owner) holesOf.set(shape, [...(holesOf.get(shape) ?? []), hole]);
    layer.regions.forEach((region, index) => {
      if (!isShape(region.type)) {
        const coordinates = region.vertices.map(([x, y]): Position => [x, y]);
        features.push({ type: 'Feature', geometry: { type: 'LineString', coordinates }, properties: properties(layer, region) });
        return;
      }
      if (region.negative) return;
      const rings = [
        closedRing(regionRing(region, segments), true),
        ...(holesOf.get(index) ?? []).sort((a, b) => a - b).map((hole) => closedRing(regionRing(layer.regions[hole]!, segments), false)),
      ];
      features.push({ type: 'Feature', geometry: { type: 'Polygon', coordinates: rings }, properties: properties(layer, region) });
    });
    const note = (hole: number, what: string): HoleNote => {
      const regionId = layer.regions[hole]!.id;
      return { layerId: layer.id, regionId, message: `hole region Id ${regionId} of annotation Id ${layer.id} ${what}` };
    };
    for (const hole of unplaced) unplacedHoles.push(note(hole, 'lies in no region of its layer; left out'));
    for (const hole of crossing) {
      const shape = layer.regions[owner.get(hole)!]!;
      crossingHoles.push(note(hole, `crosses the outline of region Id ${shape.id}; kept as its hole`));
    }
  }
  return { type: 'FeatureCollection', features, unplacedHoles, crossingHoles };
}
