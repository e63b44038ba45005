/**
 * The API's answers as the portal reads them. Each is the type generated from
 * the server's API description (api/schema.ts, written by `npm run docs` from
 * the route definitions), under the name the components use: a field the
 * server renames, drops or makes nullable fails the type check here instead
 * of showing as a blank in the browser.
 */
import type { components } from './api/schema';

type Schemas = components['schemas'];

// The catalog
export type SearchResult = Schemas['CatalogPage'];
export type SlideItem = Schemas['CatalogSlide'];
/** One slide on its own page (`GET /api/slides/:id`): as the catalog lists it, and how DICOMweb serves it. */
export type SlideDetail = Schemas['SlideDetail'];
export type FacetCount = Schemas['FacetCount'];
export type CatalogSummary = Schemas['CatalogSummary'];
/** A selection's size and its signed ZIP link (`POST /api/downloads/links`). */
export type DownloadLink = Schemas['DownloadLink'];
/** What the collection holds, in counts, for anyone (`GET /api/collection`). */
export type Collection = Schemas['Collection'];
/** A published slide's annotation (`GET /api/slides/:id/annotation.geojson`). */
export type AnnotationGeoJson = Schemas['AnnotationGeoJson'];
export type AnnotationFeature = AnnotationGeoJson['features'][number];
/** A heat-map overlay from the toolbox (`GET /tiles/:id/overlays`). */
export type OverlaySummary = Schemas['OverlaySummary'];
export type OverlayList = Schemas['OverlayList'];

export type Facet = keyof SearchResult['facets'];
/** The facets in the order the catalog shows them. */
export const FACETS = ['organ', 'histology', 'stain', 'marker', 'differentiation', 'annotationMethod', 'dataset'] as const satisfies readonly Facet[];

export const FACET_LABELS: Record<Facet, string> = {
  organ: 'Organ',
  histology: 'Histology',
  stain: 'Stain',
  marker: 'IHC marker',
  differentiation: 'Differentiation',
  annotationMethod: 'Annotation method',
  dataset: 'Dataset',
};

// The account
export type Me = Schemas['Me'];
export type Level = Me['level'];
export type StaffRole = Me['roles'][number];
export type AccessToken = Schemas['AccessToken'];
export type AccessTokenList = Schemas['AccessTokenList'];
export type NewAccessToken = Schemas['NewAccessToken'];
export type DownloadHistory = Schemas['DownloadHistory'];
export type DownloadHistoryItem = Schemas['DownloadHistoryItem'];

// Data use agreements
export type DuaVersion = Schemas['DuaVersion'];
export type DuaApplication = Schemas['DuaApplication'];
export type DuaApplicationList = Schemas['DuaApplicationList'];
export type DuaVersionList = Schemas['DuaVersionList'];
export type DuaDraft = Schemas['DuaDraft'];
export type DuaDraftList = Schemas['DuaDraftList'];
/** What waits for an administrator (`GET /api/admin/dua/pending`): the header's badge. */
export type DuaPending = Schemas['DuaPending'];
export type UsageReport = Schemas['UsageReport'];
export type UsageReportList = Schemas['UsageReportList'];
export type Institution = Schemas['Institution'];
export type InstitutionList = Schemas['InstitutionList'];

// News and the user guide
export type PublicPage = Schemas['PublicPage'];
export type NewsList = Schemas['NewsList'];
export type GuideEntry = Schemas['GuideEntry'];
export type GuideContents = Schemas['GuideContents'];

// Toolbox jobs
export type ToolboxJob = Schemas['ToolboxJob'];
export type ToolboxJobType = ToolboxJob['type'];
export type ToolboxJobList = Schemas['ToolboxJobList'];

// Annotation review
export type AnnotationReview = Schemas['AnnotationReview'];
export type AnnotationVersion = Schemas['AnnotationVersion'];
export type AnnotationState = Schemas['AnnotationWorkflow']['state'];
export type AnnotationComparison = Schemas['AnnotationComparison'];
export type AnnotationWorklist = Schemas['AnnotationWorklist'];
export type WorklistItem = AnnotationWorklist['items'][number];
export type AnnotationStatistics = Schemas['AnnotationStatistics'];

// Datasets and site exchange
export type DatasetSummary = Schemas['DatasetSummary'];
export type DatasetRelease = Schemas['DatasetRelease'];
export type DatasetList = Schemas['DatasetList'];
/** `GET /api/site`: this site as partners see it. */
export type SiteInfo = Schemas['Site'];

// Administration
export type AdminUser = Schemas['AdminUser'];
export type AdminUserList = Schemas['AdminUserList'];
export type AdminPage = Schemas['AdminPage'];
export type AdminPageSummary = Schemas['AdminPageSummary'];
export type AdminPageList = Schemas['AdminPageList'];
export type AuditEntry = Schemas['AuditEntry'];
export type AuditPage = Schemas['AuditPage'];
export type ManagedSlide = Schemas['ManagedSlide'];
export type ManagedSlideList = Schemas['ManagedSlideList'];
export type IngestRecord = Schemas['IngestRecord'];
export type IngestRecordList = Schemas['IngestRecordList'];
export type IngestReport = Schemas['IngestReport'];
export type ScheduledJob = Schemas['ScheduledJob'];
export type ScheduledJobRun = Schemas['ScheduledJobRun'];
export type ScheduledJobList = Schemas['ScheduledJobList'];

// Challenges
export type ChallengeSummary = Schemas['ChallengeSummary'];
export type ChallengeDetail = Schemas['ChallengeDetail'];
export type ChallengePhase = ChallengeSummary['phases'][number];
export type ChallengeSubmission = Schemas['ChallengeSubmission'];
export type ChallengeLeaderboard = Schemas['ChallengeLeaderboard'];
export type ChallengeTeam = Schemas['ChallengeTeam'];
export type SubmissionValidationReport = Schemas['SubmissionValidationReport'];
export type ChallengeUpload = Schemas['ChallengeUpload'];
export type ChallengeSettings = Schemas['ChallengeSettings'];
