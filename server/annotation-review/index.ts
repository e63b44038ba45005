export { ReviewRepository, REVIEW_STATES, VERSION_METHODS, type AnnotationVersion, type ReviewState, type VersionMethod, type Workflow } from './review.repository.js';
export { ReviewService, type Comparison, type Reviewer, type SlideReview } from './review.service.js';
export { COMPARE_CELLS, MAX_COMPARE_CELLS, MAX_COMPARE_WORK, compareOutlines, comparisonDownsample, type ComparedOutlines } from './comparison.js';
export { inlineOutlineWork, type OutlineSource, type OutlineWork } from './outline-work.js';
export { pooledOutlineWork } from './outline-pool.js';
export type { AnnotationStatistics, OrganStatistics } from './statistics.js';
