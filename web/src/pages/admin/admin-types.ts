/** A user as `GET /api/admin/users` answers. */
export interface AdminUser {
  id: number;
  email: string;
  name: string;
  institution: string;
  level: string;
  storedLevel: string;
  levelExpiresAt: string | null;
  roles: string[];
  emailConfirmed: boolean;
  disabled: boolean;
  lastLoginAt: string | null;
}

export const STAFF_ROLES = ['admin', 'curator', 'pathologist'] as const;

export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  return new Date(iso).toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}
