import type { AuditEntry, AuditListOptions } from '../audit/audit.repository.js';
import type { DownloadHistoryItem, DownloadHistoryPage } from './history-views.js';

/** How many deliveries a page of the history holds. */
export const HISTORY_PAGE_SIZE = { default: 20, max: 100 } as const;

const KINDS: Record<string, DownloadHistoryItem['kind']> = { 'download.slide': 'slide', 'download.annotation': 'annotation', 'download.bundle': 'bundle' };

/**
 * A user's own downloads, read from the audit log where the downloads
 * service records every delivery (`download.slide`, `download.annotation`,
 * `download.bundle`): newest first, paged, and only ever the caller's.
 */
export class DownloadHistoryService {
  constructor(private readonly audit: { list(options: AuditListOptions): Promise<{ items: AuditEntry[]; total: number }> }) {}

  async forUser(userId: number, { page, pageSize }: { page: number; pageSize: number }): Promise<DownloadHistoryPage> {
    const { items, total } = await this.audit.list({ action: 'download.*', actorId: userId, limit: pageSize, offset: (page - 1) * pageSize });
    return { items: items.map(toItem), total, page, pageSize };
  }
}

function toItem(entry: AuditEntry): DownloadHistoryItem {
  const d = entry.details;
  const kind = KINDS[entry.action] ?? 'slide';
  const slideIds = Array.isArray(d.slideIds) ? d.slideIds.filter((id): id is number => typeof id === 'number') : [];
  const count = typeof d.slides === 'number' ? d.slides : slideIds.length;
  return {
    id: entry.id,
    at: entry.at,
    kind,
    what: kind === 'bundle' ? `${count} ${count === 1 ? 'slide' : 'slides'}` : nameOf(d.file, entry.subjectId),
    slideIds,
    size: typeof d.size === 'number' ? d.size : typeof d.payloadBytes === 'number' ? d.payloadBytes : null,
    bytes: typeof d.bytes === 'number' ? d.bytes : null,
    complete: typeof d.complete === 'boolean' ? d.complete : null,
    status: typeof d.status === 'number' ? d.status : null,
    range: typeof d.range === 'string' ? d.range : null,
  };
}

/** `slides/<name>.svs` or `annotations/<name>.xml` (see bundlePath) → `<name>`. */
function nameOf(file: unknown, subjectId: string | null): string {
  if (typeof file === 'string') {
    const base = file.split('/').pop() ?? file;
    return base.replace(/\.(svs|tiff?|xml)$/i, '');
  }
  return subjectId ? `slide ${subjectId}` : 'a slide';
}

