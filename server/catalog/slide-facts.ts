import { stat } from 'node:fs/promises';
import { Slide } from '../wsi/index.js';
import type { NewSlide } from './slides.repository.js';

export type SlideFacts = Omit<NewSlide, 'name' | 'filePath' | 'sha256' | 'status'>;

/** What the catalog records about a slide file, read from the file itself. */
export async function readSlideFacts(file: string): Promise<SlideFacts> {
  const slide = await Slide.open(file);
  try {
    return {
      fileSize: (await stat(file)).size,
      vendor: slide.vendor,
      width: slide.width,
      height: slide.height,
      levelCount: slide.levels.length,
      mppX: slide.mpp?.x ?? null,
      mppY: slide.mpp?.y ?? null,
      objectivePower: slide.objectivePower ?? null,
    };
  } finally {
    await slide.close();
  }
}
