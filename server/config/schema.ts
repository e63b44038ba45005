import { accessSync, constants, statSync } from 'node:fs';
import { isIP } from 'node:net';
import cron from 'node-cron';
import { z } from 'zod';
import { MAX_CAPABILITY_MINUTES } from '../access/tile-capability.js';
import { viewerUrlProblem } from '../dicom/viewer-link.js';

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
 * Every key has a default in `config/default.json` and a description in
 * descriptions.ts (docs/configuration.md is made from the three); `SLIDEBANK_*`
 * environment variables are derived from these key paths (see env.ts).
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

/** A list given as JSON (environment variables), or the list itself (configuration files). */
const jsonList = <T extends z.ZodType>(item: T, error: string) =>
  z.preprocess((value) => {
    if (typeof value !== 'string') return value;
    try {
      return JSON.parse(value) as unknown;
    } catch {
      return value;
    }
  }, z.array(item, { error }));
const groupList = jsonList(z.string().min(1, 'must name a group (its DN or its name)'), 'must be a list of group DNs or names (JSON in the environment)');
const roleGroups = z.strictObject({ admin: groupList, curator: groupList, pathologist: groupList });
const ldapUrl = z.string().refine((text) => text === '' || /^ldaps?:\/\/[^/\s]+\/?$/i.test(text), 'must be empty or ldaps://host:port or ldap://host:port');

/** auth.ldap: the hospital's directory (LDAP or Active Directory); an empty url turns it off. */
const ldapSettings = z
  .strictObject({
    url: ldapUrl,
    startTls: z.boolean({ error: 'must be true or false' }),
    allowPlain: z.boolean({ error: 'must be true or false' }),
    caFile: z.string().refine((file) => file === '' || isReadableFile(file), 'must be empty or a readable PEM file of certificate authorities'),
    bindDn: z.string(),
    bindPassword: z.string(),
    userSearchBase: z.string(),
    userFilter: z.string().refine((text) => text.includes('{username}'), 'must contain {username}, such as (&(objectClass=person)(mail={username}))'),
    emailAttribute: z.string().min(1, 'must name an attribute, such as mail'),
    nameAttribute: z.string().min(1, 'must name an attribute, such as cn or displayName'),
    groupSearchBase: z.string(),
    nestedGroups: z.enum(['off', 'in-chain', 'walk'], { error: 'must be off, in-chain (Active Directory) or walk' }),
    roleGroups,
    institutionGroups: jsonList(
      z.strictObject({ institution: z.string().min(1, 'must name an institution'), groups: z.array(z.string().min(1)).min(1, 'must list at least one group') }),
      'must be a list of {"institution", "groups"} (JSON in the environment)',
    ),
    timeoutSeconds: z.number({ error: 'must be a number of seconds' }).min(1, 'must be at least 1 second').max(120, 'must be at most 120 seconds'),
    domains: z.preprocess(
      (value) => (typeof value === 'string' ? value.split(',').map((part) => part.trim().toLowerCase()).filter((part) => part !== '') : value),
      z.array(z.string().regex(/^[a-z0-9.-]+\.[a-z]{2,}$/i, 'must be a mail domain such as hospital.example')),
    ),
  })
  .superRefine((ldap, ctx) => {
    if (ldap.url === '') return;
    const plain = ldap.url.toLowerCase().startsWith('ldap://');
    if (plain && !ldap.startTls && !ldap.allowPlain) {
      ctx.addIssue({ code: 'custom', path: ['url'], message: 'is plain LDAP: use ldaps://, or set auth.ldap.startTls, or (on a trusted network only) auth.ldap.allowPlain' });
    }
    if (!plain && ldap.startTls) ctx.addIssue({ code: 'custom', path: ['startTls'], message: 'applies to ldap:// URLs only (ldaps:// is TLS from the start)' });
    if (ldap.userSearchBase === '') ctx.addIssue({ code: 'custom', path: ['userSearchBase'], message: 'must be set when auth.ldap.url is' });
    if (ldap.bindPassword !== '' && ldap.bindDn === '') ctx.addIssue({ code: 'custom', path: ['bindDn'], message: 'must be set when auth.ldap.bindPassword is' });
    if (ldap.nestedGroups !== 'off' && ldap.groupSearchBase === '') {
      ctx.addIssue({ code: 'custom', path: ['groupSearchBase'], message: 'must be set when auth.ldap.nestedGroups is in-chain or walk' });
    }
  });

/** auth.oidc.providers: the hospital's single sign-on (OpenID Connect), one entry per provider. */
const oidcProviders = jsonList(
  z.strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,39}$/, 'must be a short name of lower-case letters, digits and dashes, such as "hospital"'),
    label: z.string().min(1, 'must be the text of the button, such as "Hospital single sign-on"').max(100, 'must be at most 100 characters'),
    issuer: z.string().refine(isIssuerUrl, 'must be an https:// URL (http:// only on a loopback address)'),
    clientId: z.string().min(1, 'must be the client id registered with the provider'),
    clientSecret: z.string(),
    scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'must be a scope name')).default(['openid', 'email', 'profile']),
    groupsClaim: z.string().default('groups'),
    roleGroups: roleGroups.default({ admin: [], curator: [], pathologist: [] }),
    institutionGroups: z.array(z.strictObject({ institution: z.string().min(1), groups: z.array(z.string().min(1)).min(1) })).default([]),
  }),
  'must be a list of providers {"name", "label", "issuer", "clientId", "clientSecret", ...} (JSON in the environment)',
).superRefine((providers, ctx) => {
  const seen = new Set<string>();
  providers.forEach((provider, index) => {
    if (seen.has(provider.name)) ctx.addIssue({ code: 'custom', path: [index, 'name'], message: `names a second provider "${provider.name}"; names must differ` });
    seen.add(provider.name);
  });
});

export const configSchema = z.strictObject({
  port,
  host: z.string().min(1, 'must name an address to listen on, such as 0.0.0.0 or 127.0.0.1'),
  databaseUrl: z.string({ error: 'must be a URL string' }),
  database: z.strictObject({
    connectTimeoutSeconds: seconds(3600),
    poolMax: z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(200, 'must be at most 200'),
  }),
  paths: z.strictObject({
    data: folder,
    slides: folder,
    quarantine: folder,
    cache: folder,
    outbox: folder,
    originals: folder,
    thumbnails: folder,
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
    secureCookies: z.preprocess(
      (value) => (value === 'true' ? true : value === 'false' ? false : value),
      z.union([z.literal('auto'), z.boolean()], { error: 'must be "auto", true or false' }),
    ),
  }),
  tiles: z.strictObject({
    grid: z.enum(['native', 'openslide', 'custom'], { error: 'must be native, openslide or custom' }),
    tileSize: z.number().int('must be a whole number').min(16, 'must be at least 16').max(4096, 'must be at most 4096'),
    overlap: z.number().int('must be a whole number').min(0, 'must not be negative').max(64, 'must be at most 64'),
    format: z.enum(['jpeg', 'png', 'webp'], { error: 'must be jpeg, png or webp' }),
    quality: z.number().int('must be a whole number').min(1, 'must be 1–100').max(100, 'must be 1–100'),
    encodedCacheMegabytes: z.number().min(0, 'must not be negative'),
    decodedCacheMegabytes: z.number().min(0, 'must not be negative'),
    openSlides: z.number().int('must be a whole number').min(1, 'must be at least 1'),
    renderConcurrency: z.number().int('must be a whole number').min(0, 'must not be negative').max(256, 'must be at most 256'),
    scaledDecode: z.boolean({ error: 'must be true or false' }),
    maxRenderSourcePixels: z.number({ error: 'must be a number' }).int('must be a whole number').min(16_777_216, 'must be at least 16777216 (4096 × 4096)').max(1_073_741_824, 'must be at most 1073741824'),
    capabilityMinutes: z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(MAX_CAPABILITY_MINUTES, `must be at most ${MAX_CAPABILITY_MINUTES}`),
  }),
  demo: z.boolean({ error: 'must be true or false' }),
  ingest: z.strictObject({
    vocabularies: z.string().min(1, 'must name a JSON file'),
    keepOriginals: z.boolean({ error: 'must be true or false' }),
    inboxSchedule: cronExpression,
    consentRequiredFrom: z.string().regex(/^(\d{4}-(0[1-9]|1[0-2]))?$/, 'must be a month as YYYY-MM, or empty'),
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
    linkageKey: z.string().regex(/^([0-9a-fA-F]{64})?$/, 'must be 64 hex digits (a 256-bit key), or empty'),
    converter: z.string().min(1, 'must name the vips command'),
    conversionQuality: z.number({ error: 'must be a number' }).int('must be a whole number').min(50, 'must be at least 50').max(100, 'must be at most 100'),
    conversionTimeoutSeconds: z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1 second').max(86_400, 'must be at most 86400 seconds'),
    conversionMemoryMegabytes: z.number({ error: 'must be a number' }).int('must be a whole number').min(256, 'must be at least 256').max(1_048_576, 'must be at most 1048576'),
    parallelSlides: z.number({ error: 'must be a number' }).int('must be a whole number').min(0, 'must not be negative (0 = the number of cores)').max(64, 'must be at most 64'),
  }),
  jobs: z.strictObject({
    timeZone: z.string().refine(isTimeZone, 'must be an IANA time zone such as UTC or Asia/Seoul'),
    remindersSchedule: cronExpression,
    expirySchedule: cronExpression,
    cleanupSchedule: cronExpression,
    preprocessSchedule: cronExpression,
  }),
  queue: z.strictObject({
    workers: z.number({ error: 'must be a number' }).int('must be a whole number').min(0, 'must not be negative').max(64, 'must be at most 64'),
    leaseSeconds: z.number({ error: 'must be a number' }).min(1, 'must be at least 1 second').max(3600, 'must be at most 3600 seconds'),
    maxAttempts: z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(20, 'must be at most 20'),
    pollSeconds: z.number({ error: 'must be a number' }).min(0.05, 'must be at least 0.05 seconds').max(600, 'must be at most 600 seconds'),
    retrySeconds: z.number({ error: 'must be a number' }).min(0, 'must not be negative').max(3600, 'must be at most 3600 seconds'),
    maxQueuedPerUser: wholeCount,
    maxRunningPerUser: wholeCount,
    maxRunMinutes: z.number({ error: 'must be a number of minutes' }).min(0, 'must not be negative (0 turns the limit off)').max(525_600, 'must be at most 525600 minutes'),
    maxOutputCount: wholeCount,
    maxOutputBytes: wholeCount,
    workerNice: z.number({ error: 'must be a number' }).int('must be a whole number').min(0, 'must be at least 0').max(19, 'must be at most 19'),
    workerIoPriority: z.enum(['idle', 'low', 'normal'], { error: 'must be idle, low or normal' }),
  }),
  auth: z.strictObject({
    sessionSecret: z.string().refine(
      (text) => text.trim() === '' || text.split(',').every((key) => key.trim().length >= 32),
      'must be empty or keys of at least 32 characters each, comma-separated',
    ),
    sessionHours: z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(720, 'must be at most 720'),
    confirmationHours: z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(720, 'must be at most 720'),
    resetMinutes: z.number({ error: 'must be a number' }).int('must be a whole number').min(5, 'must be at least 5').max(1440, 'must be at most 1440'),
    unconfirmedDays: z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(3650, 'must be at most 3650'),
    lockout: z.strictObject({
      maxFailures: z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(1000, 'must be at most 1000'),
      minutes: z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(1440, 'must be at most 1440'),
      maxFailuresPerAddress: z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(100000, 'must be at most 100000'),
    }),
    accountRequests: z.strictObject({
      maxPerAddress: z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(100000, 'must be at most 100000'),
      minutes: z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(1440, 'must be at most 1440'),
    }),
    passwordHashing: z.strictObject({
      concurrent: z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(64, 'must be at most 64'),
      queued: z.number({ error: 'must be a number' }).int('must be a whole number').min(0, 'must not be negative').max(10000, 'must be at most 10000'),
    }),
    ldap: ldapSettings,
    oidc: z.strictObject({ providers: oidcProviders }),
  }),
  initialAdmin: z.strictObject({
    email: z.email({ error: 'must be an e-mail address' }),
  }),
  downloads: z.strictObject({
    nginxAccelRedirect: z
      .string({ error: 'must be a text' })
      .regex(/^(\/([A-Za-z0-9._~-]+\/)+)?$/, 'must be empty or an internal location prefix that starts and ends with "/", such as "/protected-slides/"'),
    maxBundleSlides: wholeCount,
    maxBundleBytes: wholeCount,
    concurrentPerUser: wholeCount,
    bytesPerDay: wholeCount,
  }),
  metrics: z.strictObject({
    allow: z.preprocess(
      (value) => (typeof value === 'string' ? value.split(',').map((part) => part.trim()).filter((part) => part !== '') : value),
      z.array(z.string().refine(isAddressOrRange, 'must be an IP address or a CIDR range such as 10.0.0.0/8 or ::1/128')),
    ),
  }),
  site: z.strictObject({
    name: z.string().min(1, 'must name the site, e.g. "Seoul National University Hospital"').max(200, 'must be at most 200 characters'),
    publicUrl: z.string().refine((text) => text === '' || isHttpUrl(text), 'must be empty or an http:// or https:// URL'),
  }),
  mirror: z.strictObject({
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
  dicom: z.strictObject({
    uidRoot: z
      .string()
      .refine(
        (root) => root === '' || (/^(0|[1-9]\d*)(\.(0|[1-9]\d*))*$/.test(root) && root.length <= 40),
        'must be empty (2.25 UIDs) or a UID root: numbers separated by dots without leading zeros, at most 40 characters',
      ),
    corsOrigins: z.preprocess(
      (value) => (typeof value === 'string' ? value.split(',').map((part) => part.trim()).filter((part) => part !== '') : value),
      z.array(z.string().refine((origin) => origin === '*' || /^https?:\/\/[^/\s]+$/.test(origin), 'must be an origin such as https://viewer.hospital.example (scheme, host and port, no path), or *')),
    ),
    viewerUrl: z.string().superRefine((template, ctx) => {
      const problem = viewerUrlProblem(template);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
  }),
  mail: z
    .strictObject({
      from: z.string().min(3, 'must be an address such as "Slidebank <no-reply@hospital.example>"'),
      publicUrl: z.string().refine(isHttpUrl, 'must be an http:// or https:// URL such as https://slidebank.hospital.example'),
      smtp: z.strictObject({
        url: z.string().regex(/^(smtps?:\/\/.+)?$/, 'must be an smtp:// or smtps:// URL, or empty'),
        host: z.string(),
        port: z.number({ error: 'must be a port number' }).int('must be a whole number').min(1, 'must be 1–65535').max(65535, 'must be 1–65535'),
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

function isReadableFile(file: string): boolean {
  try {
    accessSync(file, constants.R_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

function isIssuerUrl(text: string): boolean {
  try {
    const url = new URL(text);
    if (url.search !== '' || url.hash !== '') return false;
    return url.protocol === 'https:' || (url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname));
  } catch {
    return false;
  }
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
