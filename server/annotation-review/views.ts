import { z } from 'zod';
import { timestamp } from '../lib/schema-types.js';
import { REVIEW_ACTIONS, REVIEW_STATES, VERSION_METHODS } from './review.repository.js';

/** The answers of the annotation review: versions, the workflow, comparisons, the worklist and the statistics. */

const id = z.number().int();

export const annotationVersion = z
  .object({
    id,
    slideId: id,
    number: z.number().int().meta({ description: 'The version’s number on its slide (1 for the first, in order of creation), shown as v1, v2, …' }),
    parentId: id.nullable().meta({ description: 'The version this one was made from' }),
    method: z.enum(VERSION_METHODS).meta({ description: 'manual, ai (a proposal) or corrected (a pathologist’s edit of a proposal)' }),
    model: z.string().nullable().meta({ description: 'The model that made an AI proposal' }),
    author: z.object({ id, email: z.string(), name: z.string().nullable() }).nullable(),
    note: z.string().nullable(),
    filePath: z.string(),
    sha256: z.string(),
    regions: z.number().int(),
    area: z.number().meta({ description: 'Outlined area in level-0 pixels²' }),
    createdAt: timestamp,
  })
  .meta({ id: 'AnnotationVersion' });

export const annotationWorkflow = z
  .object({
    slideId: id,
    state: z.enum(REVIEW_STATES),
    currentVersionId: id.nullable(),
    releasedVersionId: id.nullable(),
    annotatorId: id.nullable().meta({ description: 'The pathologist who confirmed the current version' }),
    checkerId: id.nullable().meta({ description: 'The pathologist who approved the released version' }),
    round: z.number().int(),
    revision: z.number().int().meta({ description: 'Every change names the revision it was made against' }),
    reviewStartedAt: timestamp.nullable(),
    updatedAt: timestamp,
  })
  .meta({ id: 'AnnotationWorkflow' });

export const annotationReviewEvent = z
  .object({
    id,
    slideId: id,
    versionId: id.nullable(),
    actor: z.object({ id, email: z.string() }).nullable(),
    action: z.enum(REVIEW_ACTIONS),
    round: z.number().int(),
    comment: z.string().nullable(),
    createdAt: timestamp,
  })
  .meta({ id: 'AnnotationReviewEvent' });

/** A slide's review: its workflow, every version (newest first) and every event (oldest first). */
export const slideReview = z
  .object({
    slide: z.object({ id, name: z.string(), width: z.number().int(), height: z.number().int(), mpp: z.number().nullable().meta({ description: 'Microns per level-0 pixel (x, else y); null when the slide has none' }) }),
    workflow: annotationWorkflow,
    versions: z.array(annotationVersion),
    events: z.array(annotationReviewEvent),
    reviewSeconds: z.number().int().nullable().meta({ description: "Seconds since the current round's review began; null when no review is under way" }),
  })
  .meta({ id: 'AnnotationReview' });
export type SlideReview = z.infer<typeof slideReview>;

const overlap = {
  a: z.number().meta({ description: 'Cells set in A' }),
  b: z.number().meta({ description: 'Cells set in B' }),
  intersection: z.number(),
  union: z.number(),
  iou: z.number(),
};
const size = z.object({ width: z.number().int(), height: z.number().int() });

export const comparison = z
  .object({
    a: id,
    b: id,
    aNumber: z.number().int().meta({ description: "A's number on the slide (v1, v2, …)" }),
    bNumber: z.number().int().meta({ description: "B's number on the slide" }),
    agreement: z.object({
      level0: size,
      downsample: z.number().meta({ description: 'Level-0 pixels per grid cell' }),
      grid: size,
      layers: z.array(z.object({ layerId: id, nameA: z.string().nullable(), nameB: z.string().nullable(), ...overlap })),
      tumour: z.object({ ...overlap, layer: z.union([id, z.literal('all')]) }),
      background: z.object(overlap),
      miou: z.number().meta({ description: 'Mean of the background and tumour IoU' }),
    }),
    edits: z.object({
      areaAdded: z.number().meta({ description: 'Level-0 pixels² outlined in B but not in A, measured finely over the part of the slide where they differ' }),
      areaRemoved: z.number().meta({ description: 'Level-0 pixels² outlined in A but not in B, measured the same way' }),
      regionsAdded: z.number().int(),
      regionsRemoved: z.number().int(),
      secondsBetween: z.number().int().meta({ description: "Seconds from A's creation to B's" }),
    }),
  })
  .meta({ id: 'AnnotationComparison' });
export type Comparison = z.infer<typeof comparison>;

export const worklist = z
  .object({
    items: z.array(
      z.object({
        slide: z.object({ id, name: z.string(), organ: z.string().nullable(), organName: z.string().nullable().meta({ description: "The organ's name in the vocabulary (its code when the vocabulary does not know it)" }) }),
        state: z.enum(REVIEW_STATES),
        round: z.number().int(),
        currentVersionId: id.nullable(),
        releasedVersionId: id.nullable(),
        annotatorId: id.nullable(),
        updatedAt: timestamp,
      }),
    ),
    total: z.number().int(),
    limit: z.number().int(),
    offset: z.number().int(),
  })
  .meta({ id: 'AnnotationWorklist' });
export type Worklist = z.infer<typeof worklist>;

export const organStatistics = z
  .object({
    organ: z.string().nullable(),
    organName: z.string().nullable().meta({ description: "The organ's name in the vocabulary (its code when the vocabulary does not know it)" }),
    manual: z.number().int().meta({ description: 'Published slides whose outline was drawn by hand' }),
    aiAssisted: z.number().int().meta({ description: 'Published slides whose outline was drawn with AI assistance' }),
    manualRate: z.number(),
    aiAssistedRate: z.number(),
    proposals: z
      .object({
        compared: z.number().int(),
        pending: z.number().int().meta({ description: 'Confirmations not compared yet' }),
        meanMiou: z.number().nullable(),
        byRound: z.array(z.object({ round: z.number().int(), compared: z.number().int(), meanMiou: z.number() })),
      })
      .meta({ description: 'AI proposals against the version the pathologist confirmed from them' }),
  })
  .meta({ id: 'OrganAnnotationStatistics' });
export type OrganStatistics = z.infer<typeof organStatistics>;

export const reviewStatistics = z
  .object({
    organs: z.array(organStatistics),
    comparisonCells: z.number().int().meta({ description: 'Each slide was compared on a grid of at most this many cells' }),
  })
  .meta({ id: 'AnnotationStatistics' });
export type AnnotationStatistics = z.infer<typeof reviewStatistics>;
