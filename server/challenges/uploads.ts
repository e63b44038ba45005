import { randomBytes } from 'node:crypto';
import { constants, createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AppError, notFound } from '../errors.js';
import type { ChallengeUpload, ChallengeUploadsRepository } from './uploads.repository.js';

/** The largest chunk of a resumable upload taken in one request: 64 MiB. */
export const MAX_CHUNK_BYTES = 64 * 1024 ** 2;
/** An upload that receives nothing for this long is abandoned: refused, then removed by the `challenge-uploads` job. */
export const UPLOAD_TTL_MS = 24 * 3_600_000;
/** Uploads in progress one person may have in one challenge. */
export const MAX_OPEN_UPLOADS = 5;
/** How long a request may hold an upload to store one chunk (already received into a file of its own). */
const CHUNK_LEASE_MS = 5 * 60_000;
/** How long submitting may hold an upload: validation reads the whole archive. */
const SUBMIT_LEASE_MS = 60 * 60_000;

/** `Content-Range: bytes START-END/SIZE`, END inclusive. */
export interface ChunkRange {
  start: number;
  end: number;
  total: number;
}

/** An upload as its owner sees it. */
export interface UploadView {
  id: string;
  fileName: string;
  offset: number;
  size: number;
  expiresAt: Date;
}

export function uploadView(upload: ChallengeUpload): UploadView {
  return { id: upload.id, fileName: upload.fileName, offset: upload.received, size: upload.size, expiresAt: upload.expiresAt };
}

const UPLOAD_ID = /^[0-9a-f]{24}$/;

/**
 * The bytes and state of resumable uploads: the table holds each upload's
 * state (how much arrived, its lease, its expiry) and `<dir>/<id>.upload`
 * its bytes, so that any application node on the same database and data
 * folder continues an upload another began, and a restart loses nothing. A
 * chunk is first received into a file of its own, and only then written into
 * the upload at its offset under the upload's lease; a chunk that breaks off
 * leaves the upload as it was.
 */
export class ChallengeUploads {
  constructor(
    private readonly repository: ChallengeUploadsRepository,
    private readonly dir: string,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async create(fields: { challengeId: number; userId: number; fileName: string; size: number }): Promise<ChallengeUpload> {
    const now = this.clock();
    const open = await this.repository.countOpen(fields.challengeId, fields.userId, now);
    if (open >= MAX_OPEN_UPLOADS) {
      throw new AppError(409, 'too_many_uploads', `You have ${open} uploads in progress in this challenge, the most allowed; finish, submit or delete one (DELETE its address), or wait until it expires`);
    }
    return this.repository.create({ id: randomBytes(12).toString('hex'), ...fields }, now, new Date(now.getTime() + UPLOAD_TTL_MS));
  }

  /** The requester's own upload in this challenge; anyone else's, an unknown id or an expired upload is a 404. */
  async own(challengeId: number, userId: number, id: string): Promise<ChallengeUpload> {
    const upload = UPLOAD_ID.test(id) ? await this.repository.find(id) : undefined;
    if (!upload || upload.challengeId !== challengeId || upload.userId !== userId || upload.expiresAt <= this.clock()) {
      throw notFound('upload_not_found', `There is no upload ${id} of yours in progress here (uploads expire ${UPLOAD_TTL_MS / 3_600_000} hours after their last chunk)`);
    }
    return upload;
  }

  /**
   * Appends a chunk that starts where the upload stands. A chunk that starts
   * elsewhere (sent again after its answer was lost, or out of order) is 409
   * upload_offset_mismatch with the offset to go on from; nothing of the body
   * is read then.
   */
  async append(upload: ChallengeUpload, range: ChunkRange, body: Readable): Promise<ChallengeUpload> {
    if (range.total !== upload.size) throw new AppError(400, 'invalid_content_range', `This upload is ${upload.size} bytes; Content-Range says ${range.total}`);
    if (range.end >= range.total) throw new AppError(400, 'invalid_content_range', `A chunk ends at byte ${upload.size - 1} at the latest`);
    const length = range.end - range.start + 1;
    if (length > MAX_CHUNK_BYTES) throw new AppError(413, 'chunk_too_large', `A chunk must be at most ${MAX_CHUNK_BYTES / 1024 ** 2} MiB; this one is ${length} bytes`);
    if (range.start !== upload.received) throw offsetMismatch(upload);

    await mkdir(this.dir, { recursive: true });
    const chunkFile = path.join(this.dir, `${upload.id}.${randomBytes(6).toString('hex')}.chunk`);
    try {
      await receive(body, chunkFile, length);
      const token = randomBytes(12).toString('hex');
      const now = this.clock();
      if (!(await this.repository.lease(upload.id, token, now, new Date(now.getTime() + CHUNK_LEASE_MS), range.start))) {
        const current = await this.repository.find(upload.id);
        if (!current) throw notFound('upload_not_found', `Upload ${upload.id} was deleted`);
        if (current.received !== range.start) throw offsetMismatch(current);
        throw new AppError(409, 'upload_busy', `Another request is storing a chunk of upload ${upload.id}; try again in a moment`, { details: { offset: current.received, size: current.size } });
      }
      try {
        await copyInto(chunkFile, this.dataFile(upload.id), range.start, range.end + 1 === upload.size ? upload.size : undefined);
        const stored = this.clock();
        if (!(await this.repository.advance(upload.id, token, range.end + 1, stored, new Date(stored.getTime() + UPLOAD_TTL_MS)))) {
          throw new AppError(409, 'upload_busy', `Upload ${upload.id} was taken over while this chunk was stored; ask for its offset and go on from there`);
        }
      } catch (error) {
        await this.repository.release(upload.id, token);
        throw error;
      }
      return (await this.repository.find(upload.id))!;
    } finally {
      await rm(chunkFile, { force: true });
    }
  }

  async remove(upload: ChallengeUpload): Promise<void> {
    await this.repository.delete(upload.id);
    await rm(this.dataFile(upload.id), { force: true });
  }

  /**
   * Holds a complete upload for submitting it: 409 upload_incomplete with the
   * offset while bytes are missing, 409 upload_busy while another request
   * holds it. `consume` removes it once a submission is recorded; `release`
   * lets it go when the submission was refused before anything was recorded,
   * so that it can be submitted later.
   */
  async hold(upload: ChallengeUpload): Promise<{ file: string; consume(): Promise<void>; release(): Promise<void> }> {
    if (upload.received < upload.size) {
      throw new AppError(409, 'upload_incomplete', `Upload ${upload.id} has ${upload.received} of its ${upload.size} bytes; send the rest from byte ${upload.received}, then submit`, {
        details: { offset: upload.received, size: upload.size },
      });
    }
    const token = randomBytes(12).toString('hex');
    const now = this.clock();
    if (!(await this.repository.lease(upload.id, token, now, new Date(now.getTime() + SUBMIT_LEASE_MS), upload.size))) {
      throw new AppError(409, 'upload_busy', `Upload ${upload.id} is being stored or submitted by another request`);
    }
    const file = this.dataFile(upload.id);
    const found = await stat(file).catch(() => undefined);
    if (found?.size !== upload.size) {
      await this.repository.release(upload.id, token);
      throw new Error(`upload ${upload.id}: ${file} holds ${found?.size ?? 'no'} bytes, not ${upload.size}`);
    }
    return {
      file,
      consume: async () => {
        await this.repository.deleteLeased(upload.id, token);
        await rm(file, { force: true });
      },
      release: () => this.repository.release(upload.id, token),
    };
  }

  /**
   * Removes the uploads whose expiry has passed, and files in the uploads
   * folder that belong to no upload and were left a day ago or more (chunks
   * and request bodies of a process that stopped half-way).
   */
  async removeExpired(now: Date): Promise<{ uploads: number; strayFiles: number }> {
    let uploads = 0;
    for (;;) {
      const batch = await this.repository.expired(now);
      let removed = 0;
      for (const upload of batch) {
        if (await this.repository.deleteExpired(upload.id, now)) {
          await rm(this.dataFile(upload.id), { force: true });
          removed++;
        }
      }
      uploads += removed;
      if (batch.length === 0 || removed === 0) break;
    }
    let strayFiles = 0;
    const names = await readdir(this.dir).catch(() => [] as string[]);
    if (names.length > 0) {
      const live = await this.repository.ids();
      for (const name of names) {
        const owner = /^([0-9a-f]{24})\.(upload|[0-9a-f]{12}\.chunk)$/.exec(name)?.[1];
        if (owner === undefined && !name.endsWith('.partial')) continue;
        if (owner !== undefined && live.has(owner)) continue;
        const info = await stat(path.join(this.dir, name)).catch(() => undefined);
        if (!info?.isFile() || now.getTime() - info.mtimeMs < UPLOAD_TTL_MS) continue;
        await rm(path.join(this.dir, name), { force: true });
        strayFiles++;
      }
    }
    return { uploads, strayFiles };
  }

  private dataFile(id: string): string {
    return path.join(this.dir, `${id}.upload`);
  }
}

function offsetMismatch(upload: ChallengeUpload): AppError {
  return new AppError(409, 'upload_offset_mismatch', `Upload ${upload.id} has ${upload.received} of its ${upload.size} bytes: send the chunk that starts at byte ${upload.received}`, {
    details: { offset: upload.received, size: upload.size },
  });
}

/** Streams a chunk's body into its own file; a body longer or shorter than its Content-Range is refused. */
async function receive(body: Readable, file: string, length: number): Promise<void> {
  let size = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      size += chunk.length;
      if (size > length) done(new AppError(400, 'chunk_length_mismatch', `The body is longer than the ${length} bytes its Content-Range announces`));
      else done(null, chunk);
    },
  });
  await pipeline(body, counter, createWriteStream(file, { mode: 0o600 }));
  if (size !== length) throw new AppError(400, 'chunk_length_mismatch', `The body has ${size} bytes, not the ${length} its Content-Range announces; send the chunk again`);
}

/** Writes a received chunk into the upload's file at its offset, and on the last chunk cuts the file to the upload's size. */
async function copyInto(chunkFile: string, dataFile: string, position: number, finalSize: number | undefined): Promise<void> {
  const handle = await open(dataFile, constants.O_RDWR | constants.O_CREAT, 0o600);
  try {
    let at = position;
    for await (const piece of createReadStream(chunkFile, { highWaterMark: 1024 * 1024 })) {
      const buffer = piece as Buffer;
      let written = 0;
      while (written < buffer.length) {
        const { bytesWritten } = await handle.write(buffer, written, buffer.length - written, at);
        written += bytesWritten;
        at += bytesWritten;
      }
    }
    if (finalSize !== undefined) await handle.truncate(finalSize);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
