/**
 * Deterministic synthetic tissue: a few blob-shaped tissue sections on glass,
 * tumour regions inside them (one with a hole), and an H&E-like renderer that
 * paints any rectangle of the slide at any downsample straight from the
 * geometry, so that lower pyramid levels never need level 0.
 *
 * Speed: a low-resolution class map (background / tissue / tumour, one cell
 * per 16–64 level-0 pixels, plus a flag for cells an outline passes through)
 * is built once. A tile whose cells are all one class and free of outlines is
 * filled straight from that class (a background tile is recognised without
 * touching a pixel, so its JPEG can be reused); only tiles an outline crosses
 * are filled row by row from the exact polygon spans, so that the pixels agree
 * with the ground-truth polygons rather than with the cells. Texture comes
 * from small periodic tiles made once per class and downsample from a hash of
 * (x, y, seed), copied into place with Buffer.copy.
 */

export type Point = [number, number];

/** A tumour region in level-0 pixels: its outline and the holes cut out of it. */
export interface TumourRegion {
  outer: Point[];
  holes: Point[][];
}

/** The geometry of a synthetic slide, all in level-0 pixels. */
export interface TissueLayout {
  width: number;
  height: number;
  seed: number;
  /** Tissue sections (outer rings, disjoint). */
  tissue: Point[][];
  /** Tumour regions, each inside one tissue section. The first one has a hole. */
  tumours: TumourRegion[];
}

export const PixelClass = { background: 0, tissue: 1, tumour: 2 } as const;
export type PixelClass = (typeof PixelClass)[keyof typeof PixelClass];
export type ClassName = keyof typeof PixelClass;

export type Rgb = [number, number, number];

// ---------------------------------------------------------------------------
// Seeded randomness

/** mulberry32: a small, fast 32-bit PRNG; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer hash of (x, y, seed) in [0, 2^32). */
export function hash32(x: number, y: number, seed: number): number {
  let h = (seed ^ Math.imul(x | 0, 0x27d4eb2d) ^ Math.imul(y | 0, 0x165667b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

// ---------------------------------------------------------------------------
// Geometry

/** Shoelace area of a closed ring (positive whatever its orientation). */
export function ringArea(ring: readonly Point[]): number {
  let sum = 0;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    sum += ring[j]![0] * ring[i]![1] - ring[i]![0] * ring[j]![1];
  }
  return Math.abs(sum) / 2;
}

/** Perimeter of a closed ring. */
export function ringLength(ring: readonly Point[]): number {
  let sum = 0;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    sum += Math.hypot(ring[i]![0] - ring[j]![0], ring[i]![1] - ring[j]![1]);
  }
  return sum;
}

interface Harmonics {
  terms: { k: number; a: number; phase: number }[];
  /** Sum of the amplitudes: the radius factor stays within 1 ± this. */
  sum: number;
}

function harmonics(rand: () => number, maxSum: number): Harmonics {
  const terms = [2, 3, 4, 5, 6].map((k) => ({ k, a: rand() / k, phase: rand() * 2 * Math.PI }));
  const raw = terms.reduce((s, t) => s + t.a, 0);
  const scale = (maxSum * (0.6 + 0.4 * rand())) / raw;
  for (const t of terms) t.a *= scale;
  return { terms, sum: terms.reduce((s, t) => s + t.a, 0) };
}

/**
 * A star-shaped blob around (cx, cy) with radii (rx, ry): the radius factor
 * 1 + Σ a_k sin(kθ + φ_k) never crosses zero, so the outline never crosses
 * itself. Vertices are rounded to whole pixels, about every 14 px.
 */
function blob(cx: number, cy: number, rx: number, ry: number, shape: Harmonics, phase: number): Point[] {
  const perimeter = Math.PI * (3 * (rx + ry) - Math.sqrt((3 * rx + ry) * (rx + 3 * ry)));
  const n = Math.max(12, Math.min(120, Math.round(perimeter / 14)));
  const points: Point[] = [];
  for (let i = 0; i < n; i++) {
    const theta = phase + (2 * Math.PI * i) / n;
    let rho = 1;
    for (const t of shape.terms) rho += t.a * Math.sin(t.k * theta + t.phase);
    const point: Point = [Math.round(cx + rx * rho * Math.cos(theta)), Math.round(cy + ry * rho * Math.sin(theta))];
    const last = points[points.length - 1];
    if (!last || last[0] !== point[0] || last[1] !== point[1]) points.push(point);
  }
  return points;
}

/**
 * The slide's geometry from its size and seed: 2–4 tissue sections side by
 * side along the longer axis, each inside its own cell with a margin; two
 * tumours in two different sections (one section when there is only one);
 * the first tumour with a hole. Containment holds by construction: a blob
 * whose radius factor stays within 1 ± s contains the disc of factor 1 − s
 * around its centre, and each inner shape is kept inside that disc.
 */
export function generateLayout(width: number, height: number, seed: number): TissueLayout {
  const rand = mulberry32(seed ^ 0x5bd1e995);
  const horizontal = width >= height;
  const long = horizontal ? width : height;
  const short = horizontal ? height : width;
  const sections = Math.max(1, Math.min(2 + Math.floor(rand() * 3), Math.round((long / short) * 2.5)));
  const toXY = (along: number, across: number): [number, number] => (horizontal ? [along, across] : [across, along]);

  interface Section {
    cx: number;
    cy: number;
    rx: number;
    ry: number;
    inner: number;
  }
  const placed: Section[] = [];
  const tissue: Point[][] = [];
  for (let k = 0; k < sections; k++) {
    const halfAlong = long / (2 * sections);
    const halfAcross = short / 2;
    const jAlong = (rand() - 0.5) * 0.16;
    const jAcross = (rand() - 0.5) * 0.16;
    const shape = harmonics(rand, 0.28);
    const along = (2 * k + 1) * halfAlong + jAlong * halfAlong;
    const across = halfAcross + jAcross * halfAcross;
    const rAlong = (halfAlong * (0.9 - Math.abs(jAlong)) * (0.82 + 0.18 * rand())) / (1 + shape.sum);
    const rAcross = (halfAcross * (0.9 - Math.abs(jAcross)) * (0.82 + 0.18 * rand())) / (1 + shape.sum);
    const [cx, cy] = toXY(along, across);
    const [rx, ry] = toXY(rAlong, rAcross);
    tissue.push(blob(cx, cy, rx, ry, shape, rand() * 2 * Math.PI));
    placed.push({ cx, cy, rx, ry, inner: 1 - shape.sum });
  }

  const order = placed.map((_, i) => i).sort((a, b) => hash32(a, 0, seed) - hash32(b, 0, seed));
  const tumours: TumourRegion[] = [];
  for (let t = 0; t < 2; t++) {
    const host = placed[order[t % order.length]!]!;
    const angle = rand() * 2 * Math.PI;
    const offset = rand() * 0.12 * host.inner;
    const shape = harmonics(rand, 0.25);
    // The whole tumour stays within 0.85 of the host's inner disc.
    const scale = ((0.85 * host.inner - offset) / (1 + shape.sum)) * (0.7 + 0.3 * rand());
    const cx = host.cx + host.rx * offset * Math.cos(angle);
    const cy = host.cy + host.ry * offset * Math.sin(angle);
    const outer = blob(cx, cy, host.rx * scale, host.ry * scale, shape, rand() * 2 * Math.PI);
    const holes: Point[][] = [];
    if (t === 0) {
      const holeShape = harmonics(rand, 0.2);
      const h = (0.5 * (1 - shape.sum)) / (1 + holeShape.sum);
      holes.push(blob(cx, cy, host.rx * scale * h, host.ry * scale * h, holeShape, rand() * 2 * Math.PI));
    }
    tumours.push({ outer, holes });
  }
  return { width, height, seed, tissue, tumours };
}

// ---------------------------------------------------------------------------
// Scanline spans

interface RingData {
  coords: Float64Array;
  minX: number;
  maxX: number;
  minY: number;
  maxY: number;
}

function ringData(ring: readonly Point[]): RingData {
  const coords = new Float64Array(ring.length * 2);
  let minX = Infinity;
  let maxX = -Infinity;
  let minY = Infinity;
  let maxY = -Infinity;
  ring.forEach(([x, y], i) => {
    coords[2 * i] = x;
    coords[2 * i + 1] = y;
    minX = Math.min(minX, x);
    maxX = Math.max(maxX, x);
    minY = Math.min(minY, y);
    maxY = Math.max(maxY, y);
  });
  return { coords, minX, maxX, minY, maxY };
}

/**
 * The x positions where the horizontal line at `y` crosses the rings, sorted.
 * Even-odd: [x0, x1), [x2, x3), … are inside. An edge counts for a ≤ y < b,
 * so a line through a vertex is counted once.
 */
function crossings(rings: readonly RingData[], y: number, out: number[]): number[] {
  out.length = 0;
  for (const ring of rings) {
    if (y < ring.minY || y >= ring.maxY) continue;
    const c = ring.coords;
    const n = c.length;
    let ax = c[n - 2]!;
    let ay = c[n - 1]!;
    for (let i = 0; i < n; i += 2) {
      const bx = c[i]!;
      const by = c[i + 1]!;
      if (ay <= y !== by <= y) out.push(ax + ((y - ay) * (bx - ax)) / (by - ay));
      ax = bx;
      ay = by;
    }
  }
  if (out.length > 1) out.sort((a, b) => a - b);
  return out;
}

function insideAt(rings: readonly RingData[], x: number, y: number): boolean {
  const xs = crossings(rings, y, []);
  let count = 0;
  for (const cx of xs) if (cx <= x) count++;
  return count % 2 === 1;
}

// ---------------------------------------------------------------------------
// Colours and texture

interface Stain {
  base: Rgb;
  nucleus: Rgb;
  /** Immunohistochemistry: this share of the nuclei is marker-positive and painted in `colour` (DAB) instead of `nucleus` (haematoxylin). */
  positive?: { share: number; colour: Rgb };
  /** Nucleus grid spacing, nucleus radius (level-0 px) and how many grid cells hold one. */
  spacing: number;
  radius: number;
  fill: number;
  noise: number;
  salt: number;
}

/** Glass: near-white, flat (so that background tiles are all alike). */
export const BACKGROUND: Rgb = [243, 242, 240];

/** Eosin-pink stroma with sparse nuclei; tumour: dense, larger, darker nuclei. */
const STAINS: Record<'tissue' | 'tumour', Stain> = {
  tissue: { base: [236, 178, 208], nucleus: [118, 70, 158], spacing: 22, radius: 3.5, fill: 0.35, noise: 10, salt: 0x1f123bb5 },
  tumour: { base: [184, 122, 186], nucleus: [82, 40, 124], spacing: 13, radius: 5, fill: 0.75, noise: 12, salt: 0x2545f491 },
};

/**
 * Immunohistochemistry (H-DAB): haematoxylin counterstain, blue-violet nuclei
 * on pale, nearly colourless tissue; the tumour is marker-positive, most of
 * its nuclei brown with DAB on a faintly brown cytoplasm.
 */
const IHC_STAINS: Record<'tissue' | 'tumour', Stain> = {
  tissue: { base: [221, 222, 236], nucleus: [78, 84, 156], spacing: 22, radius: 3.5, fill: 0.35, noise: 8, salt: 0x1f123bb5 },
  tumour: { base: [224, 208, 190], nucleus: [86, 88, 158], spacing: 13, radius: 5, fill: 0.75, noise: 10, salt: 0x2545f491, positive: { share: 0.7, colour: [128, 78, 38] } },
};

/** How the synthetic tissue is stained: H&E, or immunohistochemistry with DAB and a haematoxylin counterstain. */
export type StainKind = 'he' | 'ihc';
export const STAIN_KINDS: readonly StainKind[] = ['he', 'ihc'];
const PALETTES: Record<StainKind, Record<'tissue' | 'tumour', Stain>> = { he: STAINS, ihc: IHC_STAINS };

/** Texture tiles are periodic with a period that no tile size divides. */
const TEXTURE_WIDTH = 509;
const TEXTURE_HEIGHT = 503;

function clampByte(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
}

/** A seamless TEXTURE_WIDTH × TEXTURE_HEIGHT RGB tile of one stain at one downsample. */
function makeTexture(stain: Stain, downsample: number, seed: number): Buffer {
  const w = TEXTURE_WIDTH;
  const h = TEXTURE_HEIGHT;
  const lum = new Float32Array(w * h); // per-pixel noise, then nucleus coverage in `cover`
  const cover = new Float32Array(w * h);
  // The DAB share of each pixel's nuclear cover (immunohistochemistry only).
  const dab = stain.positive ? new Float32Array(w * h) : undefined;
  const salt = (seed ^ stain.salt) >>> 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) lum[y * w + x] = ((hash32(x, y, salt) & 0xff) / 255 - 0.5) * 2 * stain.noise;
  }
  const spacing = stain.spacing / downsample;
  const radius = stain.radius / downsample;
  if (spacing >= 2.5) {
    // Nuclei on a jittered grid that divides the period exactly, drawn with wrap-around.
    const nx = Math.max(1, Math.round(w / spacing));
    const ny = Math.max(1, Math.round(h / spacing));
    const cellW = w / nx;
    const cellH = h / ny;
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        const r = mulberry32(hash32(i, j, salt ^ 0x9e3779b9));
        if (r() >= stain.fill) continue;
        const cx = (i + 0.15 + 0.7 * r()) * cellW;
        const cy = (j + 0.15 + 0.7 * r()) * cellH;
        const size = radius * (0.75 + 0.5 * r());
        const stretch = 1 + 0.35 * r();
        const angle = r() * Math.PI;
        const positive = stain.positive !== undefined && (hash32(i, j, salt ^ 0x7f4a7c15) & 0xffff) / 0x10000 < stain.positive.share;
        const [ca, sa] = [Math.cos(angle), Math.sin(angle)];
        const rx = size * stretch;
        const ry = size / stretch;
        const reach = Math.ceil(rx + 1);
        for (let dy = -reach; dy <= reach; dy++) {
          const py = Math.floor(cy) + dy;
          for (let dx = -reach; dx <= reach; dx++) {
            const px = Math.floor(cx) + dx;
            const ox = px + 0.5 - cx;
            const oy = py + 0.5 - cy;
            const u = (ox * ca + oy * sa) / rx;
            const v = (-ox * sa + oy * ca) / ry;
            const d = Math.sqrt(u * u + v * v);
            const alpha = Math.min(1, Math.max(0, (1 - d) * size + 0.5));
            if (alpha <= 0) continue;
            const index = (((py % h) + h) % h) * w + (((px % w) + w) % w);
            if (alpha * 0.92 > cover[index]!) {
              cover[index] = alpha * 0.92;
              if (dab) dab[index] = positive ? 1 : 0;
            }
          }
        }
      }
    }
  } else {
    // Nuclei smaller than a pixel: blend by their expected coverage, varied per pixel.
    const mean = Math.min(0.9, (stain.fill * Math.PI * stain.radius * stain.radius) / (stain.spacing * stain.spacing));
    for (let i = 0; i < w * h; i++) cover[i] = mean * (0.6 + 0.8 * ((hash32(i, 7, salt) & 0xffff) / 0xffff));
    if (dab && stain.positive) for (let i = 0; i < w * h; i++) dab[i] = (hash32(i, 11, salt) & 0xffff) / 0x10000 < stain.positive.share ? 1 : 0;
  }
  const out = Buffer.alloc(w * h * 3);
  const positive = stain.positive?.colour ?? stain.nucleus;
  for (let i = 0; i < w * h; i++) {
    const a = cover[i]!;
    const n = lum[i]!;
    const d = dab ? dab[i]! : 0;
    for (let c = 0; c < 3; c++) {
      const nucleus = d === 0 ? stain.nucleus[c]! : positive[c]!;
      out[i * 3 + c] = clampByte(stain.base[c]! * (1 - a) + nucleus * a + n);
    }
  }
  return out;
}

function meanColour(texture: Buffer): Rgb {
  const sum = [0, 0, 0];
  for (let i = 0; i < texture.length; i += 3) for (let c = 0; c < 3; c++) sum[c]! += texture[i + c]!;
  const n = texture.length / 3;
  return [Math.round(sum[0]! / n), Math.round(sum[1]! / n), Math.round(sum[2]! / n)];
}

// ---------------------------------------------------------------------------
// The renderer

/** A rectangle of some level: (x, y) its top-left pixel; `scale` the level's downsample per axis. */
export interface Region {
  x: number;
  y: number;
  width: number;
  height: number;
  scaleX: number;
  scaleY: number;
}

export type RegionKind = 'background' | 'tissue' | 'tumour' | 'mixed';

export class TissueRenderer {
  readonly layout: TissueLayout;
  /** Level-0 pixels per class-map cell. */
  readonly cellSize: number;
  readonly columns: number;
  readonly rows: number;
  /** Class of each cell's centre. */
  readonly classes: Uint8Array;
  /** 1 where an outline may pass through the cell. */
  readonly boundary: Uint8Array;
  private readonly tissueRings: RingData[];
  /** Tumour outlines and their holes together: even-odd gives the viable tumour. */
  private readonly tumourRings: RingData[];
  private readonly textures = new Map<string, Buffer>();
  private background = Buffer.alloc(0);
  private readonly xs: number[] = [];
  private readonly stains: Record<'tissue' | 'tumour', Stain>;

  constructor(layout: TissueLayout, stain: StainKind = 'he') {
    this.layout = layout;
    this.stains = PALETTES[stain];
    this.tissueRings = layout.tissue.map(ringData);
    this.tumourRings = layout.tumours.flatMap((t) => [t.outer, ...t.holes]).map(ringData);
    let cell = 16;
    while (Math.max(layout.width, layout.height) / cell > 2048 && cell < 64) cell *= 2;
    this.cellSize = cell;
    this.columns = Math.ceil(layout.width / cell);
    this.rows = Math.ceil(layout.height / cell);
    this.classes = new Uint8Array(this.columns * this.rows);
    this.boundary = new Uint8Array(this.columns * this.rows);
    this.buildClassMap();
  }

  private buildClassMap(): void {
    const { cellSize: cell, columns, rows } = this;
    const mark = (rings: RingData[], value: PixelClass) => {
      for (let j = 0; j < rows; j++) {
        const xs = crossings(rings, (j + 0.5) * cell, this.xs);
        for (let k = 0; k + 1 < xs.length; k += 2) {
          const from = Math.max(0, Math.ceil(xs[k]! / cell - 0.5));
          const to = Math.min(columns, Math.ceil(xs[k + 1]! / cell - 0.5));
          this.classes.fill(value, j * columns + from, j * columns + to);
        }
      }
    };
    mark(this.tissueRings, PixelClass.tissue);
    mark(this.tumourRings, PixelClass.tumour);
    // Every cell an edge's bounding box touches (with one cell to spare) may hold an outline.
    for (const ring of [...this.tissueRings, ...this.tumourRings]) {
      const c = ring.coords;
      for (let i = 0; i < c.length; i += 2) {
        const j2 = (i + 2) % c.length;
        const x0 = Math.floor(Math.min(c[i]!, c[j2]!) / cell) - 1;
        const x1 = Math.floor(Math.max(c[i]!, c[j2]!) / cell) + 1;
        const y0 = Math.floor(Math.min(c[i + 1]!, c[j2 + 1]!) / cell) - 1;
        const y1 = Math.floor(Math.max(c[i + 1]!, c[j2 + 1]!) / cell) + 1;
        for (let y = Math.max(0, y0); y <= Math.min(rows - 1, y1); y++) {
          this.boundary.fill(1, y * columns + Math.max(0, x0), y * columns + Math.min(columns - 1, x1) + 1);
        }
      }
    }
  }

  /** The exact class of the level-0 point (x, y), from the polygons. */
  classAt(x: number, y: number): PixelClass {
    if (insideAt(this.tumourRings, x, y)) return PixelClass.tumour;
    if (insideAt(this.tissueRings, x, y)) return PixelClass.tissue;
    return PixelClass.background;
  }

  /**
   * What a region holds, judged from the class map alone: one class when
   * every pixel centre falls in cells of that class that no outline crosses,
   * otherwise 'mixed'. Pixels beyond the slide's edge count as background.
   */
  regionKind(region: Region): RegionKind {
    const { cellSize: cell, columns, rows } = this;
    const { width: W, height: H } = this.layout;
    const x0 = (region.x + 0.5) * region.scaleX;
    const x1 = (region.x + region.width - 0.5) * region.scaleX;
    const y0 = (region.y + 0.5) * region.scaleY;
    const y1 = (region.y + region.height - 0.5) * region.scaleY;
    const outside = x0 < 0 || y0 < 0 || x1 >= W || y1 >= H;
    if (x0 >= W || y0 >= H || x1 < 0 || y1 < 0) return 'background';
    const c0 = Math.max(0, Math.floor(x0 / cell));
    const c1 = Math.min(columns - 1, Math.floor(x1 / cell));
    const r0 = Math.max(0, Math.floor(y0 / cell));
    const r1 = Math.min(rows - 1, Math.floor(y1 / cell));
    let kind = -1;
    for (let r = r0; r <= r1; r++) {
      const base = r * columns;
      for (let c = c0; c <= c1; c++) {
        if (this.boundary[base + c]) return 'mixed';
        const cls = this.classes[base + c]!;
        if (kind === -1) kind = cls;
        else if (cls !== kind) return 'mixed';
      }
    }
    if (kind === PixelClass.background || kind === -1) return 'background';
    if (outside) return 'mixed';
    return kind === PixelClass.tumour ? 'tumour' : 'tissue';
  }

  /** The texture of a stain at a downsample, made on first use. */
  private texture(name: 'tissue' | 'tumour', downsample: number): Buffer {
    const key = `${name}:${downsample.toFixed(6)}`;
    let texture = this.textures.get(key);
    if (!texture) {
      texture = makeTexture(this.stains[name], downsample, this.layout.seed);
      this.textures.set(key, texture);
    }
    return texture;
  }

  /** The mean colour of each class as rendered at level 0. */
  meanColours(): Record<ClassName, Rgb> {
    return {
      background: [...BACKGROUND],
      tissue: meanColour(this.texture('tissue', 1)),
      tumour: meanColour(this.texture('tumour', 1)),
    };
  }

  /**
   * Paint a region as 8-bit RGB into `out` (width × height × 3 bytes, row by
   * row) and say what it held. Pixel (x, y) of a level shows the slide at the
   * level-0 point ((x + 0.5)·scaleX, (y + 0.5)·scaleY).
   */
  render(region: Region, out: Buffer): RegionKind {
    const { width, height } = region;
    if (out.length < width * height * 3) throw new Error('render target is too small');
    const kind = this.regionKind(region);
    const stride = width * 3;
    if (this.background.length < stride) {
      this.background = Buffer.alloc(stride);
      for (let i = 0; i < stride; i += 3) BACKGROUND.forEach((v, c) => (this.background[i + c] = v));
    }
    if (kind === 'background') {
      for (let r = 0; r < height; r++) this.background.copy(out, r * stride, 0, stride);
      return kind;
    }
    const downsample = region.scaleX;
    if (kind !== 'mixed') {
      const texture = this.texture(kind, downsample);
      for (let r = 0; r < height; r++) copyTexture(texture, out, r * stride, region.x, width, region.y + r);
      return kind;
    }
    // Only the rings near this region take part in its rows.
    const left = region.x * region.scaleX;
    const right = (region.x + width) * region.scaleX;
    const top = region.y * region.scaleY;
    const bottom = (region.y + height) * region.scaleY;
    const near = (ring: RingData) => ring.maxX >= left && ring.minX <= right && ring.maxY >= top && ring.minY <= bottom;
    const tissueRings = this.tissueRings.filter(near);
    const tumourRings = this.tumourRings.filter(near);
    const tissue = this.texture('tissue', downsample);
    const tumour = this.texture('tumour', downsample);
    for (let r = 0; r < height; r++) {
      const row = r * stride;
      this.background.copy(out, row, 0, stride);
      const py = region.y + r;
      const y = (py + 0.5) * region.scaleY;
      for (const [rings, texture] of [
        [tissueRings, tissue],
        [tumourRings, tumour],
      ] as const) {
        if (rings.length === 0) continue;
        const xs = crossings(rings, y, this.xs);
        for (let k = 0; k + 1 < xs.length; k += 2) {
          const from = Math.max(region.x, Math.ceil(xs[k]! / region.scaleX - 0.5));
          const to = Math.min(region.x + width, Math.ceil(xs[k + 1]! / region.scaleX - 0.5));
          if (from < to) copyTexture(texture, out, row + (from - region.x) * 3, from, to - from, py);
        }
      }
    }
    return kind;
  }
}

/** Copy `count` pixels of texture row `y` starting at column `x` (both wrapping) to `out` at byte `at`. */
function copyTexture(texture: Buffer, out: Buffer, at: number, x: number, count: number, y: number): void {
  const rowStart = (((y % TEXTURE_HEIGHT) + TEXTURE_HEIGHT) % TEXTURE_HEIGHT) * TEXTURE_WIDTH * 3;
  let tx = ((x % TEXTURE_WIDTH) + TEXTURE_WIDTH) % TEXTURE_WIDTH;
  let left = count;
  let dst = at;
  while (left > 0) {
    const n = Math.min(left, TEXTURE_WIDTH - tx);
    texture.copy(out, dst, rowStart + tx * 3, rowStart + (tx + n) * 3);
    dst += n * 3;
    left -= n;
    tx = 0;
  }
}
