import L from 'leaflet';

/**
 * Deep Zoom for Leaflet. The plane is CRS.Simple with Leaflet zoom z equal to
 * Deep Zoom level z: at the top level N a map pixel is a level-0 slide pixel,
 * so a level-0 point (x, y) (y down) is LatLng(-y / 2^N, x / 2^N) and each
 * level below halves it, as Deep Zoom's levels do (level 0 is 1×1).
 * Tile (col, row) of level z then covers map pixels [col·T, (col+1)·T) at
 * zoom z, like Leaflet's own grid; the image also carries O overlap pixels on
 * each side that has a neighbour (none left of col 0 or above row 0), which
 * the tile shifts out of view. Edge tiles are smaller than T and drawn at
 * their own size. Past level N Leaflet scales level N's tiles (maxNativeZoom).
 */

export interface DeepZoomDescriptor {
  tileSize: number;
  overlap: number;
  format: string;
  width: number;
  height: number;
  /** N = ceil(log2(max(width, height))): the full-resolution level. */
  maxLevel: number;
}

export function parseDzi(xml: string): DeepZoomDescriptor {
  const doc = new DOMParser().parseFromString(xml, 'application/xml');
  const image = doc.getElementsByTagName('Image')[0];
  const size = doc.getElementsByTagName('Size')[0];
  if (!image || !size) throw new Error('The Deep Zoom descriptor is not a DZI document');
  const number = (element: Element, name: string) => {
    const value = Number(element.getAttribute(name));
    if (!Number.isFinite(value) || value < 0) throw new Error(`The Deep Zoom descriptor has no valid ${name}`);
    return value;
  };
  const width = number(size, 'Width');
  const height = number(size, 'Height');
  return {
    tileSize: number(image, 'TileSize'),
    overlap: number(image, 'Overlap'),
    format: image.getAttribute('Format') ?? 'jpeg',
    width,
    height,
    maxLevel: Math.ceil(Math.log2(Math.max(width, height, 1))),
  };
}

/** Level-0 pixel → map coordinates, and back. */
export function toLatLng(d: DeepZoomDescriptor, x: number, y: number): L.LatLng {
  const scale = 2 ** d.maxLevel;
  return L.latLng(-y / scale, x / scale);
}

export function toPixel(d: DeepZoomDescriptor, latLng: L.LatLng): { x: number; y: number } {
  const scale = 2 ** d.maxLevel;
  return { x: latLng.lng * scale, y: -latLng.lat * scale };
}

export function slideBounds(d: DeepZoomDescriptor): L.LatLngBounds {
  return L.latLngBounds(toLatLng(d, 0, 0), toLatLng(d, d.width, d.height));
}

/** How many levels past full resolution the viewer may zoom (4× magnified pixels). */
export const OVERZOOM = 2;

/** Screens of at least this device pixel ratio get tiles of the next finer level. */
export const HIDPI_RATIO = 1.5;

/** Leaflet's options of a grid layer, and `tileQuery`: what to add to each tile URL when the tile is asked for (the slide's tile capability, `?cap=…`). */
export type DeepZoomLayerOptions = L.GridLayerOptions & { tileQuery?: () => string };

/**
 * A Leaflet layer of a slide's Deep Zoom tiles; `base` is `/tiles/<id>` (the
 * descriptor is `<base>.dzi`), or a heat-map overlay's `/tiles/<id>/overlays/<name>`
 * on the same grid. `options` adds Leaflet's own (opacity, zIndex, className)
 * and the tile URLs' query.
 *
 * On a HiDPI screen (`ratio` ≥ 1.5) the layer asks for level z + 1 at map zoom
 * z and draws its tiles at half their size (Leaflet's grid of T/2), so one
 * image pixel is one device pixel, as Leaflet's detectRetina does for a TileLayer.
 * While the map is scaled (fractional or past full resolution) the
 * class `dz-scaled` on the layer's container draws each tile one screen
 * pixel larger, which hides the hairline seams between scaled tiles.
 */
export function deepZoomLayer(base: string, d: DeepZoomDescriptor, { tileQuery, ...options }: DeepZoomLayerOptions = {}, ratio = window.devicePixelRatio || 1): L.GridLayer {
  const finer = ratio >= HIDPI_RATIO && d.maxLevel > 0 ? 1 : 0;
  const shrink = 2 ** -finer;
  const size = d.tileSize * shrink;
  const DeepZoomLayer = L.GridLayer.extend({
    createTile(coords: L.Coords, done: L.DoneCallback): HTMLElement {
      const tile = document.createElement('div');
      tile.className = 'dz-tile';
      const img = document.createElement('img');
      const level = coords.z + finer;
      img.alt = '';
      img.draggable = false;
      img.decoding = 'async';
      img.style.left = coords.x > 0 ? `-${d.overlap * shrink}px` : '0';
      img.style.top = coords.y > 0 ? `-${d.overlap * shrink}px` : '0';
      img.addEventListener('load', () => {
        if (finer) img.style.width = `${img.naturalWidth * shrink}px`;
        done(undefined, tile);
      });
      img.addEventListener('error', () => done(new Error(`tile ${level}/${coords.x}_${coords.y} failed`), tile));
      img.src = `${base}_files/${level}/${coords.x}_${coords.y}.${d.format}${tileQuery?.() ?? ''}`;
      tile.append(img);
      return tile;
    },
    onAdd(this: L.GridLayer & { _map: L.Map }, map: L.Map) {
      (L.GridLayer.prototype as unknown as { onAdd(map: L.Map): void }).onAdd.call(this, map);
      const container = this.getContainer();
      if (container) container.style.setProperty('--dz-seam', String(d.overlap > 0 ? 1 : (size + 1) / size));
      markScaled.call(this);
      map.on('zoomend', markScaled, this);
    },
    onRemove(this: L.GridLayer, map: L.Map) {
      map.off('zoomend', markScaled, this);
      (L.GridLayer.prototype as unknown as { onRemove(map: L.Map): void }).onRemove.call(this, map);
    },
  });
  /** The tiles are drawn scaled when the zoom is fractional or past the finest native zoom. */
  function markScaled(this: L.GridLayer & { _map?: L.Map }): void {
    const zoom = this._map?.getZoom();
    const container = this.getContainer();
    if (zoom === undefined || !container) return;
    container.classList.toggle('dz-scaled', !Number.isInteger(zoom) || zoom > d.maxLevel - finer);
  }
  return new (DeepZoomLayer as unknown as new (options: L.GridLayerOptions) => L.GridLayer)({
    tileSize: size,
    minNativeZoom: 0,
    maxNativeZoom: d.maxLevel - finer,
    maxZoom: d.maxLevel + OVERZOOM,
    // Only tiles that exist: Leaflet asks for none outside the slide.
    bounds: slideBounds(d),
    noWrap: true,
    keepBuffer: 2,
    updateWhenZooming: false,
    ...options,
  });
}

/**
 * The finest Deep Zoom level whose whole image fits in one tile: a single
 * request that covers the slide, shown under the tiles while they load.
 */
export function overviewLevel(d: DeepZoomDescriptor): number {
  let level = d.maxLevel;
  while (level > 0 && Math.max(d.width, d.height) / 2 ** (d.maxLevel - level) > d.tileSize) level -= 1;
  return level;
}

const NICE = [1, 2, 5];

/** A scale bar length of at most `maxPixels` screen pixels: a round number of µm or mm. */
export function scaleBar(micronsPerScreenPixel: number, maxPixels = 120): { pixels: number; label: string } {
  const maxMicrons = micronsPerScreenPixel * maxPixels;
  let best = 0;
  for (let exponent = -3; exponent <= 7; exponent++) {
    for (const n of NICE) {
      const value = n * 10 ** exponent;
      if (value <= maxMicrons) best = value;
    }
  }
  if (best === 0) best = maxMicrons;
  const label = best >= 1000 ? `${+(best / 1000).toPrecision(3)} mm` : `${+best.toPrecision(3)} µm`;
  return { pixels: best / micronsPerScreenPixel, label };
}
