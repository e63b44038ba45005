import { isIP } from 'node:net';
import cron from 'node-cron';
import { z } from 'zod';

const cronExpression = z.string().refine((expr) => expr === '' || cron.validate(expr), 'must be a cron expression such as "0 8 * * *", or empty');

function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/**
 * The shape of `config/*.json` after layering, before paths are resolved.
 * Every key has a default in `config/default.json`; `SLIDEBANK_*` environment
 * variables are derived from these key paths (see env.ts).
 */
const PORT_RULE = 'must be a whole number from 0 to 65535 (0 picks a free port)';
const port = z.number({ error: PORT_RULE }).int(PORT_RULE).min(0, PORT_RULE).max(65535, PORT_RULE);
const seconds = (max: number) =>
  z.number({ error: `must be a number of seconds` }).min(0, 'must not be negative').max(max, `must be at most ${max} seconds`);
const folder = z.string({ error: 'must be a folder path' }).min(1, 'must not be empty');
const wholeCount = z
  .number({ error: 'must be a number' })
  .int('must be a whole number')
  .min(0, 'must not be negative (0 turns the limit off)')
  .max(Number.MAX_SAFE_INTEGER, 'is too large');

export const configSchema = z.strictObject({
  port,
  host: z.string().min(1, 'must name an address to listen on, such as 0.0.0.0 or 127.0.0.1'),
  /** Empty means SQLite at `<paths.data>/slidebank.sqlite`. */
  databaseUrl: z.string({ error: 'must be a URL string' }),
  database: z.strictObject({
    connectTimeoutSeconds: seconds(3600),
    poolMax: z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(200, 'must be at most 200'),
  }),
  paths: z.strictObject({
    /** Relative to the working directory; the other paths are relative to this one. */
    data: folder,
    slides: folder,
    quarantine: folder,
    cache: folder,
    outbox: folder,
    /** Originals kept after ingest (when ingest.keepOriginals); never served. */
    originals: folder,
    thumbnails: folder,
    /** Files dropped here are ingested by the inbox job (ingest.inboxSchedule). */
    inbox: folder,
  }),
  log: z.strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
      error: 'must be one of fatal, error, warn, info, debug, trace, silent',
    }),
  }),
  http: z.strictObject({
    bodyLimit: z
      .string()
      .regex(/^\d+(\.\d+)?\s*(b|kb|mb)$/i, 'must be a size such as 512kb or 1mb'),
    shutdownTimeoutSeconds: seconds(600),
    trustProxy: z.boolean({ error: 'must be true or false' }),
    /** The Secure flag of cookies: "auto" sets it on HTTPS requests (behind a proxy only with trustProxy), true and false always and never. */
    secureCookies: z.preprocess(
      (value) => (value === 'true' ? true : value === 'false' ? false : value),
      z.union([z.literal('auto'), z.boolean()], { error: 'must be "auto", true or false' }),
    ),
  }),
  tiles: z.strictObject({
    /** native: the slide's own tile size and no overlap where its tiles can pass through; openslide: 254/1; custom: tileSize/overlap. */
    grid: z.enum(['native', 'openslide', 'custom'], { error: 'must be native, openslide or custom' }),
    tileSize: z.number().int('must be a whole number').min(16, 'must be at least 16').max(4096, 'must be at most 4096'),
    overlap: z.number().int('must be a whole number').min(0, 'must not be negative').max(64, 'must be at most 64'),
    format: z.enum(['jpeg', 'png', 'webp'], { error: 'must be jpeg, png or webp' }),
    quality: z.number().int('must be a whole number').min(1, 'must be 1–100').max(100, 'must be 1–100'),
    encodedCacheMegabytes: z.number().min(0, 'must not be negative'),
    decodedCacheMegabytes: z.number().min(0, 'must not be negative'),
    openSlides: z.number().int('must be a whole number').min(1, 'must be at least 1'),
    /** Decode-and-encode jobs at once; 0 means as many as libuv has threads (UV_THREADPOOL_SIZE, default 4). */
    renderConcurrency: z.number().int('must be a whole number').min(0, 'must not be negative').max(256, 'must be at most 256'),
    /** Decode Deep Zoom tiles that are whole blocks of stored JPEG tiles at reduced size with libjpeg-turbo (native/scaled-jpeg), where built. */
    scaledDecode: z.boolean({ error: 'must be true or false' }),
    /** The most pixels of a stored level one render (IIIF image, Deep Zoom tile) may decode; larger requests are refused with 400. */
    maxRenderSourcePixels: z.number({ error: 'must be a number' }).int('must be a whole number').min(16_777_216, 'must be at least 16777216 (4096 × 4096)').max(1_073_741_824, 'must be at most 1073741824'),
  }),
  /** Generate and ingest demo slides on the first start with an empty catalog. */
  demo: z.boolean({ error: 'must be true or false' }),
  ingest: z.strictObject({
    /** The controlled vocabularies, relative to the configuration folder. */
    vocabularies: z.string().min(1, 'must name a JSON file'),
    keepOriginals: z.boolean({ error: 'must be true or false' }),
    // A cron expression for the inbox job (every five minutes: "*/5 * * * *"); empty turns it off.
    inboxSchedule: cronExpression,
    /** Specimens collected from this month on need a recorded donation consent (YYYY-MM); empty turns the rule off. */
    consentRequiredFrom: z.string().regex(/^(\d{4}-(0[1-9]|1[0-2]))?$/, 'must be a month as YYYY-MM, or empty'),
    /** Regular expressions: matches in annotation Text fields are replaced before publishing. */
    scrubTextPatterns: z.array(
      z.string().refine((source) => {
        try {
          new RegExp(source, 'g');
          return true;
        } catch {
          return false;
        }
      }, 'must be a valid regular expression'),
    ),
    /** 64 hex digits: an AES-256 key that turns on the encrypted table linking new names to original ones. Empty: no linkage is kept. */
    linkageKey: z.string().regex(/^([0-9a-fA-F]{64})?$/, 'must be 64 hex digits (a 256-bit key), or empty'),
  }),
  jobs: z.strictObject({
    /** The time zone cron expressions are read in, e.g. "Asia/Seoul" or "Europe/Berlin". */
    timeZone: z.string().refine(isTimeZone, 'must be an IANA time zone such as UTC or Asia/Seoul'),
    // When DUA and membership reminders go out (daily at 08:00) and when lapsed levels are lowered (hourly); empty turns a job off.
    remindersSchedule: cronExpression,
    expirySchedule: cronExpression,
    // Nightly clean-up of expired sessions, links and throttling records, and of never-confirmed accounts.
    cleanupSchedule: cronExpression,
    // Tissue masks (and missing thumbnails) for published slides that have none yet; empty turns it off.
    preprocessSchedule: cronExpression,
  }),
  /** The toolbox job queue and its worker processes. */
  queue: z.strictObject({
    /** Worker processes `serve` starts beside the web server; 0 = none (run `slidebank worker` as services of their own). */
    workers: z.number({ error: 'must be a number' }).int('must be a whole number').min(0, 'must not be negative').max(64, 'must be at most 64'),
    /** How long a claimed job stays a worker's without a heartbeat; a job whose worker died is taken up again after this. */
    leaseSeconds: z.number({ error: 'must be a number' }).min(1, 'must be at least 1 second').max(3600, 'must be at most 3600 seconds'),
    /** Tries of a job that fails for a reason other than its input (which fails at once). */
    maxAttempts: z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(20, 'must be at most 20'),
    /** How often an idle worker looks for work. */
    pollSeconds: z.number({ error: 'must be a number' }).min(0.05, 'must be at least 0.05 seconds').max(600, 'must be at most 600 seconds'),
    /** The first retry waits this long, each later one twice as long as the one before (at most an hour). */
    retrySeconds: z.number({ error: 'must be a number' }).min(0, 'must not be negative').max(3600, 'must be at most 3600 seconds'),
    /** Jobs one user may have waiting in the queue; more are refused (429). 0 = no bound. */
    maxQueuedPerUser: wholeCount,
    /** Jobs of one user that run at once; the others wait while other users' jobs are claimed. 0 = no bound. */
    maxRunningPerUser: wholeCount,
    /** A job running longer is stopped by its worker and failed; minutes, fractions allowed. 0 = no bound. */
    maxRunMinutes: z.number({ error: 'must be a number of minutes' }).min(0, 'must not be negative (0 turns the limit off)').max(525_600, 'must be at most 525600 minutes'),
    /** The most files (patch grid positions, overlay tiles) one job may make, estimated before it is queued (413 beyond). 0 = no bound. */
    maxOutputCount: wholeCount,
    /** The most bytes one job may write, estimated before it is queued (413 beyond). 0 = no bound. */
    maxOutputBytes: wholeCount,
  }),
  auth: z.strictObject({
    /** Signs session cookies; several comma-separated rotate (the first signs). Empty: generated at first start into <paths.data>/session-secret. */
    sessionSecret: z.string().refine(
      (text) => text.trim() === '' || text.split(',').every((key) => key.trim().length >= 32),
      'must be empty or keys of at least 32 characters each, comma-separated',
    ),
    sessionHours: z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(720, 'must be at most 720'),
    /** How long a confirmation link works. */
    confirmationHours: z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(720, 'must be at most 720'),
    /** How long a password reset link works. */
    resetMinutes: z.number({ error: 'must be a number' }).int('must be a whole number').min(5, 'must be at least 5').max(1440, 'must be at most 1440'),
    /** Accounts whose address was never confirmed are removed by the clean-up job after this many days. */
    unconfirmedDays: z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(3650, 'must be at most 3650'),
    lockout: z.strictObject({
      /** Passwords checked for one e-mail address per `minutes` (each counted before it is checked); the last one failing locks the address for `minutes`. */
      maxFailures: z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(1000, 'must be at most 1000'),
      minutes: z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(1440, 'must be at most 1440'),
      /** Passwords checked for logins from one client address per `minutes`, likewise (a right password gives its count back). */
      maxFailuresPerAddress: z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(100000, 'must be at most 100000'),
    }),
    /** Registrations, password-reset requests and confirmation resends one client address may make per `minutes` (429 beyond). */
    accountRequests: z.strictObject({
      maxPerAddress: z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(100000, 'must be at most 100000'),
      minutes: z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(1440, 'must be at most 1440'),
    }),
    /** Password hashes computed at once, and how many more may wait (503 with Retry-After beyond); each takes 32 MiB. */
    passwordHashing: z.strictObject({
      concurrent: z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(64, 'must be at most 64'),
      queued: z.number({ error: 'must be a number' }).int('must be a whole number').min(0, 'must not be negative').max(10000, 'must be at most 10000'),
    }),
  }),
  initialAdmin: z.strictObject({
    email: z.email({ error: 'must be an e-mail address' }),
  }),
  downloads: z.strictObject({
    /** "" serves files from the app; an nginx `internal` location prefix such as "/protected-slides/" answers with X-Accel-Redirect instead. */
    nginxAccelRedirect: z
      .string({ error: 'must be a text' })
      .regex(/^(\/([A-Za-z0-9._~-]+\/)+)?$/, 'must be empty or an internal location prefix that starts and ends with "/", such as "/protected-slides/"'),
    /** Slides in one ZIP bundle; 0 = the manifests' bound of 10,000. */
    maxBundleSlides: wholeCount,
    /** Bytes of files in one ZIP bundle; 0 = no bound. */
    maxBundleBytes: wholeCount,
    /** Downloads (files and bundles) one user may have running at once; 0 = no bound. */
    concurrentPerUser: wholeCount,
    /** Bytes one user may download per UTC day; 0 = no bound. */
    bytesPerDay: wholeCount,
  }),
  metrics: z.strictObject({
    /** Who may read GET /metrics without an administrator's token: addresses or CIDR ranges; from the environment, comma-separated. */
    allow: z.preprocess(
      (value) => (typeof value === 'string' ? value.split(',').map((part) => part.trim()).filter((part) => part !== '') : value),
      z.array(z.string().refine(isAddressOrRange, 'must be an IP address or a CIDR range such as 10.0.0.0/8 or ::1/128')),
    ),
  }),
  /** Who this appliance is to partner sites (export bags, `GET /api/site`). */
  site: z.strictObject({
    /** Written as Source-Organization into export bags. */
    name: z.string().min(1, 'must name the site, e.g. "Seoul National University Hospital"').max(200, 'must be at most 200 characters'),
    /** The address partners reach this server at, for the download URLs of holey bags; empty = mail.publicUrl. */
    publicUrl: z.string().refine((text) => text === '' || isHttpUrl(text), 'must be empty or an http:// or https:// URL'),
  }),
  /** Importing other sites' export bags. */
  mirror: z.strictObject({
    /** The keys whose signed bags `slidebank import` accepts: [{"name", "publicKey"}] (publicKey as GET /api/site shows it); from the environment as JSON. */
    trustedKeys: z.preprocess(
      (value) => {
        if (typeof value !== 'string') return value;
        try {
          return JSON.parse(value) as unknown;
        } catch {
          return value;
        }
      },
      z.array(
        z.strictObject({
          name: z.string().min(1, 'must name the partner').max(200, 'must be at most 200 characters'),
          publicKey: z.string().refine((text) => Buffer.from(text, 'base64').length === 32 && /^[A-Za-z0-9+/]{43}=$/.test(text), 'must be an Ed25519 public key: 44 characters of base64, as GET /api/site shows it'),
        }),
        { error: 'must be a list of {"name", "publicKey"} (JSON in the environment)' },
      ),
    ),
  }),
  mail: z
    .strictObject({
      /** The From of every message, e.g. "Slidebank <no-reply@hospital.example>". */
      from: z.string().min(3, 'must be an address such as "Slidebank <no-reply@hospital.example>"'),
      /** The address users reach the appliance at; links in mails start with it. */
      publicUrl: z.string().refine(isHttpUrl, 'must be an http:// or https:// URL such as https://slidebank.hospital.example'),
      /** With neither url nor host set, mail is written to paths.outbox as .eml files instead of sent. */
      smtp: z.strictObject({
        /** smtp://user:password@host:587 or smtps://…:465; use either this or host/port/…. */
        url: z.string().regex(/^(smtps?:\/\/.+)?$/, 'must be an smtp:// or smtps:// URL, or empty'),
        host: z.string(),
        port: z.number({ error: 'must be a port number' }).int('must be a whole number').min(1, 'must be 1–65535').max(65535, 'must be 1–65535'),
        /** true: TLS from the start (port 465); false: STARTTLS when the server offers it (port 587 or 25). */
        secure: z.boolean({ error: 'must be true or false' }),
        user: z.string(),
        password: z.string(),
      }),
    })
    .superRefine((mail, ctx) => {
      if (mail.smtp.url !== '' && mail.smtp.host !== '') {
        ctx.addIssue({ code: 'custom', path: ['smtp', 'host'], message: 'give either mail.smtp.url or mail.smtp.host, not both' });
      }
      if (mail.smtp.password !== '' && mail.smtp.user === '') {
        ctx.addIssue({ code: 'custom', path: ['smtp', 'user'], message: 'must be set when mail.smtp.password is' });
      }
    }),
});

function isAddressOrRange(text: string): boolean {
  const [address = '', bits, ...rest] = text.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (bits === undefined) return true;
  const prefix = Number(bits);
  return /^\d{1,3}$/.test(bits) && prefix <= (family === 4 ? 32 : 128);
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.search === '' && url.hash === '';
  } catch {
    return false;
  }
}

export type ConfigFile = z.infer<typeof configSchema>;
