import path from 'node:path';
import { AccessTokensRepository } from './access/access-tokens.repository.js';
import { AgreementsRepository } from './agreements/agreements.repository.js';
import { AgreementsService } from './agreements/agreements.service.js';
import { AccountsService } from './access/accounts.service.js';
import { AuthTokensRepository } from './access/auth-tokens.repository.js';
import { DeferredWork } from './access/deferred-work.js';
import { initialAdminFile } from './access/initial-admin.js';
import { LoginThrottleRepository } from './access/login-throttle.repository.js';
import { resolveSessionKeys } from './access/session-secret.js';
import { DatabaseSessionStore } from './access/session-store.js';
import { PasswordHasher } from './access/password-hasher.js';
import { SessionsRepository } from './access/sessions.repository.js';
import { levelSlideAccess, type SlideAccessPolicy } from './access/slide-access.js';
import { TileCapabilities } from './access/tile-capability.js';
import { TokensService } from './access/tokens.service.js';
import { createUsersAdminService } from './access/create.js';
import type { AdministrativeApproval, UsersAdminService } from './access/users-admin.service.js';
import { UsersRepository } from './access/users.repository.js';
import type { AuditLog } from './audit/audit-log.js';
import { createAuditLog } from './audit/create.js';
import { AuditService } from './audit/audit.service.js';
import { createReviewService } from './annotation-review/create.js';
import { pooledOutlineWork, type ReviewService } from './annotation-review/index.js';
import { AnnotationsService } from './catalog/annotations.service.js';
import { CatalogRepository } from './catalog/catalog.repository.js';
import { CatalogService } from './catalog/catalog.service.js';
import { createSlideRelease, type SlideRelease } from './catalog/slide-release.js';
import { createSlidesRepository } from './catalog/create.js';
import type { Config } from './config/index.js';
import type { Database } from './db/index.js';
import { IngestRecordsService } from './ingest/ingest-records.service.js';
import { IngestRepository } from './ingest/ingest.repository.js';
import { loadVocabulary } from './catalog/vocabulary.js';
import type { Logger } from './logging.js';
import { createMailer, mailSiteFrom, type Mailer } from './mail/index.js';
import { PagesRepository } from './pages/pages.repository.js';
import { PagesService } from './pages/pages.service.js';
import { TilesService } from './tiles/tiles.service.js';
import { OverlaysService } from './tiles/overlays.service.js';
import { createDownloadLimits, createDownloadsService, type DownloadsService } from './downloads/index.js';
import { createJobRuns, createJobs, type ScheduledJob } from './jobs/index.js';
import { JobsService } from './jobs/jobs.service.js';
import type { SiteIdentity } from './datasets/site-key.js';
import { siteIdentityOf } from './datasets/site.js';
import { createExchangeService, type ExchangeService } from './datasets/index.js';
import { createQueueService } from './queue/create.js';
import type { QueueService } from './queue/queue.service.js';
import { SlideStatusRepository } from './catalog/slide-status.repository.js';
import { SlideStatusService } from './catalog/slide-status.service.js';
import { AppMetrics, HealthService, MetricsRepository } from './metrics/index.js';
import { DownloadHistoryService } from './downloads/history.service.js';
import { createAuthentication, type Authentication } from './http/middleware/authenticate.js';
import { createSignInServices, type SignInServices } from './access/directory/index.js';
import type { LevelRefresh } from './access/directory/external-accounts.service.js';
import { signInVerifier } from './http/routes/sign-in-session.js';
import { createCsrf, type Csrf } from './http/middleware/csrf.js';
import { createChallengesService, createHiddenTruth } from './challenges/create.js';
import type { ChallengesService } from './challenges/challenges.service.js';
import type { HiddenTruth } from './challenges/hidden-truth.js';
import { createDicomwebService, type DicomwebService } from './dicom/web/index.js';
import { DicomViewerLinks } from './dicom/viewer-link.js';

/** The services the HTTP layer (and later the jobs) call, each given only the repositories it uses. */
export interface Services {
  tiles: TilesService;
  /** Heat-map overlays published under <paths.cache>/overlays/<slide id>/<name>/. */
  overlays: OverlaysService;
  slideAccess: SlideAccessPolicy;
  /** Whether a slide's bytes (and anything made from them) may leave the server at all. */
  slideRelease: SlideRelease;
  catalog: CatalogService;
  /** Annotations as GeoJSON for the viewer. */
  annotations: AnnotationsService;
  /** The audit log as administrators read and export it. */
  audit: AuditService;
  /** News and the user guide. */
  pages: PagesService;
  /** Accounts, sessions, tokens and user management. */
  access: AccessServices;
  /** Slide and annotation files, ZIP bundles and manifests for L2/L3 researchers; every delivery audited. */
  downloads: DownloadsService;
  /** Data use agreements, usage reports and partner institutions. */
  agreements: AgreementsService;
  /** What each ingest did, for curators. */
  ingestRecords: IngestRecordsService;
  /** Withdrawing and republishing slides, for administrators and curators. */
  slideStatus: SlideStatusService;
  /** Annotation versions, their review by pathologists, agreement figures. */
  annotationReview: ReviewService;
  /** Each user's own downloads, from the audit log. */
  downloadHistory: DownloadHistoryService;
  /** The scheduled jobs and their recent runs, read-only. */
  jobs: JobsService;
  /** Toolbox jobs: submit, follow, cancel, fetch results (the work runs in worker processes). */
  queue: QueueService;
  /** The jobs themselves, for the scheduler: the same instances the services above use. */
  scheduledJobs: ScheduledJob[];
  /** This site's name, address and export signing key, for partners (`GET /api/site`); the key is read or made on first call. */
  site: () => SiteIdentity;
  /** Datasets for partner sites over HTTP: released versions and holey bags (L3 and admins). */
  exchange: ExchangeService;
  /** Prometheus metrics of this process: tile timings (observed by the app's middleware), the services' counters, counts in the database. */
  metrics: AppMetrics;
  /** Whether the server, its database and its data folders are well: the public answer and operators' details. */
  health: HealthService;
  /** Challenges: phases, participants, teams, submissions, leaderboards. */
  challenges: ChallengesService;
  /** Whether a slide's annotation is the hidden truth of a challenge (administrators only until published). */
  hiddenTruth: HiddenTruth;
  /** DICOMweb of the published catalog: each slide as the DICOM series the export writes, made on the fly. */
  dicomweb: DicomwebService;
  /** A slide's study and series as DICOMweb serves them, and its link to the DICOMweb viewer of dicom.viewerUrl. */
  dicomViewer: DicomViewerLinks;
  close(): Promise<void>;
}

export interface AccessServices {
  accounts: AccountsService;
  tokens: TokensService;
  users: UsersAdminService;
  sessionStore: DatabaseSessionStore;
  /** Sign the session cookies: `auth.sessionSecret`, or the secret generated at first start in `<paths.data>/session-secret`. */
  sessionKeys: string[];
  /** Account work done after the answer (look-ups, links, mails); closed with the services. */
  deferred: DeferredWork;
  /** Who is asking (session or bearer token), and login and logout through passport. */
  authentication: Authentication;
  /** CSRF tokens: the session's own, or signed ones for anonymous visitors. */
  csrf: Csrf;
  /** Hospital sign-in: the directory (LDAP, Active Directory) and single sign-on (OpenID Connect). */
  signIn: SignInServices;
  /** Short-lived signed grants to view one slide's tiles, checked without the database (tiles.capabilityMinutes). */
  tileCapabilities: TileCapabilities;
}

/** What createServices takes from outside the database: tests pass recording doubles. */
export interface ExternalDependencies {
  mailer?: Mailer;
  audit?: AuditLog;
  /** When the server started, for the uptime it reports (default: when the services are made). */
  startedAt?: Date;
}

export function createServices(config: Config, db: Database, log: Logger, external: ExternalDependencies = {}): Services {
  const tiles = new TilesService(createSlidesRepository(db), config.paths.slides, config.tiles, log);
  const auditLog = createAuditLog(db);
  // Outlines are parsed, checked and compared on worker threads of their own.
  const annotationReview = createReviewService(config, db, log, { outlineWork: pooledOutlineWork(), audit: external.audit ?? auditLog });
  const mailer = external.mailer ?? createMailer(config, log);
  const slideRelease = createSlideRelease(db);
  const hiddenTruth = createHiddenTruth(db);
  const catalog = createCatalogService(config, db);
  // One gate for every path that sends files: bundles, single files, dataset bags and job results count against the same allowance.
  const downloadLimits = createDownloadLimits(config);
  const agreements = new AgreementsService({
    repository: new AgreementsRepository(db.knex),
    audit: external.audit ?? auditLog,
    mailer,
    site: mailSiteFrom(config),
    dataDir: config.paths.data,
    log,
    // Mail to administrators goes out after the answer, with the accounts' mail (\`access\` is made below).
    defer: (what, task) => access.deferred.defer(what, task),
  });
  const challenges = createChallengesService(config, db, log, { audit: external.audit ?? auditLog, mailer });
  const scheduledJobs = createJobs(config, db, log, { agreements });
  const access = createAccessServices(config, db, log, { mailer, audit: external.audit ?? auditLog, administrativeApproval: agreements, levels: agreements });
  const downloads = createDownloadsService(config, db, log, {
    catalog,
    audit: external.audit ?? auditLog,
    duaReference: (userId) => agreements.referenceFor(userId),
    limits: downloadLimits,
    hiddenAnnotations: (who, ids) => hiddenTruth.hiddenFor({ userId: who.actorId }, ids),
  });
  const metricsRepository = new MetricsRepository(db.knex);
  const dicomweb = createDicomwebService(config, db, log);
  return {
    tiles,
    overlays: new OverlaysService(slideRelease, path.join(config.paths.cache, 'overlays')),
    slideAccess: levelSlideAccess,
    slideRelease,
    catalog,
    annotations: new AnnotationsService(createSlidesRepository(db), config.paths.slides, slideRelease),
    audit: new AuditService(auditLog),
    pages: new PagesService(new PagesRepository(db.knex), auditLog),
    access,
    downloads,
    agreements,
    ingestRecords: new IngestRecordsService(new IngestRepository(db.knex)),
    // Both read back what the audit log holds (a withdrawal's reason, the downloads), so they use the database's log itself.
    slideStatus: new SlideStatusService(new SlideStatusRepository(db.knex), auditLog, [tiles, dicomweb]),
    annotationReview,
    downloadHistory: new DownloadHistoryService(auditLog),
    // The job list is built for its names and schedules only; the scheduler in boot.ts runs its own.
    jobs: new JobsService(scheduledJobs, createJobRuns(db)),
    queue: createQueueService(config, db, external.audit ?? auditLog, downloadLimits),
    scheduledJobs,
    site: siteIdentityOf(config),
    exchange: createExchangeService(config, db, external.audit ?? auditLog, downloadLimits),
    metrics: new AppMetrics({ tiles, downloads, repository: metricsRepository, log }),
    health: new HealthService({
      db,
      repository: metricsRepository,
      folders: { data: config.paths.data, slides: config.paths.slides, cache: config.paths.cache },
      startedAt: external.startedAt ?? new Date(),
      tiles: () => tiles.enginePaths(),
    }),
    challenges,
    hiddenTruth,
    dicomweb,
    dicomViewer: new DicomViewerLinks(config.dicom.viewerUrl, (slideId) => dicomweb.servedUids(slideId)),
    close: async () => {
      // The server has stopped answering by now: pending account mails go out (or are logged) before the database closes.
      await access.deferred.close(config.http.shutdownTimeoutSeconds * 1000);
      await tiles.close();
      await dicomweb.close();
      await annotationReview.close();
    },
  };
}

export function createAccessServices(
  config: Config,
  db: Database,
  log: Logger,
  { mailer, audit, administrativeApproval, levels }: Required<Pick<ExternalDependencies, 'mailer' | 'audit'>> & { administrativeApproval?: AdministrativeApproval; levels?: LevelRefresh },
): AccessServices {
  const users = new UsersRepository(db.knex);
  const sessions = new SessionsRepository(db.knex);
  const tokens = new AccessTokensRepository(db.knex);
  const links = new AuthTokensRepository(db.knex);
  const deferred = new DeferredWork(log);
  const { auth } = config;
  const sessionKeys = resolveSessionKeys(auth.sessionSecret, config.paths.data, log);
  const csrf = createCsrf({ keys: sessionKeys, maxAgeMs: auth.sessionHours * 3_600_000, secureCookies: config.http.secureCookies, publicUrl: config.mail.publicUrl });
  const accounts = new AccountsService(
    { users, links, sessions, tokens, throttle: new LoginThrottleRepository(db.knex), mailer, audit, hasher: new PasswordHasher(auth.passwordHashing), deferred, log },
    {
      site: mailSiteFrom(config),
      confirmationHours: auth.confirmationHours,
      resetMinutes: auth.resetMinutes,
      lockout: auth.lockout,
      requests: auth.accountRequests,
      initialAdminFile: initialAdminFile(config.paths.data),
    },
  );
  const accessTokens = new TokensService(tokens, users, audit);
  const signIn = createSignInServices(config, db, log, { accounts, audit, mailer, deferred, ...(levels ? { levels } : {}) });
  return {
    accounts,
    tokens: accessTokens,
    users: createUsersAdminService(db, audit, administrativeApproval),
    sessionStore: new DatabaseSessionStore(sessions),
    sessionKeys,
    deferred,
    authentication: createAuthentication(accounts, accessTokens, csrf, undefined, signInVerifier(signIn)),
    csrf,
    signIn,
    tileCapabilities: new TileCapabilities(sessionKeys, config.tiles.capabilityMinutes * 60),
  };
}

export function createCatalogService(config: Config, db: Database): CatalogService {
  return new CatalogService(new CatalogRepository(db.knex), loadVocabulary(config.ingest.vocabularies), config.paths.thumbnails, createSlideRelease(db));
}
