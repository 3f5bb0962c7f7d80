import { ApplicationFailure, Context } from '@temporalio/activity';
import { and, eq, inArray } from 'drizzle-orm';
import type { Database, Db } from '../db/client';
import { backups } from '../db/schema';
import {
  BACKUP_FORMAT,
  BACKUP_FRAME_BYTES,
  type BackupKind,
  type BackupManifest,
  type SignedManifest,
} from '../domain/backup';
import type { Config } from '../runtime/config';
import type { Keyring } from '../runtime/keyring';
import type { Logger } from '../runtime/logger';
import { appendAudit } from './audit';
import { applyCopySettings, COPY_SETTINGS, describeTables, KEY_MATERIAL_TABLES, schemaVersion } from './backup-copy';
import { progressReporter, writeBackupFile, type WrittenFile } from './backup-file';
import { backupObjectKey, backupStorageFor, manifestObjectKey, type BackupStorage } from './backup-storage';
import { sign } from './crypto/signatures';

export interface BackupDeps {
  db: Db;
  database: Database;
  keyring: Keyring;
  config: Config;
  logger: Logger;
  clock: () => Date;
  /** Replaces the configured storage (tests). */
  backupStorage?: BackupStorage;
}

const execution = () => {
  const e = Context.current().info.workflowExecution;
  return { workflowId: e?.workflowId ?? null, runId: e?.runId ?? null };
};

export interface BeginBackup {
  backupId: string;
  keyringBackupId: string;
  requestedBy: string;
}

export interface ExportBackup {
  backupId: string;
  keyringBackupId: string;
  /** Default: CUSTODIAN_KEYRING_BACKUP_RETENTION. */
  keyringRetentionMs?: number;
}

export interface ExportedBackup {
  backupId: string;
  sizeBytes: number;
  tables: number;
}

export interface ExportedBackups {
  data: ExportedBackup;
  keyring: ExportedBackup & { retainUntil: number };
}

/**
 * Backups: `beginBackup` records both rows, `exportBackup` writes the keyring and the data backup from one
 * repeatable-read snapshot, `failBackup` closes them. Every step is keyed by the backup ID.
 */
export const backupActivities = (d: BackupDeps) => {
  const storage = d.backupStorage ?? backupStorageFor(d.config);

  const audit = (
    db: Parameters<typeof appendAudit>[0],
    backupId: string,
    action: string,
    details: Record<string, unknown>,
  ) => {
    const e = execution();
    return appendAudit(db, {
      actor: 'system',
      action,
      targetType: 'backup',
      targetId: backupId,
      workflowId: e.workflowId,
      runId: e.runId,
      details,
      idempotencyKey: `backup:${backupId}:${action}`,
    });
  };

  return {
    async beginBackup(input: BeginBackup): Promise<void> {
      const e = execution();
      await d.db.transaction(async (tx) => {
        const created = await tx
          .insert(backups)
          .values(
            [
              { id: input.backupId, kind: 'data' as const, requestedBy: input.requestedBy },
              {
                id: input.keyringBackupId,
                kind: 'keyring' as const,
                dataBackupId: input.backupId,
                requestedBy: input.requestedBy,
              },
            ].map((row) => ({ ...row, startedAt: d.clock(), workflowId: e.workflowId, runId: e.runId })),
          )
          .onConflictDoNothing()
          .returning({ id: backups.id });
        if (created.length > 0)
          await audit(tx, input.backupId, 'backup.started', {
            keyringBackupId: input.keyringBackupId,
            requestedBy: input.requestedBy,
          });
      });
    },

    /**
     * Both backups from one repeatable-read, read-only snapshot: the keyring backup (the wrapped data keys alone)
     * and the data backup (every other table). A retry starts over with fresh keys, after sweeping what an
     * interrupted attempt left; the manifests are written last, so a backup exists only once it is complete.
     */
    async exportBackup(input: ExportBackup): Promise<ExportedBackups> {
      const ids = [input.backupId, input.keyringBackupId];
      const rows = await d.db.select().from(backups).where(inArray(backups.id, ids));
      const data = rows.find((r) => r.id === input.backupId);
      const keyring = rows.find((r) => r.id === input.keyringBackupId);
      if (!data || !keyring)
        throw ApplicationFailure.nonRetryable(`backup ${input.backupId} was not begun`, 'BackupNotFound');
      const written = (row: typeof data) => row.manifest !== null && !['running', 'failed'].includes(row.status);
      if (data.status !== 'running' || keyring.status !== 'running') {
        // Exported by an earlier attempt whose result was lost: the same result. Anything else is not ours to write.
        if (!written(data) || !written(keyring))
          throw ApplicationFailure.nonRetryable(
            `backup ${input.backupId} is ${data.status} (keyring backup ${keyring.status})`,
            'BackupNotRestorable',
          );
        return {
          data: {
            backupId: data.id,
            sizeBytes: data.sizeBytes ?? 0,
            tables: (data.manifest as SignedManifest).manifest.tables.length,
          },
          keyring: {
            backupId: keyring.id,
            sizeBytes: keyring.sizeBytes ?? 0,
            tables: KEY_MATERIAL_TABLES.length,
            retainUntil: keyring.retainUntil?.getTime() ?? 0,
          },
        };
      }

      const started = d.clock();
      for (const id of ids) await storage.sweep({ keyPrefix: id });
      const progress = progressReporter(d.db, ids, d.clock);
      const signal = Context.current().cancellationSignal;
      type Snapshot = { atMs: number; lsn: string };
      const exported = (await d.database.sql.begin('isolation level repeatable read read only', async (tx) => {
        await applyCopySettings(tx);
        // The snapshot is taken by this first query; both files are read from it.
        const [snapshot] = await tx<Snapshot[]>`
          select (extract(epoch from now()) * 1000)::float8 as "atMs", pg_current_wal_lsn()::text as lsn`;
        const schema = await schemaVersion(tx);
        const keyShapes = await describeTables(tx, (name) => KEY_MATERIAL_TABLES.includes(name));
        const dataShapes = await describeTables(tx, (name) => !KEY_MATERIAL_TABLES.includes(name));
        progress.phase('export');
        const keyFile = await writeBackupFile({
          tx,
          keyring: d.keyring,
          storage,
          backupId: input.keyringBackupId,
          shapes: keyShapes,
          progress,
          signal,
        });
        const dataFile = await writeBackupFile({
          tx,
          keyring: d.keyring,
          storage,
          backupId: input.backupId,
          shapes: dataShapes,
          progress,
          signal,
        });
        return { snapshot: snapshot!, schema, keyFile, dataFile };
      })) as { snapshot: Snapshot; schema: BackupManifest['schema']; keyFile: WrittenFile; dataFile: WrittenFile };

      progress.phase('manifest');
      const snapshotAt = new Date(Math.floor(exported.snapshot.atMs));
      const manifestOf = (backupId: string, kind: BackupKind, file: WrittenFile): BackupManifest => ({
        format: BACKUP_FORMAT,
        backupId,
        kind,
        ...(kind === 'data' ? { keyringBackupId: input.keyringBackupId } : {}),
        createdAt: d.clock().toISOString(),
        snapshot: { at: snapshotAt.toISOString(), lsn: exported.snapshot.lsn, isolation: 'repeatable read' },
        schema: exported.schema,
        copy: { format: 'text', settings: { ...COPY_SETTINGS } },
        tables: file.tables,
        compression: 'gzip',
        cipher: { algorithm: 'AES-256-GCM', frameBytes: BACKUP_FRAME_BYTES, nonce: 'frame-counter' },
        key: file.key,
        ciphertext: file.ciphertext,
        plaintextBytes: file.plaintextBytes,
      });
      const signed = (manifest: BackupManifest): SignedManifest => {
        const { keyId, signature } = sign(d.keyring, manifest);
        return { manifest, signature: { algorithm: 'Ed25519', keyId, signature } };
      };
      const keyringSigned = signed(manifestOf(input.keyringBackupId, 'keyring', exported.keyFile));
      const dataSigned = signed(manifestOf(input.backupId, 'data', exported.dataFile));
      const putJson = (key: string, value: unknown) =>
        storage.put(key, [Buffer.from(`${JSON.stringify(value, null, 2)}\n`, 'utf8')]);
      await putJson(manifestObjectKey(input.keyringBackupId), keyringSigned);
      await putJson(manifestObjectKey(input.backupId), dataSigned);

      const finishedAt = d.clock();
      const durationMs = finishedAt.getTime() - started.getTime();
      const retainUntil = new Date(
        finishedAt.getTime() + (input.keyringRetentionMs ?? d.config.CUSTODIAN_KEYRING_BACKUP_RETENTION),
      );
      await progress.settled();
      await d.db.transaction(async (tx) => {
        const complete = (
          id: string,
          file: WrittenFile,
          manifest: SignedManifest,
          extra: Partial<typeof backups.$inferInsert>,
        ) =>
          tx
            .update(backups)
            .set({
              status: 'completed',
              phase: 'done',
              bytesDone: file.plaintextBytes,
              finishedAt,
              snapshotAt,
              sizeBytes: file.ciphertext.bytes,
              durationMs,
              manifest: manifest as unknown as Record<string, unknown>,
              storageKey: backupObjectKey(id),
              error: null,
              ...extra,
            })
            .where(and(eq(backups.id, id), eq(backups.status, 'running')));
        await complete(input.keyringBackupId, exported.keyFile, keyringSigned, { retainUntil });
        await complete(input.backupId, exported.dataFile, dataSigned, {});
        for (const [id, file, kind] of [
          [input.keyringBackupId, exported.keyFile, 'keyring'],
          [input.backupId, exported.dataFile, 'data'],
        ] as const)
          await audit(tx, id, 'backup.completed', {
            kind,
            tables: file.tables.length,
            rows: file.tables.reduce((sum, t) => sum + t.rows, 0),
            plaintextBytes: file.plaintextBytes,
            sizeBytes: file.ciphertext.bytes,
            ciphertextSha256: file.ciphertext.sha256,
            snapshotLsn: exported.snapshot.lsn,
            durationMs,
            ...(kind === 'keyring' ? { retainUntil: retainUntil.toISOString() } : {}),
          });
      });
      return {
        data: {
          backupId: input.backupId,
          sizeBytes: exported.dataFile.ciphertext.bytes,
          tables: exported.dataFile.tables.length,
        },
        keyring: {
          backupId: input.keyringBackupId,
          sizeBytes: exported.keyFile.ciphertext.bytes,
          tables: exported.keyFile.tables.length,
          retainUntil: retainUntil.getTime(),
        },
      };
    },

    /** Marks a backup that could not be written as failed and removes whatever of it reached storage. */
    async failBackup(input: { backupId: string; keyringBackupId: string; error: string }): Promise<void> {
      const running = await d.db
        .select({ id: backups.id })
        .from(backups)
        .where(and(inArray(backups.id, [input.backupId, input.keyringBackupId]), eq(backups.status, 'running')));
      for (const { id } of running) {
        await storage.sweep({ keyPrefix: id });
        await storage.delete(manifestObjectKey(id));
        await storage.delete(backupObjectKey(id));
      }
      await d.db.transaction(async (tx) => {
        const failed = await tx
          .update(backups)
          .set({ status: 'failed', phase: null, error: input.error.slice(0, 200), finishedAt: d.clock() })
          .where(and(inArray(backups.id, [input.backupId, input.keyringBackupId]), eq(backups.status, 'running')))
          .returning({ id: backups.id });
        if (failed.length > 0) await audit(tx, input.backupId, 'backup.failed', { code: input.error.slice(0, 200) });
      });
    },
  };
};
