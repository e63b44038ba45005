import type { Database } from './connect.js';

export interface DatabaseHealth {
  status: 'up' | 'down';
  dialect: string;
  latencyMs: number;
  error?: string;
}

/** One round trip, bounded by `timeoutMs` so that a hung server cannot hang the health check. */
export async function checkDatabase(db: Database, timeoutMs: number): Promise<DatabaseHealth> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      db.knex.raw('select 1 as ok'),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { status: 'up', dialect: db.dialect, latencyMs: Math.round(performance.now() - started) };
  } catch (error) {
    const message = (error as Error).message.split('\n')[0] ?? 'unknown error';
    return { status: 'down', dialect: db.dialect, latencyMs: Math.round(performance.now() - started), error: message };
  } finally {
    clearTimeout(timer);
  }
}
