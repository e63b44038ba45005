/** Decoded pixels: 8-bit RGB, row-major, no padding. */
export interface RgbImage {
  width: number;
  height: number;
  data: Buffer;
}

/** A white canvas (OpenSlide's default background) to paint tiles into. */
export function blank(width: number, height: number): RgbImage {
  return { width, height, data: Buffer.alloc(width * height * 3, 255) };
}

/** Copy `source` (clipped to `sw`×`sh` from its origin) into `target` at (x, y), clipping at the target's edges. */
export function paint(target: RgbImage, source: RgbImage, x: number, y: number, sw = source.width, sh = source.height): void {
  const x0 = Math.max(0, x);
  const y0 = Math.max(0, y);
  const x1 = Math.min(target.width, x + Math.min(sw, source.width));
  const y1 = Math.min(target.height, y + Math.min(sh, source.height));
  if (x1 <= x0 || y1 <= y0) return;
  const rowBytes = (x1 - x0) * 3;
  for (let row = y0; row < y1; row++) {
    const from = ((row - y) * source.width + (x0 - x)) * 3;
    source.data.copy(target.data, (row * target.width + x0) * 3, from, from + rowBytes);
  }
}
