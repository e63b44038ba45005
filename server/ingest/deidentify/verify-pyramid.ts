import { Slide } from '../../wsi/slide.js';

/** Records a check: its name, the problem (undefined when it passed), and what was found when it passed. */
export type AddCheck = (name: string, problem: string | undefined, ok: string) => void;

/** The published copy (a file or a DICOM series folder) opens with the levels the original had. */
export async function checkPyramid(published: string, expected: readonly { width: number; height: number }[], add: AddCheck): Promise<void> {
  try {
    const slide = await Slide.open(published);
    try {
      const levels = slide.levels.map((l) => `${l.width}×${l.height}`).join(', ');
      const want = expected.map((l) => `${l.width}×${l.height}`).join(', ');
      add('opens with the same pyramid', levels === want ? undefined : `levels ${levels}, expected ${want}`, `levels ${levels}`);
    } finally {
      await slide.close();
    }
  } catch (error) {
    add('opens with the same pyramid', `cannot be opened: ${(error as Error).message}`, '');
  }
}
