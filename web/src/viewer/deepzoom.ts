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

/**
 * A Leaflet layer of a slide's Deep Zoom tiles; `base` is `/tiles/<id>` (the
 * descriptor is `<base>.dzi`), or a heat-map overlay's `/tiles/<id>/overlays/<name>`
 * on the same grid. `options` adds Leaflet's own (opacity, zIndex, className).
 */
export function deepZoomLayer(base: string, d: DeepZoomDescriptor, options: L.GridLayerOptions = {}): L.GridLayer {
  const DeepZoomLayer = L.GridLayer.extend({
    createTile(coords: L.Coords, done: L.DoneCallback): HTMLElement {
      const tile = document.createElement('div');
      tile.className = 'dz-tile';
      const img = document.createElement('img');
      img.alt = '';
      img.draggable = false;
      img.decoding = 'async';
      img.style.left = coords.x > 0 ? `-${d.overlap}px` : '0';
      img.style.top = coords.y > 0 ? `-${d.overlap}px` : '0';
      img.addEventListener('load', () => done(undefined, tile));
      img.addEventListener('error', () => done(new Error(`tile ${coords.z}/${coords.x}_${coords.y} failed`), tile));
      img.src = `${base}_files/${coords.z}/${coords.x}_${coords.y}.${d.format}`;
      tile.append(img);
      return tile;
    },
  });
  return new (DeepZoomLayer as unknown as new (options: L.GridLayerOptions) => L.GridLayer)({
    tileSize: d.tileSize,
    minNativeZoom: 0,
    maxNativeZoom: d.maxLevel,
    maxZoom: d.maxLevel + OVERZOOM,
    // Only tiles that exist: Leaflet asks for none outside the slide.
    bounds: slideBounds(d),
    noWrap: true,
    keepBuffer: 2,
    updateWhenZooming: false,
    ...options,
  });
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
