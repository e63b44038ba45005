import type { Database, Queryable } from '../db/index.js';
import { AgreementsRepository } from './agreements.repository.js';
import type { DuaVersion } from './views.js';

/** The label of the text installed on the first start. */
export const DEFAULT_AGREEMENT_VERSION = '1';
export const DEFAULT_AGREEMENT_TITLE = 'Slidebank data use agreement';

export const DEFAULT_AGREEMENT_BODY = `# Slidebank data use agreement

This agreement is between you (the **researcher**) and the operators of this Slidebank
collection (the **collection**). It covers every slide, annotation, export bundle and other
file you download from the collection (the **data**). By accepting it you agree to the
following terms for as long as you hold any of the data.

## 1. Non-commercial research only

You use the data for non-commercial scientific research only. The data are licensed to you
under the [Creative Commons Attribution-NonCommercial 4.0 International licence
(CC BY-NC 4.0)](https://creativecommons.org/licenses/by-nc/4.0/); where this agreement is
stricter than the licence, this agreement applies. Using the data to develop or sell a
commercial product or service needs a separate written agreement with the collection.

## 2. No attempt to re-identify patients

The slides were de-identified before they were shared. You make no attempt to find out who
a patient is, to link the data with other data for that purpose, or to contact a patient.
If you come across anything that could identify a person (a name on a label, a date of
birth, a record number), stop using the file concerned and tell the collection's
administrators at once.

## 3. No redistribution

You do not pass the data on to anyone, publish them or put them where others can reach
them. Members of your own project may work with the data only if they hold an approved
agreement of their own. Figures and small excerpts in publications are allowed (see 4).

## 4. Cite the collection

Every publication, poster, thesis or software release that uses the data cites the
collection as its administrators ask on the site, and names the slides or data sets used.

## 5. Keep the data safe

You keep the data on systems that only you and authorised members of your project can
reach, and you do not share your account or your access tokens.

## 6. Annual usage report

Each year, before your approval runs out, you file a usage report in your Slidebank account:
what you used the data for, your results and your publications. An approved report renews
the agreement for another year. Without one, access ends on the date shown in your account.

## 7. End of the term

When the agreement ends (it runs out, you end it, or an administrator revokes it), you stop
using the data and delete every copy you hold, including copies on backups you control,
except what is already part of a publication.

## 8. Breaches

If you break these terms, the administrators may revoke your approval at once and may tell
your institution. You remain responsible for the data you downloaded.
`;

/**
 * Installs the default agreement as version 1 when no version exists yet, so
 * that researchers can apply on a fresh installation; an administrator is
 * asked to review it. Safe on every start and on several nodes at once: the
 * version label is unique, so only one insert can win. Returns the version it
 * installed, or undefined when there was one already.
 */
export async function ensureDefaultAgreement(repository: AgreementsRepository, now = new Date(), trx?: Queryable): Promise<DuaVersion | undefined> {
  if (await repository.latestVersion(trx)) return undefined;
  const installed = await repository.publishVersion(
    { version: DEFAULT_AGREEMENT_VERSION, title: DEFAULT_AGREEMENT_TITLE, body: DEFAULT_AGREEMENT_BODY, requiresReacceptance: false, isDefault: true },
    null,
    now,
    trx,
  );
  return installed === 'version_taken' ? undefined : installed;
}

/** The first-start step: installs the default text when there is none, and says so in the log. */
export async function installDefaultAgreement(db: Database, log: { info(obj: object, msg: string): void }): Promise<void> {
  const installed = await ensureDefaultAgreement(new AgreementsRepository(db.knex));
  if (installed) log.info({ version: installed.version }, 'installed the default data use agreement; an administrator should review it under Administration → Agreements');
}
