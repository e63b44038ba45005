export { ReviewRepository, REVIEW_STATES, VERSION_METHODS, type AnnotationVersion, type ReviewState, type VersionMethod, type Workflow } from './review.repository.js';
export { ReviewService, compareVersions, parseOutline, type Comparison, type Reviewer, type SlideReview } from './review.service.js';
export type { AnnotationStatistics, OrganStatistics } from './statistics.js';
