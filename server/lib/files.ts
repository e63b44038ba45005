import { copyFile, open, rename, rm } from 'node:fs/promises';

/** Write `data` to `target` through a temporary file that is synced and renamed, so `target` is whole or absent. */
export function writeFileAtomic(target: string, data: string | Buffer): Promise<void> {
  return throughPartial(target, async (partial) => {
    const handle = await open(partial, 'wx');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
  });
}

/** Copy through a temporary name, synced, then renamed. */
export function copyFileAtomic(source: string, target: string): Promise<void> {
  return throughPartial(target, async (partial) => {
    await copyFile(source, partial);
    const handle = await open(partial, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  });
}

/** Make `<target>.partial` with `write`, then rename it over `target`; on any failure the partial file is removed. */
async function throughPartial(target: string, write: (partial: string) => Promise<void>): Promise<void> {
  const partial = `${target}.partial`;
  try {
    await write(partial);
    await rename(partial, target);
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  }
}

/** A move that also works across file systems. */
export async function moveFile(source: string, target: string): Promise<void> {
  try {
    await rename(source, target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    await copyFileAtomic(source, target);
    await rm(source);
  }
}
