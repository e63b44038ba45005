import { createRequire } from 'node:module';
import path from 'node:path';
import { packageRoot } from '../package-info.js';

/** A native addon of the project (native/<dir>), or why it cannot be used. */
export interface LoadedAddon<T> {
  addon?: T;
  reason?: string;
}

const loaded = new Map<string, LoadedAddon<unknown>>();

/**
 * Load native/<dir>/build/Release/<file> once. The addons are optional (see
 * native/build.mjs): a missing one gives the reason, for a warning, and the
 * caller takes its general path.
 */
export function loadAddon<T>(dir: string, file: string): LoadedAddon<T> {
  const location = path.join(packageRoot, 'native', dir, 'build', 'Release', file);
  let result = loaded.get(location);
  if (!result) {
    try {
      result = { addon: createRequire(import.meta.url)(location) as unknown };
    } catch (error) {
      result = { reason: `${location} cannot be loaded (${(error as Error).message.split('\n')[0]}); build it with npm run build:native` };
    }
    loaded.set(location, result);
  }
  return result as LoadedAddon<T>;
}
