/** Lengths and areas on the slide, from level-0 pixels and the slide's microns per pixel. */

export interface PixelPoint {
  x: number;
  y: number;
}

export function pathLength(points: readonly PixelPoint[]): number {
  let length = 0;
  for (let i = 1; i < points.length; i++) length += Math.hypot(points[i]!.x - points[i - 1]!.x, points[i]!.y - points[i - 1]!.y);
  return length;
}

/** A closed ring's area in square pixels (the shoelace formula; either winding). */
export function ringArea(points: readonly PixelPoint[]): number {
  let twice = 0;
  for (let i = 0; i < points.length; i++) {
    const a = points[i]!;
    const b = points[(i + 1) % points.length]!;
    twice += a.x * b.y - b.x * a.y;
  }
  return Math.abs(twice) / 2;
}

/** A polygon's area with its holes (the first ring is the outline, the others are cut out). */
export function polygonArea(rings: readonly (readonly PixelPoint[])[]): number {
  return rings.reduce((sum, ring, i) => sum + (i === 0 ? 1 : -1) * ringArea(ring), 0);
}

export function formatLength(pixels: number, mpp: number | null): string {
  if (mpp === null) return `${Math.round(pixels).toLocaleString()} px`;
  const microns = pixels * mpp;
  return microns >= 1000 ? `${(microns / 1000).toFixed(3)} mm` : `${microns.toFixed(1)} µm`;
}

export function formatArea(squarePixels: number, mpp: number | null): string {
  if (mpp === null) return `${Math.round(squarePixels).toLocaleString()} px²`;
  const squareMicrons = squarePixels * mpp * mpp;
  return squareMicrons >= 10_000 ? `${(squareMicrons / 1e6).toFixed(4)} mm²` : `${Math.round(squareMicrons).toLocaleString()} µm²`;
}
