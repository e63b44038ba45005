import { readFile, stat } from 'node:fs/promises';
import { Command } from 'commander';
import { AnnotationError, parseAperioXml, type AperioAnnotations } from '../../annotations/index.js';
import { SlidesRepository } from '../../catalog/slides.repository.js';
import { openDatabase, waitForDatabase } from '../../db/index.js';
import { ExitCode, FatalError } from '../../errors.js';
import { createLogger } from '../../logging.js';
import { compareAnnotations } from '../../toolbox/agreement.js';
import { ToolboxError } from '../../toolbox/errors.js';
import { Slide } from '../../wsi/index.js';
import { configFromCli, runCommand, type GlobalOptions } from '../run.js';

interface CompareOptions {
  slide?: string;
  width?: string;
  height?: string;
  downsample?: string;
  tumourLayer?: string;
}

const bad = (message: string) => new FatalError(ExitCode.config, message);

function whole(flag: string, raw: string | undefined, min = 1): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < min) throw bad(`${flag} must be a whole number of at least ${min}, got "${raw}"`);
  return Number(raw);
}

async function readXml(file: string): Promise<AperioAnnotations> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw bad(`${file}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
  }
  try {
    return parseAperioXml(text);
  } catch (error) {
    if (error instanceof AnnotationError) throw new FatalError(ExitCode.failure, `${file}: ${error.message}`);
    throw error;
  }
}

/** The slide's level-0 size: from the catalog for a slide id, from the file for a path. */
async function slideSize(slide: string, command: Command): Promise<{ width: number; height: number }> {
  if (/^\d+$/.test(slide)) {
    const { config } = configFromCli(command.optsWithGlobals<GlobalOptions>());
    const log = createLogger('warn');
    const db = openDatabase(config.database.target, { log });
    try {
      await waitForDatabase(db, { timeoutMs: config.database.connectTimeoutSeconds * 1000, log });
      const record = await new SlidesRepository(db.knex).findById(Number(slide));
      if (!record) throw bad(`--slide ${slide}: no such slide in the catalog`);
      return { width: record.width, height: record.height };
    } finally {
      await db.close();
    }
  }
  if (!(await stat(slide).catch(() => undefined))?.isFile()) throw bad(`--slide ${slide}: neither a slide id nor a slide file`);
  const opened = await Slide.open(slide);
  try {
    return { width: opened.width, height: opened.height };
  } finally {
    await opened.close();
  }
}

/** `slidebank annotations compare A B`: agreement between two annotations of one slide. */
export function annotationsCommand(): Command {
  const annotations = new Command('annotations').description('work with Aperio XML annotations');
  annotations
    .command('compare')
    .description('IoU per layer and mIoU (background and tumour) of two annotations of one slide, as JSON')
    .argument('<a>', 'the first Aperio XML file (e.g. the AI proposal)')
    .argument('<b>', 'the second (e.g. the pathologist’s corrected version)')
    .option('--slide <id|file>', 'the slide: a catalog id or a slide file, for its level-0 size')
    .option('--width <px>', 'level-0 width of the slide (with --height, instead of --slide)')
    .option('--height <px>', 'level-0 height of the slide')
    .option('--downsample <n>', 'level-0 pixels per mask pixel for the rasterisation', '16')
    .option('--tumour-layer <id>', 'the Annotation Id that is "tumour" for mIoU (default: 1 when both have it, else all layers together)')
    .action(async (a: string, b: string, options: CompareOptions, command: Command) =>
      runCommand(async () => {
        const downsample = whole('--downsample', options.downsample)!;
        const tumourLayer = whole('--tumour-layer', options.tumourLayer, 0);
        let size: { width: number; height: number };
        if (options.slide !== undefined) {
          if (options.width !== undefined || options.height !== undefined) throw bad('give either --slide or --width and --height, not both');
          size = await slideSize(options.slide, command);
        } else {
          const width = whole('--width', options.width);
          const height = whole('--height', options.height);
          if (width === undefined || height === undefined) throw bad('the slide size is needed: give --slide ID|FILE, or --width and --height');
          size = { width, height };
        }
        const [docA, docB] = [await readXml(a), await readXml(b)];
        try {
          const report = compareAnnotations(docA, docB, { ...size, downsample, ...(tumourLayer !== undefined ? { tumourLayer } : {}) });
          process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        } catch (error) {
          if (error instanceof ToolboxError) throw bad(`--${error.parameter} ${error.problem}`);
          throw error;
        }
      }),
    );
  return annotations;
}
