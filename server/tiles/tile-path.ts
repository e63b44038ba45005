import { AppError } from '../errors.js';
import type { AssociatedName, TileFormat } from '../wsi/index.js';

export type TilePath =
  | { kind: 'descriptor'; slideId: number }
  | { kind: 'tile'; slideId: number; level: number; col: number; row: number; format: TileFormat }
  | { kind: 'associated'; slideId: number; name: AssociatedName };

const FORMATS: Record<string, TileFormat> = { jpeg: 'jpeg', jpg: 'jpeg', png: 'png', webp: 'webp' };
const ASSOCIATED = new Set<string>(['thumbnail', 'label', 'macro']);

/**
 * Parse what follows `/tiles/`: `<id>.dzi`, `<id>_files/<level>/<col>_<row>.<format>`
 * or `<id>/<thumbnail|label|macro>`. Malformed numbers are a 400 that names
 * the part; shapes that are no tile path at all are a 404.
 */
export function parseTilePath(rest: string): TilePath {
  let match = /^([^/]+)\.dzi$/.exec(rest);
  if (match) return { kind: 'descriptor', slideId: slideId(match[1]!) };

  match = /^([^/]+)_files\/([^/]+)\/([^/_]+)_([^/.]+)\.([^/.]+)$/.exec(rest);
  if (match) {
    const format = FORMATS[match[5]!.toLowerCase()];
    if (!format) throw new AppError(400, 'unsupported_tile_format', `Tiles come as jpeg, png or webp, not "${match[5]}"`);
    return {
      kind: 'tile',
      slideId: slideId(match[1]!),
      level: index(match[2]!, 'level'),
      col: index(match[3]!, 'column'),
      row: index(match[4]!, 'row'),
      format,
    };
  }

  match = /^([^/]+)\/([a-z]+)$/.exec(rest);
  if (match && ASSOCIATED.has(match[2]!)) return { kind: 'associated', slideId: slideId(match[1]!), name: match[2] as AssociatedName };

  throw new AppError(404, 'not_found', `Not a tile path: /tiles/${rest}`);
}

function slideId(text: string): number {
  if (!/^[1-9]\d{0,9}$/.test(text) || Number(text) > 2 ** 31 - 1) {
    throw new AppError(400, 'invalid_slide_id', `"${text}" is not a slide id (a positive whole number)`);
  }
  return Number(text);
}

function index(text: string, what: string): number {
  if (!/^\d{1,9}$/.test(text)) throw new AppError(400, 'invalid_tile_path', `The ${what} "${text}" is not a whole number from 0 up`);
  return Number(text);
}
