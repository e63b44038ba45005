import { ExitCode, FatalError } from '../../../errors.js';
import { usageError } from '../../toolbox-flags.js';

/** The command-line flag of each library parameter, for error messages. */
const FLAGS: Record<string, string> = {
  downsample: '--downsample',
  mpp: '--mpp',
  method: '--method',
  areaUnit: '--area-unit',
  minObjectArea: '--min-object',
  minHoleArea: '--min-hole',
  width: '--width',
  height: '--height',
  layers: '--layers',
  level: '--level',
  magnification: '--magnification',
  size: '--size',
  stride: '--stride',
  tissueThreshold: '--tissue-threshold',
  tumourThreshold: '--tumour-threshold',
  tumourLayer: '--tumour-layer',
  labels: '--labels',
  maskDownsample: '--mask-downsample',
  'tissue.downsample': '--tissue-downsample',
  'tissue.mpp': '--tissue-downsample',
  'tissue.method': '--tissue-method',
  format: '--format',
  quality: '--quality',
  limit: '--limit',
  out: '--out',
  window: '--window',
  stripHeight: '--strip-height',
  predictions: 'PREDICTIONS',
  map: 'MAP',
  name: '--name',
  colormap: '--colormap',
  cutoff: '--cutoff',
  sampling: '--sampling',
  tileSize: '--tile-size',
  overlap: '--overlap',
};

/** The library's refusal as a one-line reason naming the flag (exit code 2); anything else passes through. */
export async function translated<T>(work: () => Promise<T>): Promise<T> {
  const { ToolboxError } = await import('../../../toolbox/index.js');
  const { AnnotationError } = await import('../../../annotations/index.js');
  const { WsiError } = await import('../../../wsi/index.js');
  try {
    return await work();
  } catch (error) {
    if (error instanceof ToolboxError) throw usageError(`${FLAGS[error.parameter] ?? error.parameter} ${error.problem}`);
    if (error instanceof AnnotationError) throw new FatalError(ExitCode.failure, error.message);
    if (error instanceof WsiError) throw new FatalError(ExitCode.failure, error.message);
    throw error;
  }
}
