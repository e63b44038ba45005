export { ReviewRepository, REVIEW_ACTIONS, REVIEW_STATES, VERSION_METHODS, type AnnotationVersion, type ReviewState, type VersionMethod, type Workflow } from './review.repository.js';
export { ReviewService, REVIEW_TEXT_MAX, type Proposal, type Reviewer, type WorklistQuery } from './review.service.js';
export { COMPARE_CELLS, MAX_COMPARE_CELLS, MAX_COMPARE_WORK, compareOutlines, comparisonDownsample, type ComparedOutlines } from './comparison.js';
export { inlineOutlineWork, type GeoJsonInput, type OutlineSource, type OutlineWork } from './outline-work.js';
export { pooledOutlineWork } from './outline-pool.js';
export {
  annotationReviewEvent,
  annotationVersion,
  annotationWorkflow,
  comparison,
  reviewStatistics,
  slideReview,
  worklist,
  type AnnotationStatistics,
  type Comparison,
  type OrganStatistics,
  type SlideReview,
  type Worklist,
} from './views.js';
