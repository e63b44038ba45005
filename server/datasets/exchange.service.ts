import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { AuditActor, AuditLog } from '../audit/audit-log.js';
import { AppError } from '../errors.js';
import { DatasetError, type DatasetsService } from './datasets.service.js';
import type { ExportService } from './export.service.js';

/** A holey bag over HTTP: every file but the slides (which fetch.txt points at), base64 so that bytes survive JSON. */
export interface HoleyBagAnswer {
  dataset: string;
  version: string;
  since: string | null;
  /** The bag's folder name, as `slidebank export` would name it. */
  name: string;
  files: { path: string; content: string }[];
}

/**
 * What partner sites ask of this one over HTTP (L3 members and admins): a
 * dataset's released versions, and a release as a holey bag whose slide
 * files the partner then downloads with `slidebank fetch`'s resuming client.
 */
export class ExchangeService {
  constructor(
    private readonly datasets: DatasetsService,
    private readonly exporter: () => ExportService,
    private readonly audit: AuditLog,
    private readonly workDir: string,
  ) {}

  async versions(name: string): Promise<{ name: string; versions: string[] }> {
    const found = (await this.datasets.list()).find((d) => d.name === name);
    if (!found) throw new AppError(404, 'dataset_not_found', `There is no dataset named ${name}`);
    return { name, versions: found.versions };
  }

  async holeyBag(name: string, query: { version?: unknown; since?: unknown }, actor: AuditActor): Promise<HoleyBagAnswer> {
    const text = (value: unknown, key: string): string | undefined => {
      if (value === undefined || value === '') return undefined;
      if (typeof value !== 'string' || value.length > 50) throw new AppError(400, 'invalid_query', `${key} must be one version`);
      return value;
    };
    const { versions } = await this.versions(name);
    const version = text(query.version, 'version') ?? versions.at(-1);
    if (version === undefined) throw new AppError(404, 'release_not_found', `${name} has no release yet`);
    const since = text(query.since, 'since');
    await mkdir(this.workDir, { recursive: true });
    const out = await mkdtemp(path.join(this.workDir, 'holey-'));
    try {
      let result;
      try {
        result = await this.exporter().export({ dataset: name, version, out, holey: true, ...(since ? { since } : {}) });
      } catch (error) {
        if (error instanceof DatasetError) throw new AppError(409, 'export_refused', error.message);
        throw error;
      }
      const bag = result.bags[0]!.dir;
      const files: HoleyBagAnswer['files'] = [];
      for (const entry of (await readdir(bag, { recursive: true, withFileTypes: true })).filter((e) => e.isFile())) {
        const full = path.join(entry.parentPath, entry.name);
        files.push({ path: path.relative(bag, full).split(path.sep).join('/'), content: (await readFile(full)).toString('base64') });
      }
      await this.audit.record({ action: 'dataset.exported', actorId: actor.actorId, ip: actor.ip ?? null, subjectType: 'dataset', subjectId: name, details: { version, since: since ?? null, holey: true } });
      return { dataset: name, version, since: since ?? null, name: path.basename(bag), files: files.sort((a, b) => a.path.localeCompare(b.path)) };
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  }
}
