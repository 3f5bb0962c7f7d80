import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, constants as zlib } from 'node:zlib';
import { Context } from '@temporalio/activity';
import { and, eq, inArray } from 'drizzle-orm';
import type postgres from 'postgres';
import type { Db } from '../db/client';
import { backups } from '../db/schema';
import { BACKUP_FRAME_BYTES, type BackupManifest, type BackupPhase, type BackupTable } from '../domain/backup';
import type { Keyring } from '../runtime/keyring';
import { copyOut, copyOutStatement, TableDigest, type TableShape } from './backup-copy';
import { backupObjectKey, type BackupStorage } from './backup-storage';
import { FrameSealer, wrapBackupKey } from './crypto/backup-frames';
import { newDataKey } from './crypto/key-wrap';

/** Speed over ratio: the input is mostly ciphertext of personal fields, which does not compress anyway. */
const GZIP_LEVEL = 1;
/** How often progress is heartbeated and written to the backup's row. */
const PROGRESS_EVERY_MS = 1000;

export interface WrittenFile {
  tables: BackupTable[];
  key: BackupManifest['key'];
  ciphertext: BackupManifest['ciphertext'];
  plaintextBytes: number;
}

/** Throttled progress: a heartbeat and the row's phase and bytes at most once a second, and at each phase. */
export const progressReporter = (db: Db, backupIds: string[], clock: () => Date) => {
  let phase: BackupPhase = 'snapshot';
  let bytesDone = 0;
  let last = 0;
  let writing: Promise<unknown> = Promise.resolve();
  const flush = () => {
    Context.current().heartbeat({ phase, bytesDone });
    const values = { phase, bytesDone };
    writing = writing
      .then(() =>
        db
          .update(backups)
          .set(values)
          .where(and(inArray(backups.id, backupIds), eq(backups.status, 'running'))),
      )
      .catch(() => {});
  };
  return {
    phase(next: BackupPhase) {
      phase = next;
      last = clock().getTime();
      flush();
    },
    add(bytes: number) {
      bytesDone += bytes;
      const now = clock().getTime();
      if (now - last >= PROGRESS_EVERY_MS) {
        last = now;
        flush();
      }
    },
    settled: () => writing,
  };
};

export type ProgressReporter = ReturnType<typeof progressReporter>;

/** Streams the tables' COPY text through gzip and AES-GCM frames into `<id>.backup`, atomically. */
export const writeBackupFile = async ({
  tx,
  keyring,
  storage,
  backupId,
  shapes,
  progress,
  signal,
}: {
  tx: postgres.TransactionSql;
  keyring: Keyring;
  storage: BackupStorage;
  backupId: string;
  shapes: TableShape[];
  progress: ProgressReporter;
  signal: AbortSignal;
}): Promise<WrittenFile> => {
  const key = newDataKey();
  const wrapped = wrapBackupKey(keyring, backupId, key);
  const tables: BackupTable[] = [];
  async function* plaintext() {
    for (const shape of shapes) {
      const digest = new TableDigest();
      for await (const chunk of copyOut(tx, copyOutStatement(shape))) {
        digest.update(chunk);
        progress.add(chunk.length);
        yield chunk;
      }
      tables.push({ ...shape, ...digest.result() });
    }
  }
  const sealer = new FrameSealer(key, backupId, BACKUP_FRAME_BYTES);
  const cipherHash = createHash('sha256');
  let bytes = 0;
  try {
    await pipeline(
      Readable.from(plaintext()),
      createGzip({ level: GZIP_LEVEL, strategy: zlib.Z_DEFAULT_STRATEGY }),
      sealer,
      async (frames: AsyncIterable<Buffer>) => {
        async function* counted() {
          for await (const frame of frames) {
            cipherHash.update(frame);
            bytes += frame.length;
            yield frame;
          }
        }
        await storage.put(backupObjectKey(backupId), counted());
      },
      { signal },
    );
  } finally {
    key.fill(0);
  }
  return {
    tables,
    key: { wrappedKey: wrapped.wrappedKey.toString('base64'), kekVersion: wrapped.kekVersion },
    ciphertext: { sha256: cipherHash.digest('hex'), bytes, frames: sealer.frames },
    plaintextBytes: tables.reduce((sum, t) => sum + t.bytes, 0),
  };
};
