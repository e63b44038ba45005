import { z } from 'zod';
import { timestamp } from '../lib/schema-types.js';
import type { SiteIdentity } from './site-key.js';

/** This site as partners see it (`GET /api/site`): what a partner's administrator puts into `mirror.trustedKeys`. */
export const siteView = z
  .object({
    name: z.string(),
    publicUrl: z.string().meta({ description: 'The address its download URLs start with; empty when not configured' }),
    signingKey: z.object({
      algorithm: z.literal('Ed25519'),
      publicKey: z.string().meta({ description: 'Base64 of the raw 32-byte public key its export bags are signed with' }),
      fingerprint: z.string().meta({ description: 'To check the key with this site by another channel' }),
    }),
  })
  .meta({ id: 'Site' });
export type SiteView = z.infer<typeof siteView>;

export function siteViewOf(site: SiteIdentity): SiteView {
  return { name: site.name, publicUrl: site.publicUrl, signingKey: { algorithm: 'Ed25519', publicKey: site.publicKey, fingerprint: site.fingerprint } };
}

/** One release as the portal lists it (`GET /api/datasets`). */
export const releaseSummary = z
  .object({
    version: z.string(),
    releasedAt: timestamp,
    slides: z.number().int(),
    slideBytes: z.number().int().meta({ description: "The slide files' total size: what a full bag of the release carries, annotations aside" }),
    annotations: z.number().int().meta({ description: 'Slides with a released annotation' }),
    withdrawals: z.number().int().meta({ description: 'Withdrawals recorded up to the release: those its full bag lists' }),
    withdrawnAfter: z
      .number()
      .int()
      .meta({ description: 'Slides of this release withdrawn after it (from the dataset or from the catalog): its bags leave them out and tell mirrors to withdraw them' }),
  })
  .meta({ id: 'DatasetRelease' });
export type ReleaseSummary = z.infer<typeof releaseSummary>;

export const datasetSummary = z
  .object({
    name: z.string(),
    description: z.string().nullable(),
    createdAt: timestamp,
    members: z.number().int().meta({ description: 'Slides in the working set (what the next release would hold)' }),
    withdrawals: z.number().int().meta({ description: 'Every withdrawal from the dataset' }),
    releases: z.array(releaseSummary).meta({ description: 'Oldest first' }),
  })
  .meta({ id: 'DatasetSummary' });
export type DatasetSummary = z.infer<typeof datasetSummary>;

export const datasetList = z.object({ items: z.array(datasetSummary) }).meta({ id: 'DatasetList' });
export type DatasetList = z.infer<typeof datasetList>;

export const datasetVersions = z
  .object({ name: z.string(), versions: z.array(z.string()).meta({ description: 'The released versions, oldest first' }) })
  .meta({ id: 'DatasetVersions' });
export type DatasetVersions = z.infer<typeof datasetVersions>;

/** A holey bag over HTTP: every file but the slides (which fetch.txt points at), base64 so that bytes survive JSON. */
export const holeyBag = z
  .object({
    dataset: z.string(),
    version: z.string(),
    since: z.string().nullable(),
    name: z.string().meta({ description: "The bag's folder name, as `slidebank export` would name it" }),
    files: z.array(z.object({ path: z.string(), content: z.string().meta({ description: 'Base64' }) })),
  })
  .meta({ id: 'HoleyBag' });
export type HoleyBag = z.infer<typeof holeyBag>;
