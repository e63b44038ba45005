/**
 * makeSlide: a deterministic synthetic Aperio SVS with known tissue and
 * tumour regions, its ImageScope XML and a ground-truth JSON.
 *
 * The SVS is laid out as Aperio writes it, so that OpenSlide reads it as
 * vendor `aperio` with associated images label, macro and thumbnail:
 * IFD 0 level 0 (tiled JPEG) → IFD 1 thumbnail (stripped JPEG) → lower levels
 * (tiled JPEG, each 4× smaller) → label (stripped LZW, NewSubfileType 1) →
 * macro (stripped JPEG, NewSubfileType 9). As in real files (CMU-1), the
 * thumbnail, label and macro descriptions break their first line with a bare
 * "\n": OpenSlide 3.4.1 splits on "\r\n" as a set and takes the associated
 * image's name from the second piece, which "\r\n" would leave empty, so
 * the image would be skipped. The descriptions carry fake
 * identifying values (and the label and macro fake identifying pixels) so
 * that de-identification has something to remove.
 *
 * JPEG: sharp encodes each tile from raw RGB with fixed settings, so every
 * tile of an IFD has the same quantisation and Huffman tables; those go into
 * JPEGTables once and each tile is stored as an abbreviated stream (TIFF
 * Technical Note 2). sharp's JPEG is YCbCr 4:2:0, hence Photometric 6 with
 * YCbCrSubSampling 2,2 (real Aperio files store RGB without a colour transform
 * under Photometric 2; OpenSlide decodes both correctly).
 */
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { aperioXml } from './aperio-xml.js';
import { identity } from './identity.js';
import { MACRO_SIZE, renderLabel } from './label.js';
import { MPP, OBJECTIVE_POWER, SlideOptionsError, levelSizes, slideSettings, type LevelInfo, type MakeSlideOptions, type SlideSettings } from './slide-settings.js';
import { ndpiChunkCount, writeNdpi, type NdpiIdentity } from './ndpi.js';
import { svsImages, type SlideContent, type SvsImage, type WriteContext } from './svs-images.js';
import { TiffWriter, chunkCount } from '../tiff/writer.js';
import { TissueRenderer, generateLayout, ringArea, type ClassName, type Point, type Rgb, type StainKind, type TissueLayout, type TumourRegion } from './tissue.js';

export { LIMITS, MPP, OBJECTIVE_POWER, SLIDE_FORMATS, SlideOptionsError, defaultLevelCount, levelSizes, type LevelInfo, type MakeSlideOptions, type SlideFormatName } from './slide-settings.js';

const THUMBNAIL_SIZE = 1024;

export interface MakeSlideResult {
  /** The slide file: `<name>.svs`, or `<name>.ndpi` with format `ndpi`. */
  svs: string;
  xml: string;
  truth: string;
  levels: LevelInfo[];
}

/** What `<name>.truth.json` holds. Polygons and areas are in level-0 pixels. */
export interface SlideTruth {
  generator: 'slidebank make-slide';
  version: 1;
  seed: number;
  width: number;
  height: number;
  mpp: number;
  objectivePower: number;
  tileSize: number;
  quality: number;
  tiff: 'classic' | 'bigtiff' | 'ndpi';
  /** `he` or `ihc` (H-DAB); files written before the option have none and are H&E. */
  stain: StainKind;
  levels: LevelInfo[];
  thumbnail: { width: number; height: number };
  label: { width: number; height: number; text: string[] };
  macro: { width: number; height: number };
  /** The fake identifying ImageDescription values, by Aperio key, written into level, thumbnail descriptions. */
  identifying: Record<string, string>;
  /** NDPI only: the fake scanner serial number, creation date and reference written into Hamamatsu's tags. */
  ndpi?: NdpiIdentity;
  /** Mean colour of each class as rendered at level 0. */
  colours: Record<ClassName, Rgb>;
  tissue: Point[][];
  /** Whole tumour = `outer`; viable tumour = `outer` minus `holes`. */
  tumours: TumourRegion[];
  areas: { tissue: number; wholeTumour: number; holes: number; viableTumour: number };
}

type SlideFile = 'svs' | 'xml' | 'truth';

/** The three files' final names, and the temporary names they are written under. */
interface OutputFiles {
  final: Record<SlideFile, string>;
  temp: Record<SlideFile, string>;
}

/** Write `<name>.svs`, `<name>.xml` and `<name>.truth.json` into `out`; see the module comment. */
export async function makeSlide(options: MakeSlideOptions): Promise<MakeSlideResult> {
  const settings = slideSettings(options);
  await prepareFolder(settings.out);
  const files = outputFiles(settings);
  const layout = generateLayout(settings.width, settings.height, settings.seed);
  const content = slideContent(settings, layout);
  const images = settings.format === 'svs' ? svsImages(content) : [];
  const total = settings.format === 'svs' ? images.reduce((sum, i) => sum + chunkCount(i.options), 0) : ndpiChunkCount(content.levels, settings.restartInterval);
  let done = 0;
  const context: WriteContext = { chunkWritten: () => options.onProgress?.(++done, total), signal: options.signal };
  const renamed: string[] = [];
  try {
    let format: SlideTruth['tiff'] = 'ndpi';
    let ndpi: NdpiIdentity | undefined;
    if (settings.format === 'svs') format = await writeSvs(files.temp.svs, settings.bigtiff, images, context);
    else ndpi = await writeNdpi(files.temp.svs, content, context);
    await writeFile(files.temp.xml, aperioXml(layout.tumours, MPP));
    await writeFile(files.temp.truth, `${JSON.stringify({ ...slideTruth(content, layout, format), ...(ndpi ? { ndpi } : {}) }, null, 2)}\n`);
    options.signal?.throwIfAborted();
    // The SVS last: a slide file present means its XML and truth are too.
    for (const kind of ['xml', 'truth', 'svs'] as const) {
      await rename(files.temp[kind], files.final[kind]);
      renamed.push(files.final[kind]);
    }
  } catch (error) {
    await Promise.all([...Object.values(files.temp), ...renamed].map((file) => rm(file, { force: true })));
    throw error;
  }
  return { ...files.final, levels: content.levels };
}

/** `out` made if missing; anything that cannot serve as the folder is the caller's mistake. */
async function prepareFolder(out: string): Promise<void> {
  try {
    await mkdir(out, { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new SlideOptionsError('out', `cannot be used as a folder: ${out} (${code ?? (error as Error).message})`);
  }
  if (!(await stat(out)).isDirectory()) throw new SlideOptionsError('out', `is not a folder: ${out}`);
}

function outputFiles(s: SlideSettings): OutputFiles {
  const final = {
    svs: path.join(s.out, `${s.name}.${s.format}`),
    xml: path.join(s.out, `${s.name}.xml`),
    truth: path.join(s.out, `${s.name}.truth.json`),
  };
  const temp = (file: string) => path.join(s.out, `.${path.basename(file)}.${process.pid}.partial`);
  return { final, temp: { svs: temp(final.svs), xml: temp(final.xml), truth: temp(final.truth) } };
}

function slideContent(settings: SlideSettings, layout: TissueLayout): SlideContent {
  const { width: W, height: H } = settings;
  const id = identity(settings.seed);
  const longer = Math.max(W, H);
  const thumbLonger = Math.min(THUMBNAIL_SIZE, longer);
  return {
    settings,
    renderer: new TissueRenderer(layout, settings.stain),
    identity: id,
    levels: levelSizes(W, H, settings.levels),
    thumbnail: {
      width: Math.max(1, Math.round((W * thumbLonger) / longer)),
      height: Math.max(1, Math.round((H * thumbLonger) / longer)),
    },
    label: renderLabel(id.labelText),
  };
}

/** The SVS, image after image; its TIFF flavour as written. A failure leaves the file to the caller to remove. */
async function writeSvs(file: string, bigtiff: boolean, images: SvsImage[], context: WriteContext): Promise<'classic' | 'bigtiff'> {
  let writer: TiffWriter | undefined;
  try {
    writer = await TiffWriter.create(file, { bigtiff });
    for (const { options, write } of images) await write(writer.beginImage(options), context);
    await writer.close();
    return writer.format ?? 'classic';
  } catch (error) {
    await writer?.abort();
    throw error;
  }
}

function slideTruth(content: SlideContent, layout: TissueLayout, tiff: SlideTruth['tiff']): SlideTruth {
  const { settings: s, label, identity: id } = content;
  const tissueArea = layout.tissue.reduce((sum, ring) => sum + ringArea(ring), 0);
  const wholeTumour = layout.tumours.reduce((sum, t) => sum + ringArea(t.outer), 0);
  const holes = layout.tumours.reduce((sum, t) => sum + t.holes.reduce((h, ring) => h + ringArea(ring), 0), 0);
  return {
    generator: 'slidebank make-slide',
    version: 1,
    seed: s.seed,
    width: s.width,
    height: s.height,
    mpp: MPP,
    objectivePower: OBJECTIVE_POWER,
    tileSize: s.tileSize,
    quality: s.quality,
    tiff,
    stain: s.stain,
    levels: content.levels,
    thumbnail: content.thumbnail,
    label: { width: label.width, height: label.height, text: id.labelText },
    macro: { ...MACRO_SIZE },
    identifying: id.fields,
    colours: content.renderer.meanColours(),
    tissue: layout.tissue,
    tumours: layout.tumours,
    areas: { tissue: tissueArea, wholeTumour, holes, viableTumour: wholeTumour - holes },
  };
}
