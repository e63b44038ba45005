/**
 * Submissions to a challenge: reading the archive safely, checking each file
 * against the phase's test slides, and scoring in bounded memory. Pure: no
 * database and no HTTP; the caller gives the phase, the archive's path and
 * the hidden truth of each slide.
 */
export { ARCHIVE_LIMITS, archiveFormat, entryNameProblem, extractArchive, type ArchiveContents, type ArchiveFile, type ArchiveFormat, type ArchiveLimits } from './archive.js';
export { MaskError, openMask, type MaskBand, type MaskReader } from './mask-reader.js';
export { PREDICTIONS_FILE } from './predictions.js';
export { countOverlap, scoreSubmission, type SlideCounts } from './score.js';
export { paintTruthBand, polygonRings } from './truth.js';
export {
  DEFAULT_MASK_DOWNSAMPLE,
  DEFAULT_THRESHOLD,
  SubmissionInvalid,
  type ChallengeSlide,
  type ChallengeTask,
  type FileProblem,
  type ScoringSpec,
  type SlideScore,
  type SlideTruth,
  type SubmissionScore,
  type ValidationReport,
} from './types.js';
export { MASK_EXTENSIONS, MASK_LABELS, inspectSubmission, maskSize, validateSubmission, type InspectOptions, type Inspection } from './validate.js';
