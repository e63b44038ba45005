import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { ZipArchive } from 'archiver';
import { useNativeCrc32 } from './native-crc32.js';

// CRC-32 through zlib rather than JavaScript: ~1.7× less CPU per bundle byte (see native-crc32.ts).
useNativeCrc32();

/** One file of a ZIP archive. */
export interface ZipEntry {
  /** The path inside the archive, with `/` between folders. */
  name: string;
  /**
   * The bytes, or a function that opens them when the entry's turn comes:
   * entries are written one after the other, so only one file is open at a
   * time however many the archive holds.
   */
  source: Buffer | (() => Readable);
  /** Stored as the entry's modification time (the archive's start when absent). */
  date?: Date;
}

export interface ZipOutcome {
  /** Bytes of the archive handed to its consumer (what was buffered and never read is not counted). */
  bytes: number;
  /** Entries whose bytes were all written into the archive. */
  entries: number;
  /** True when the archive was finished and read to its end. */
  complete: boolean;
  /** Why it stopped early, when it did and not because of `abort()`. */
  error?: Error;
}

export interface ZipStream {
  /** The archive's bytes; pipe it to the client. */
  stream: Readable;
  /** Settles once the archive has ended, failed or been aborted; never rejects. */
  done: Promise<ZipOutcome>;
  /** Stop: nothing more is read, the open source (if any) is closed and the stream ends. Safe to call more than once. */
  abort(): void;
}

/**
 * A streamed ZIP archive (archiver 8) with every entry STOREd: slides are
 * JPEG-compressed already, so DEFLATE would cost ~10× the CPU for nothing
 * (docs/references.md, "The stack"). ZIP64 records are written automatically once the archive
 * passes 4 GiB or 65,535 entries.
 *
 * Backpressure holds all the way: a source is read only as fast as the
 * archive's consumer reads the archive. `abort()` (for a client that went
 * away) closes the source being read; archiver's own `abort()` would leave it
 * open, since it lets the entry in progress run on.
 */
export function streamZip(entries: Iterable<ZipEntry> | AsyncIterable<ZipEntry>): ZipStream {
  const archive = new ZipArchive({ store: true });
  const started = new Date();
  const stopper = new AbortController();
  const stopped = new Promise<void>((resolve) => stopper.signal.addEventListener('abort', () => resolve(), { once: true }));
  let current: Readable | undefined;
  let written = 0;
  let failure: Error | undefined;
  let ended = false;
  let bytesAtStop: number | undefined;

  /** Bytes the consumer has taken: those archiver produced less those still waiting in its buffer. */
  const consumed = () => archive.pointer() - archive.readableLength;

  const stop = (error?: Error) => {
    if (stopper.signal.aborted) return;
    if (error) failure = error;
    bytesAtStop = consumed();
    stopper.abort();
    current?.destroy();
    archive.abort();
    // archiver ends its stream only once the entry in progress is done, which a closed source never is.
    archive.destroy();
  };
  // Errors of archiver and of the sources it pipes end here; the first stops the archive, later ones are echoes.
  archive.on('error', (error: Error) => stop(error));
  archive.on('warning', (error: Error) => stop(error));

  const finished = new Promise<void>((resolve) => {
    archive.once('end', () => {
      ended = true;
      resolve();
    });
    archive.once('close', () => resolve());
  });

  const pump = async () => {
    for await (const entry of entries) {
      if (stopper.signal.aborted) return;
      let source: Buffer | Readable;
      if (typeof entry.source === 'function') {
        const opened = entry.source();
        current = opened;
        // An error of the source stops the archive; archiver would otherwise wait for it forever.
        opened.once('error', (error: Error) => stop(error));
        source = opened;
      } else source = entry.source;
      const appended = once(archive, 'entry', { signal: stopper.signal });
      archive.append(source, { name: entry.name, date: entry.date ?? started, store: true });
      await appended;
      current = undefined;
      written += 1;
    }
    if (!stopper.signal.aborted) await Promise.race([archive.finalize(), stopped]);
  };
  const pumped = pump().catch((error: Error) => {
    if (!stopper.signal.aborted) stop(error);
  });

  const done = Promise.all([pumped, Promise.race([finished, stopped])]).then(() => {
    const complete = ended && !stopper.signal.aborted;
    return {
      bytes: complete ? archive.pointer() : (bytesAtStop ?? consumed()),
      entries: written,
      complete,
      ...(failure ? { error: failure } : {}),
    };
  });

  return { stream: archive, done, abort: () => stop() };
}
