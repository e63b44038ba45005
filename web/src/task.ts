import { ref, type Ref } from 'vue';

export interface Task<A extends unknown[], T> {
  pending: Ref<boolean>;
  error: Ref<Error | null>;
  /** Runs unless already running (a double click submits once); resolves to undefined on failure, with `error` set. */
  run(...args: A): Promise<T | undefined>;
}

/** Loading and error state for one async action: buttons disable on `pending`, ErrorBox shows `error`. */
export function useTask<A extends unknown[], T>(action: (...args: A) => Promise<T>): Task<A, T> {
  const pending = ref(false);
  const error = ref<Error | null>(null);
  return {
    pending,
    error,
    async run(...args: A) {
      if (pending.value) return undefined;
      pending.value = true;
      error.value = null;
      try {
        return await action(...args);
      } catch (caught) {
        if ((caught as Error).name === 'AbortError') return undefined;
        error.value = caught instanceof Error ? caught : new Error(String(caught));
        return undefined;
      } finally {
        pending.value = false;
      }
    },
  };
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function formatDate(iso: string | null | undefined): string {
  if (!iso) return '—';
  return new Date(iso).toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
}
