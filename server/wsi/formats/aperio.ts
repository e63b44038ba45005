import type { TiffDirectory } from '../tiff/directory.js';
import { levelProperties, levelsFrom, type AssociatedName, type SlideFormat } from './format.js';
import { tiffProperties } from './tiff-properties.js';

/**
 * Aperio SVS: the first directory's ImageDescription starts with "Aperio" and
 * carries `|key = value` pairs. The thumbnail is the stripped second
 * directory; label and macro say so on their description's second line, or
 * (GT450, empty descriptions) through NewSubfileType 1 and 9.
 */
export const aperio: SlideFormat = {
  name: 'aperio',

  detect(directories) {
    const first = directories[0]!;
    if (!first.description.startsWith('Aperio')) return 'the first ImageDescription does not start with "Aperio"';
    if (!first.tiled) return 'the first directory is not tiled';
    return undefined;
  },

  layout(directories) {
    const associated = new Map<AssociatedName, TiffDirectory>();
    for (const dir of directories) {
      if (dir.tiled) continue;
      const kind = associatedKind(dir);
      if (kind && !associated.has(kind)) associated.set(kind, dir);
    }
    const second = directories[1];
    if (second && !second.tiled && associatedKind(second) === undefined) associated.set('thumbnail', second);

    const levels = levelsFrom(directories);
    const base = directories[0]!;
    const properties: Record<string, string> = {
      'openslide.vendor': 'aperio',
      'openslide.comment': base.description,
      ...tiffProperties(base),
      ...levelProperties(levels),
    };
    for (const [key, value] of parseDescription(base.description)) properties[`aperio.${key}`] = value;
    const mpp = properties['aperio.MPP'];
    if (mpp !== undefined && Number(mpp) > 0) {
      // OpenSlide prints the parsed number ("0.4990" becomes "0.499").
      properties['openslide.mpp-x'] = String(Number(mpp));
      properties['openslide.mpp-y'] = String(Number(mpp));
    }
    const mag = properties['aperio.AppMag'];
    if (mag !== undefined && Number(mag) > 0) properties['openslide.objective-power'] = mag;
    return { vendor: 'aperio', levels, associated, properties };
  },
};

function associatedKind(dir: TiffDirectory): AssociatedName | undefined {
  const secondLine = dir.description.split(/\r?\n/)[1]?.trim() ?? '';
  if (secondLine.startsWith('label')) return 'label';
  if (secondLine.startsWith('macro')) return 'macro';
  if (dir.description === '') {
    if (dir.newSubfileType === 1) return 'label';
    if (dir.newSubfileType === 9) return 'macro';
  }
  return undefined;
}

/** The `key = value` pairs after the first `|`; a repeated key keeps its last value, as in OpenSlide. */
export function parseDescription(description: string): Map<string, string> {
  const pairs = new Map<string, string>();
  for (const item of description.split('|').slice(1)) {
    const eq = item.indexOf(' = ');
    if (eq > 0) pairs.set(item.slice(0, eq).trim(), item.slice(eq + 3).trim());
  }
  return pairs;
}
