import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Drop these files' pages from the page cache (GNU dd: `iflag=nocache count=0` advises the kernel for the whole file). */
export async function evict(files: string[]): Promise<void> {
  for (const file of files) await run('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none']);
}
