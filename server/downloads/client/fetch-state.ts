import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

export const STATE_FILE = '.slidebank-fetch.json';

export interface Verified {
  size: number;
  mtimeMs: number;
  sha256: string;
}

interface StateFile {
  version: 1;
  files: Record<string, { etag?: string; verified?: Verified }>;
}

/** `.slidebank-fetch.json`, written after each change (serialized, through a temporary file and a rename). */
export class FetchState {
  private writing: Promise<void> = Promise.resolve();
  private dirty = false;

  private constructor(
    private readonly file: string,
    private readonly data: StateFile,
  ) {}

  static async load(out: string): Promise<FetchState> {
    const file = path.join(out, STATE_FILE);
    let data: StateFile = { version: 1, files: {} };
    try {
      const parsed = JSON.parse(await readFile(file, 'utf8')) as StateFile;
      if (parsed.version === 1 && typeof parsed.files === 'object' && parsed.files !== null) data = parsed;
    } catch {
      // Missing or unreadable: every file is checked again, which is only slower.
    }
    return new FetchState(file, data);
  }

  etag(p: string): string | undefined {
    return this.data.files[p]?.etag;
  }

  verified(p: string): Verified | undefined {
    return this.data.files[p]?.verified;
  }

  setEtag(p: string, etag: string | null): void {
    const entry = (this.data.files[p] ??= {});
    if (etag === null) delete entry.etag;
    else entry.etag = etag;
    this.changed();
  }

  setVerified(p: string, verified: Verified): void {
    (this.data.files[p] ??= {}).verified = verified;
    this.changed();
  }

  flush(): Promise<void> {
    return this.writing;
  }

  private changed(): void {
    if (this.dirty) return;
    this.dirty = true;
    this.writing = this.writing.then(async () => {
      this.dirty = false;
      const temporary = `${this.file}.tmp`;
      await writeFile(temporary, `${JSON.stringify(this.data, null, 1)}\n`);
      await rename(temporary, this.file);
    });
  }
}
