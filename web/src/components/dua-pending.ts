import { reactive } from 'vue';
import { get } from '../api';
import { isAdmin } from '../session';
import type { DuaPending } from '../types';

/** What waits for an administrator, shared by the header's badge and the administration's notices. */
export const duaPending = reactive<{ value: DuaPending | null }>({ value: null });

/** Reads it again (after a decision, on a page change); nothing for anyone but administrators, and a failure keeps the last answer. */
export async function refreshDuaPending(): Promise<void> {
  if (!isAdmin()) {
    duaPending.value = null;
    return;
  }
  try {
    duaPending.value = await get<DuaPending>('/api/admin/dua/pending');
  } catch {
    // The badge is a hint; the agreements tab shows the queue and its errors.
  }
}
