import { levelProperties, levelsFrom, type SlideFormat } from './format.js';
import { mppFromResolution, tiffProperties } from './tiff-properties.js';

/** Any tiled TIFF: every tiled directory is a pyramid level. No associated images. */
export const genericTiff: SlideFormat = {
  name: 'generic-tiff',

  detect(directories) {
    return directories[0]!.tiled ? undefined : 'the first directory is not tiled (a strip TIFF is not a slide)';
  },

  layout(directories) {
    const levels = levelsFrom(directories);
    const base = levels[0]!.directory;
    const properties: Record<string, string> = {
      'openslide.vendor': 'generic-tiff',
      ...tiffProperties(base),
      ...levelProperties(levels),
    };
    if (base.description) properties['openslide.comment'] = base.description;
    const mpp = mppFromResolution(base);
    if (mpp) {
      properties['openslide.mpp-x'] = String(mpp.x);
      properties['openslide.mpp-y'] = String(mpp.y);
    }
    return { vendor: 'generic-tiff', levels, associated: new Map(), properties };
  },
};
