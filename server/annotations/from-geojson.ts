/**
 * GeoJSON (as the viewer's editor and AI models write it) back into the
 * Aperio model: each Polygon's outer ring becomes a polygon region of its
 * layer and each inner ring a hole (NegativeROA) of the same layer;
 * MultiPolygons are split into their polygons. Coordinates are level-0
 * pixels, y down, as in toGeoJson. Layers come from the features'
 * `layerId`, `layerName` and `colour` properties (layer 1, "Tumor", when a
 * feature has none).
 */
import { AnnotationError, hexToBgr, RegionType, type AperioAnnotations, type AperioLayer, type AperioRegion, type Vertex } from './model.js';

const DEFAULT_LAYER = { id: 1, name: 'Tumor', colour: '#00ff00' };

interface LayerDraft {
  layer: AperioLayer;
  nextRegionId: number;
}

/** Parse GeoJSON text or value into annotations; refuses what is not polygons with a message naming the feature. */
export function annotationsFromGeoJson(input: unknown, micronsPerPixel: number | null = null): AperioAnnotations {
  let value = input;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value) as unknown;
    } catch (error) {
      throw new AnnotationError('not_annotations', `not JSON: ${(error as Error).message}`);
    }
  }
  const features = featuresOf(value);
  const layers = new Map<number, LayerDraft>();
  features.forEach((feature, index) => {
    const where = `feature ${index + 1}`;
    const geometry = isObject(feature) && feature.type === 'Feature' ? feature.geometry : undefined;
    if (!isObject(feature) || !isObject(geometry)) throw new AnnotationError('not_annotations', `${where} is not a GeoJSON Feature with a geometry`);
    const props = isObject(feature.properties) ? feature.properties : {};
    const polygons = geometry.type === 'Polygon' ? [geometry.coordinates] : geometry.type === 'MultiPolygon' ? asArray(geometry.coordinates, where) : undefined;
    if (polygons === undefined) {
      // Arrows and rulers are notes, not outlines: the editor keeps them out of versions.
      if (geometry.type === 'LineString' || geometry.type === 'Point') return;
      throw new AnnotationError('not_annotations', `${where} has a ${String(geometry.type)} geometry; only Polygon and MultiPolygon outline tissue`);
    }
    const draft = layerFor(layers, props, where);
    const text = typeof props.text === 'string' ? props.text : '';
    for (const polygon of polygons) {
      const rings = asArray(polygon, where);
      rings.forEach((ring, r) => {
        const vertices = ringVertices(ring, `${where} ring ${r + 1}`);
        draft.layer.regions.push(region(draft.nextRegionId++, vertices, r > 0, r === 0 ? text : ''));
      });
    }
  });
  return { micronsPerPixel, layers: [...layers.values()].map((d) => d.layer).sort((a, b) => a.id - b.id), extra: {}, children: [] };
}

function featuresOf(value: unknown): unknown[] {
  if (isObject(value) && value.type === 'FeatureCollection' && Array.isArray(value.features)) return value.features;
  if (isObject(value) && value.type === 'Feature') return [value];
  throw new AnnotationError('not_annotations', 'not a GeoJSON FeatureCollection or Feature');
}

function layerFor(layers: Map<number, LayerDraft>, props: Record<string, unknown>, where: string): LayerDraft {
  const id = props.layerId === undefined ? DEFAULT_LAYER.id : props.layerId;
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 1) throw new AnnotationError('invalid_value', `${where}: layerId must be a whole number from 1, got ${JSON.stringify(id)}`);
  let draft = layers.get(id);
  if (!draft) {
    const colour = typeof props.colour === 'string' && /^#[0-9a-f]{6}$/i.test(props.colour) ? props.colour.toLowerCase() : DEFAULT_LAYER.colour;
    const name = typeof props.layerName === 'string' && props.layerName.trim() !== '' ? props.layerName.trim().slice(0, 200) : id === 1 ? DEFAULT_LAYER.name : `Layer ${id}`;
    draft = {
      layer: { id, name, lineColor: hexToBgr(colour), colour, visible: true, type: 4, attributes: [], regions: [], headers: [], plots: [], extra: {}, children: [] },
      nextRegionId: 1,
    };
    layers.set(id, draft);
  }
  return draft;
}

function ringVertices(ring: unknown, where: string): Vertex[] {
  const positions = asArray(ring, where);
  const vertices = positions.map((p, i): Vertex => {
    if (!Array.isArray(p) || p.length < 2 || typeof p[0] !== 'number' || typeof p[1] !== 'number' || !Number.isFinite(p[0]) || !Number.isFinite(p[1])) {
      throw new AnnotationError('invalid_vertex', `${where} position ${i + 1} is not a pair of finite numbers`);
    }
    return [p[0], p[1]];
  });
  // The closing position, and any position that repeats the one before it (a zero-length edge), carry no shape.
  const distinct = vertices.filter((v, i) => i === 0 || v[0] !== vertices[i - 1]![0] || v[1] !== vertices[i - 1]![1]);
  while (distinct.length > 1 && distinct.at(-1)![0] === distinct[0]![0] && distinct.at(-1)![1] === distinct[0]![1]) distinct.pop();
  if (distinct.length < 3) throw new AnnotationError('invalid_shape', `${where} has ${distinct.length} distinct positions; a polygon needs at least 3`);
  return distinct;
}

function region(id: number, vertices: Vertex[], negative: boolean, text: string): AperioRegion {
  return { id, type: RegionType.polygon, negative, text, vertices, attributes: [], extra: {}, children: [] };
}

function asArray(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value)) throw new AnnotationError('not_annotations', `${where}: coordinates are not an array`);
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
