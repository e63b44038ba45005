/** Thresholds and connected components on 8-bit single-channel images. */

/** A 256-bin histogram of the bytes. */
export function histogram(values: Uint8Array): Float64Array {
  const bins = new Float64Array(256);
  for (let i = 0; i < values.length; i++) bins[values[i]!]!++;
  return bins;
}

/**
 * Otsu's threshold: the value T that maximises the between-class variance of
 * {v ≤ T} and {v > T}. On a tie the smallest T wins, so an image of two tones
 * a < b gives T = a (and `v ≤ T` picks the darker tone). A flat image gives
 * its only value.
 */
export function otsuThreshold(bins: Float64Array): number {
  let total = 0;
  let sum = 0;
  for (let v = 0; v < 256; v++) {
    total += bins[v]!;
    sum += v * bins[v]!;
  }
  if (total === 0) return 0;
  let best = -1;
  let threshold = 0;
  let w0 = 0;
  let sum0 = 0;
  for (let t = 0; t < 255; t++) {
    w0 += bins[t]!;
    sum0 += t * bins[t]!;
    const w1 = total - w0;
    if (w0 === 0) continue;
    if (w1 === 0) break;
    const diff = sum0 / w0 - (sum - sum0) / w1;
    const between = w0 * w1 * diff * diff;
    if (between > best * (1 + 1e-12)) {
      best = between;
      threshold = t;
    }
  }
  if (best < 0) for (let v = 0; v < 256; v++) if (bins[v]! > 0) return v;
  return threshold;
}

interface ComponentRule {
  /** The value whose components are examined (255 for objects, 0 for holes). */
  value: number;
  /** 8-connected when true (objects), 4-connected otherwise (holes, the dual). */
  eight: boolean;
  /** Whether the component of `size` pixels, touching the border or not, is repainted with `into`. */
  repaint: (size: number, touchesBorder: boolean) => boolean;
  into: number;
}

/** Repaint the connected components of one value that the rule selects; returns how many it repainted. */
function sweep(data: Uint8Array, width: number, height: number, rule: ComponentRule): number {
  const seen = new Uint8Array(width * height);
  const queue = new Int32Array(width * height);
  let repainted = 0;
  for (let start = 0; start < data.length; start++) {
    if (seen[start] || data[start] !== rule.value) continue;
    let head = 0;
    let tail = 0;
    let border = false;
    queue[tail++] = start;
    seen[start] = 1;
    while (head < tail) {
      const p = queue[head++]!;
      const x = p % width;
      const y = (p - x) / width;
      if (x === 0 || y === 0 || x === width - 1 || y === height - 1) border = true;
      for (let oy = -1; oy <= 1; oy++) {
        const ny = y + oy;
        if (ny < 0 || ny >= height) continue;
        for (let ox = -1; ox <= 1; ox++) {
          if ((ox === 0 && oy === 0) || (!rule.eight && ox !== 0 && oy !== 0)) continue;
          const nx = x + ox;
          if (nx < 0 || nx >= width) continue;
          const q = ny * width + nx;
          if (seen[q] || data[q] !== rule.value) continue;
          seen[q] = 1;
          queue[tail++] = q;
        }
      }
    }
    if (rule.repaint(tail, border)) {
      for (let k = 0; k < tail; k++) data[queue[k]!] = rule.into;
      repainted++;
    }
  }
  return repainted;
}

/** Clear 8-connected objects (255) smaller than `minPixels`; returns how many went. */
export function removeSmallObjects(data: Uint8Array, width: number, height: number, minPixels: number): number {
  if (minPixels <= 1) return 0;
  return sweep(data, width, height, { value: 255, eight: true, repaint: (size) => size < minPixels, into: 0 });
}

/** Fill 4-connected holes (0, not touching the border) smaller than `minPixels`; returns how many were filled. */
export function fillSmallHoles(data: Uint8Array, width: number, height: number, minPixels: number): number {
  if (minPixels <= 1) return 0;
  return sweep(data, width, height, { value: 0, eight: false, repaint: (size, border) => !border && size < minPixels, into: 255 });
}
