import L from 'leaflet';
import '@geoman-io/leaflet-geoman-free';
import '@geoman-io/leaflet-geoman-free/dist/leaflet-geoman.css';
import { toLatLng, toPixel, type DeepZoomDescriptor } from './deepzoom';

/**
 * An annotation version as editable Leaflet polygons (leaflet-geoman's free
 * edition does the editing: move vertices, draw polygons and rectangles, cut
 * holes, remove), and back to GeoJSON in level-0 pixels for the server. Each
 * polygon remembers the Aperio layer it belongs to; new shapes go to the
 * layer chosen with `setDrawingLayer`.
 */

export interface OutlineLayer {
  layerId: number;
  layerName: string;
  colour: string;
}

type Position = [number, number];

/**
 * Vertex handles shown at once per shape, those nearest the cursor: a hand-drawn
 * outline has hundreds of vertices, whose handles would cover it at the zoom
 * that shows the whole slide. Shapes with fewer vertices show all of theirs.
 */
export const HANDLES_NEAR_CURSOR = 24;

export interface OutlineFeature {
  type: 'Feature';
  geometry: { type: 'Polygon'; coordinates: Position[][] } | { type: 'MultiPolygon'; coordinates: Position[][][] } | { type: string; coordinates: unknown };
  properties: Partial<OutlineLayer> & Record<string, unknown>;
}

export interface OutlineCollection {
  type: 'FeatureCollection';
  features: OutlineFeature[];
}

export class OutlineEditor {
  private readonly shapes = new Map<L.Layer, OutlineLayer>();
  private drawing: OutlineLayer = { layerId: 1, layerName: 'Tumor', colour: '#00ff00' };
  private changed = false;
  /** Shapes drawn or edited since loading: only these are simplified on save. */
  private readonly touched = new Set<L.Layer>();
  private readonly marks: L.LayerGroup;
  /** Layers turned off for viewing: their shapes are off the map but still saved. */
  private readonly hidden = new Set<number>();

  constructor(
    private readonly map: L.Map,
    private readonly d: DeepZoomDescriptor,
    private readonly onChange: () => void,
  ) {
    map.pm.setGlobalOptions({ snappable: false, allowSelfIntersection: false, limitMarkersToCount: HANDLES_NEAR_CURSOR });
    this.marks = L.layerGroup().addTo(map);
    map.on('pm:create', (event: { layer: L.Layer }) => {
      this.register(event.layer, this.drawing);
      this.touched.add(event.layer);
      this.touch();
    });
    map.on('pm:cut', (event: { layer: L.Layer; originalLayer: L.Layer }) => {
      const owner = this.shapes.get(event.originalLayer) ?? this.drawing;
      this.shapes.delete(event.originalLayer);
      this.register(event.layer, owner);
      this.touched.add(event.layer);
      this.touch();
    });
    map.on('pm:remove', (event: { layer: L.Layer }) => {
      this.shapes.delete(event.layer);
      this.touch();
    });
  }

  /** Put these outlines on the map, replacing what was there; editing starts unchanged. */
  load(collection: OutlineCollection): void {
    for (const layer of this.shapes.keys()) layer.remove();
    this.shapes.clear();
    this.hidden.clear();
    this.touched.clear();
    for (const feature of collection.features) {
      const props: OutlineLayer = {
        layerId: Number(feature.properties.layerId ?? 1),
        layerName: String(feature.properties.layerName ?? 'Tumor'),
        colour: String(feature.properties.colour ?? '#00ff00'),
      };
      const polygons = feature.geometry.type === 'Polygon' ? [feature.geometry.coordinates as Position[][]] : feature.geometry.type === 'MultiPolygon' ? (feature.geometry.coordinates as Position[][][]) : [];
      for (const rings of polygons) {
        const latLngs = rings.map((ring) => ring.slice(0, -1).map(([x, y]) => toLatLng(this.d, x, y)));
        const polygon = L.polygon(latLngs, { color: props.colour, weight: 2, fillOpacity: 0.15 });
        polygon.addTo(this.map);
        this.register(polygon, props);
      }
    }
    this.changed = false;
  }

  /** The layer new shapes belong to. */
  setDrawingLayer(layer: OutlineLayer): void {
    this.drawing = layer;
    this.map.pm.setPathOptions({ color: layer.colour, fillOpacity: 0.15 });
  }

  get dirty(): boolean {
    return this.changed;
  }

  /**
   * The outlines as they are now, in level-0 pixels (y down), one feature per
   * polygon with its holes. With `tolerance`, the rings of shapes drawn or
   * edited since loading lose the vertices that change them by less than
   * that many level-0 pixels (Douglas–Peucker); the others are left as loaded.
   */
  toGeoJson(tolerance = 0): OutlineCollection {
    const features: OutlineFeature[] = [];
    for (const [layer, props] of this.shapes) {
      if (!(layer instanceof L.Polygon) || !(this.map.hasLayer(layer) || this.hidden.has(props.layerId))) continue;
      const geometry = layer.toGeoJSON(15).geometry as { type: string; coordinates: unknown };
      const polygons = geometry.type === 'Polygon' ? [geometry.coordinates as Position[][]] : geometry.type === 'MultiPolygon' ? (geometry.coordinates as Position[][][]) : [];
      const simplify = tolerance > 0 && this.touched.has(layer);
      for (const rings of polygons) {
        const coordinates = rings.map((ring) => {
          const positions = ring.map(([lng, lat]): Position => {
            const p = toPixel(this.d, L.latLng(lat, lng));
            return [Math.round(p.x * 100) / 100, Math.round(p.y * 100) / 100];
          });
          return simplify ? simplified(positions, tolerance) : positions;
        });
        features.push({ type: 'Feature', geometry: { type: 'Polygon', coordinates }, properties: { ...props } });
      }
    }
    return { type: 'FeatureCollection', features };
  }

  layers(): OutlineLayer[] {
    const seen = new Map<number, OutlineLayer>();
    for (const props of this.shapes.values()) if (!seen.has(props.layerId)) seen.set(props.layerId, props);
    return [...seen.values()].sort((a, b) => a.layerId - b.layerId);
  }

  /** Shows or hides a layer's shapes; hidden shapes cannot be edited but are kept on save. */
  setLayerVisible(layerId: number, visible: boolean): void {
    if (visible) this.hidden.delete(layerId);
    else this.hidden.add(layerId);
    for (const [layer, props] of this.shapes) {
      if (props.layerId !== layerId) continue;
      if (visible) layer.addTo(this.map);
      else layer.remove();
    }
  }

  /** Editing on or off: the toolbar and every shape's handles. */
  setEditable(editable: boolean): void {
    if (editable) {
      this.map.pm.addControls({
        position: 'topleft',
        drawMarker: false,
        drawCircleMarker: false,
        drawPolyline: false,
        drawCircle: false,
        drawText: false,
        rotateMode: false,
        dragMode: false,
      });
    } else {
      this.map.pm.disableGlobalEditMode();
      this.map.pm.removeControls();
    }
  }

  /** Red rings at these level-0 points (where a check found a problem); none to clear them. */
  markProblems(points: readonly Position[]): void {
    this.marks.clearLayers();
    for (const [x, y] of points) L.circleMarker(toLatLng(this.d, x, y), { radius: 9, color: '#d00000', weight: 3, fill: false, interactive: false }).addTo(this.marks);
  }

  /** Centre the map on a level-0 point, close enough to see its vertices. */
  show([x, y]: Position): void {
    this.map.setView(toLatLng(this.d, x, y), Math.max(this.map.getZoom(), this.d.maxLevel - 2));
  }

  private register(layer: L.Layer, props: OutlineLayer): void {
    this.shapes.set(layer, props);
    layer.on('pm:edit', () => {
      this.touched.add(layer);
      this.touch();
    });
  }

  private touch(): void {
    this.changed = true;
    this.onChange();
  }
}

/** A closed ring (first position repeated last) without the vertices that move it by less than `tolerance`; never fewer than 3 corners. */
function simplified(ring: Position[], tolerance: number): Position[] {
  if (ring.length <= 4) return ring;
  const kept = L.LineUtil.simplify(
    ring.map(([x, y]) => L.point(x, y)),
    tolerance,
  ).map((p): Position => [p.x, p.y]);
  return kept.length >= 4 ? kept : ring;
}
