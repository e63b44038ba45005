import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { csvText } from '../lib/csv.js';
import type { Logger } from '../logging.js';
import { makeSlide, type MakeSlideOptions } from '../wsi/generate/index.js';
import type { IngestService } from './ingest.service.js';
import type { IngestRepository } from './ingest.repository.js';

/** A handful of generated slides over several organs and stains, so a newcomer's portal is not empty. */
export const DEMO_SLIDES = [
  { organ: 'LV', histology: 'HCC', stain: 'HE', marker: '', differentiation: 'MD', annotation_method: 'manual', pathology_info: 'Edmondson-Steiner grade II' },
  { organ: 'LV', histology: 'HCC', stain: 'IHC', marker: 'KI67', differentiation: 'PD', annotation_method: 'AI-assisted', pathology_info: '' },
  { organ: 'CO', histology: 'ADC', stain: 'HE', marker: '', differentiation: 'WD', annotation_method: 'manual', pathology_info: 'pT3 N1 M0' },
  { organ: 'CO', histology: 'ADC', stain: 'IHC', marker: 'CDX2', differentiation: 'MD', annotation_method: 'manual', pathology_info: '' },
  { organ: 'PR', histology: 'ADC', stain: 'HE', marker: '', differentiation: '', annotation_method: 'AI-assisted', pathology_info: 'Gleason score 3+4=7' },
  { organ: 'PB', histology: 'ADC', stain: 'HE', marker: '', differentiation: 'PD', annotation_method: 'AI-assisted', pathology_info: 'perineural invasion present' },
  { organ: 'KI', histology: 'RCC', stain: 'HE', marker: '', differentiation: '', annotation_method: 'manual', pathology_info: 'clear cell type' },
  { organ: 'KI', histology: 'RCC', stain: 'IHC', marker: 'PAX8', differentiation: '', annotation_method: 'AI-assisted', pathology_info: '' },
] as const;

/** The generator's options for the demo slide at `index`: immunohistochemistry painted as H-DAB, H&E pink and purple. */
export function demoSlideOptions(index: number, out: string): MakeSlideOptions & { name: string } {
  const slide = DEMO_SLIDES[index]!;
  const name = `demo-${String(index + 1).padStart(2, '0')}`;
  return { width: 8000 + 1000 * (index % 3), height: 6000, seed: 100 + index, out, name, stain: slide.stain === 'IHC' ? 'ihc' : 'he' };
}

/**
 * On a first start with an empty catalog, generate the demo slides and take
 * them in through the same ingest as any other slide. Returns how many were
 * published (0 when the catalog already had slides).
 */
export async function seedDemoSlides(service: IngestService, repository: IngestRepository, log: Logger): Promise<number> {
  if ((await repository.slideCount()) > 0) return 0;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-demo-'));
  try {
    const rows = [];
    for (const [i, slide] of DEMO_SLIDES.entries()) {
      const options = demoSlideOptions(i, dir);
      await makeSlide(options);
      rows.push({ file: `${options.name}.svs`, ...slide, dataset: 'demo', collection_date: '2012', consent: 'yes' });
    }
    await writeFile(path.join(dir, 'metadata.csv'), csvText(rows, { columns: Object.keys(rows[0] ?? {}) }));
    const { results } = await service.ingestFolder(dir, { source: 'demo' });
    const published = results.filter((r) => r.outcome === 'published').length;
    const problems = results.filter((r) => r.outcome !== 'published' && r.outcome !== 'duplicate');
    if (problems.length) log.warn({ problems: problems.map((r) => `${r.file}: ${r.reason}`) }, 'some demo slides were not published');
    log.info({ published }, `demo data: ${published} generated slides published (turn off with SLIDEBANK_DEMO=0)`);
    return published;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
