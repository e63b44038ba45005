/** The label and macro images of a generated slide: fake identifying text in a built-in 5×7 bitmap font, and a barcode-like pattern. */
import type { Rgb, TissueRenderer } from './tissue.js';

export const LABEL_SIZE = { width: 400, height: 400 } as const;
export const MACRO_SIZE = { width: 1280, height: 431 } as const;

/** 5×7 glyphs, rows top to bottom, '#' = ink. */
const GLYPHS: Record<string, string> = {
  A: '.###. #...# #...# ##### #...# #...# #...#',
  B: '####. #...# #...# ####. #...# #...# ####.',
  C: '.###. #...# #.... #.... #.... #...# .###.',
  D: '###.. #..#. #...# #...# #...# #..#. ###..',
  E: '##### #.... #.... ####. #.... #.... #####',
  F: '##### #.... #.... ####. #.... #.... #....',
  G: '.###. #...# #.... #.### #...# #...# .####',
  H: '#...# #...# #...# ##### #...# #...# #...#',
  I: '.###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.',
  J: '..### ...#. ...#. ...#. ...#. #..#. .##..',
  K: '#...# #..#. #.#.. ##... #.#.. #..#. #...#',
  L: '#.... #.... #.... #.... #.... #.... #####',
  M: '#...# ##.## #.#.# #.#.# #...# #...# #...#',
  N: '#...# #...# ##..# #.#.# #..## #...# #...#',
  O: '.###. #...# #...# #...# #...# #...# .###.',
  P: '####. #...# #...# ####. #.... #.... #....',
  Q: '.###. #...# #...# #...# #.#.# #..#. .##.#',
  R: '####. #...# #...# ####. #.#.. #..#. #...#',
  S: '.#### #.... #.... .###. ....# ....# ####.',
  T: '##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..',
  U: '#...# #...# #...# #...# #...# #...# .###.',
  V: '#...# #...# #...# #...# #...# .#.#. ..#..',
  W: '#...# #...# #...# #.#.# #.#.# #.#.# .#.#.',
  X: '#...# #...# .#.#. ..#.. .#.#. #...# #...#',
  Y: '#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..',
  Z: '##### ....# ...#. ..#.. .#... #.... #####',
  '0': '.###. #...# #..## #.#.# ##..# #...# .###.',
  '1': '..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.',
  '2': '.###. #...# ....# ...#. ..#.. .#... #####',
  '3': '##### ...#. ..#.. ...#. ....# #...# .###.',
  '4': '...#. ..##. .#.#. #..#. ##### ...#. ...#.',
  '5': '##### #.... ####. ....# ....# #...# .###.',
  '6': '..##. .#... #.... ####. #...# #...# .###.',
  '7': '##### ....# ...#. ..#.. .#... .#... .#...',
  '8': '.###. #...# #...# .###. #...# #...# .###.',
  '9': '.###. #...# #...# .#### ....# ...#. .##..',
  '-': '..... ..... ..... ##### ..... ..... .....',
  '/': '..... ....# ...#. ..#.. .#... #.... .....',
  ':': '..... .##.. .##.. ..... .##.. .##.. .....',
  ' ': '..... ..... ..... ..... ..... ..... .....',
};

/** An RGB canvas. */
export interface Canvas {
  width: number;
  height: number;
  data: Buffer;
}

function canvas(width: number, height: number, colour: Rgb): Canvas {
  const data = Buffer.alloc(width * height * 3);
  for (let i = 0; i < data.length; i += 3) [data[i], data[i + 1], data[i + 2]] = colour;
  return { width, height, data };
}

function fillRect(c: Canvas, x: number, y: number, w: number, h: number, colour: Rgb): void {
  for (let yy = Math.max(0, y); yy < Math.min(c.height, y + h); yy++) {
    for (let xx = Math.max(0, x); xx < Math.min(c.width, x + w); xx++) {
      const i = (yy * c.width + xx) * 3;
      [c.data[i], c.data[i + 1], c.data[i + 2]] = colour;
    }
  }
}

/** Draw text in the 5×7 font, each font pixel `scale` px square, 1 font pixel between letters. */
function drawText(c: Canvas, text: string, x: number, y: number, scale: number, colour: Rgb): void {
  [...text].forEach((ch, n) => {
    const glyph = GLYPHS[ch];
    if (glyph === undefined) throw new Error(`the label font has no glyph for "${ch}"`);
    glyph.split(' ').forEach((row, gy) => {
      [...row].forEach((bit, gx) => {
        if (bit === '#') fillRect(c, x + (n * 6 + gx) * scale, y + gy * scale, scale, scale, colour);
      });
    });
  });
}

/** A barcode-like pattern: guard bars, then 3 bars and 3 spaces of width 1–3 per character. */
function drawBarcode(c: Canvas, text: string, x: number, y: number, width: number, height: number): void {
  const modules: number[] = [1, 1, 1, 1]; // bar, space, bar, space
  for (const ch of text) {
    const code = ch.charCodeAt(0) * 2654435761;
    for (let k = 0; k < 6; k++) modules.push(1 + ((code >>> (k * 3)) % 3));
    modules.push(1);
  }
  modules.push(1, 1, 1);
  const total = modules.reduce((a, b) => a + b, 0);
  const unit = Math.max(1, Math.floor(width / total));
  let at = x + Math.floor((width - unit * total) / 2);
  modules.forEach((m, i) => {
    if (i % 2 === 0) fillRect(c, at, y, m * unit, height, [0, 0, 0]);
    at += m * unit;
  });
}

/** The label image: barcode number, patient-like name and date in the bitmap font, and a barcode. */
export function renderLabel(text: readonly string[]): Canvas {
  const { width, height } = LABEL_SIZE;
  const label = canvas(width, height, [255, 255, 255]);
  const ink: Rgb = [0, 0, 0];
  text.forEach((line, i) => {
    const scale = Math.max(1, Math.min(5, Math.floor((width - 32) / (line.length * 6))));
    drawText(label, line, 16, 20 + i * 56, scale, ink);
  });
  drawBarcode(label, text[0] ?? '', 16, 20 + text.length * 56 + 16, width - 32, height - (20 + text.length * 56 + 16) - 24);
  return label;
}

/** The macro: the glass slide photographed whole, label on the left, tissue on the right. */
export function renderMacro(renderer: TissueRenderer, label: Canvas): Canvas {
  const { width, height } = MACRO_SIZE;
  const macro = canvas(width, height, [214, 219, 222]);
  const top = Math.floor((height - label.height) / 2);
  for (let y = 0; y < label.height; y++) {
    label.data.copy(macro.data, ((top + y) * width + 16) * 3, y * label.width * 3, (y + 1) * label.width * 3);
  }
  const box = { x: 16 + label.width + 24, y: 16, width: width - (16 + label.width + 24) - 16, height: height - 32 };
  const { width: W, height: H } = renderer.layout;
  const scale = Math.max(W / box.width, H / box.height);
  const w = Math.max(1, Math.min(box.width, Math.round(W / scale)));
  const h = Math.max(1, Math.min(box.height, Math.round(H / scale)));
  const pixels = Buffer.alloc(w * h * 3);
  renderer.render({ x: 0, y: 0, width: w, height: h, scaleX: W / w, scaleY: H / h }, pixels);
  const ox = box.x + Math.floor((box.width - w) / 2);
  const oy = box.y + Math.floor((box.height - h) / 2);
  for (let y = 0; y < h; y++) pixels.copy(macro.data, ((oy + y) * width + ox) * 3, y * w * 3, (y + 1) * w * 3);
  return macro;
}
