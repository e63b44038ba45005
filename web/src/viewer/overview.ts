import L from 'leaflet';
import { slideBounds, toPixel, type DeepZoomDescriptor } from './deepzoom';

/** The overview inset's longer side, in screen pixels. */
const INSET = 180;
/** Its margin from the map's corner, on each side. */
const MARGIN = 7;

/** The inset's size for a slide of this size: the longer side INSET px, neither side under 24 px. */
export function overviewSize(width: number, height: number): { width: number; height: number } {
  const scale = INSET / Math.max(width, height, 1);
  return { width: Math.max(24, Math.round(width * scale)), height: Math.max(24, Math.round(height * scale)) };
}

/** The part of the slide in view, in % of the slide's width and height (clamped to the slide). */
export function viewRectangle(map: L.Map, d: DeepZoomDescriptor): { left: number; top: number; width: number; height: number } {
  const bounds = map.getBounds();
  const a = toPixel(d, bounds.getNorthWest());
  const b = toPixel(d, bounds.getSouthEast());
  const clamp = (v: number) => Math.min(100, Math.max(0, v));
  const left = clamp((a.x / d.width) * 100);
  const top = clamp((a.y / d.height) * 100);
  return { left, top, width: clamp((b.x / d.width) * 100) - left, height: clamp((b.y / d.height) * 100) - top };
}

/**
 * The whole slide in view; with the inset open, in the part of the map it
 * does not cover (beside it or above it, whichever shows the slide larger).
 */
export function fitBesideOverview(map: L.Map, d: DeepZoomDescriptor, insetOpen: boolean): void {
  const bounds = slideBounds(d);
  if (!insetOpen) {
    map.fitBounds(bounds);
    return;
  }
  const inset = overviewSize(d.width, d.height);
  const beside = L.point(inset.width + 2 * MARGIN, 0);
  const above = L.point(0, inset.height + 2 * MARGIN);
  const padding = map.getBoundsZoom(bounds, false, beside) >= map.getBoundsZoom(bounds, false, above) ? beside : above;
  map.fitBounds(bounds, { paddingTopLeft: [0, 0], paddingBottomRight: padding });
}

/** On a small screen the inset would cover much of the map: it starts closed there. */
export function overviewStartsOpen(): boolean {
  return typeof window === 'undefined' || window.innerWidth >= 700;
}
