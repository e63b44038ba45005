import type { StaffRole } from '../../types';

export const STAFF_ROLES = ['admin', 'curator', 'pathologist'] as const satisfies readonly StaffRole[];

export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  return new Date(iso).toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}
