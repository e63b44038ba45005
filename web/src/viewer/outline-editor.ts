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

  constructor(
    private readonly map: L.Map,
    private readonly d: DeepZoomDescriptor,
    private readonly onChange: () => void,
  ) {
    map.pm.setGlobalOptions({ snappable: false, allowSelfIntersection: false });
    map.on('pm:create', (event: { layer: L.Layer }) => {
      this.register(event.layer, this.drawing);
      this.touch();
    });
    map.on('pm:cut', (event: { layer: L.Layer; originalLayer: L.Layer }) => {
      const owner = this.shapes.get(event.originalLayer) ?? this.drawing;
      this.shapes.delete(event.originalLayer);
      this.register(event.layer, owner);
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

  /** The outlines as they are now, in level-0 pixels (y down), one feature per polygon with its holes. */
  toGeoJson(): OutlineCollection {
    const features: OutlineFeature[] = [];
    for (const [layer, props] of this.shapes) {
      if (!(layer instanceof L.Polygon) || !this.map.hasLayer(layer)) continue;
      const geometry = layer.toGeoJSON(15).geometry as { type: string; coordinates: unknown };
      const polygons = geometry.type === 'Polygon' ? [geometry.coordinates as Position[][]] : geometry.type === 'MultiPolygon' ? (geometry.coordinates as Position[][][]) : [];
      for (const rings of polygons) {
        const coordinates = rings.map((ring) =>
          ring.map(([lng, lat]): Position => {
            const p = toPixel(this.d, L.latLng(lat, lng));
            return [Math.round(p.x * 100) / 100, Math.round(p.y * 100) / 100];
          }),
        );
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

  private register(layer: L.Layer, props: OutlineLayer): void {
    this.shapes.set(layer, props);
    layer.on('pm:edit', () => this.touch());
  }

  private touch(): void {
    this.changed = true;
    this.onChange();
  }
}
