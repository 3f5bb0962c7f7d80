import { randomUUID } from 'node:crypto';
import type { Db } from '../../db/client';
import { backups, restoreTests } from '../../db/schema';

export interface BackupRow {
  id?: string;
  kind?: 'data' | 'keyring';
  status?: (typeof backups.$inferInsert)['status'];
  /** When the snapshot was taken; default now. */
  snapshotAt?: Date;
  lastRestoreTest?: 'pass' | 'fail' | null;
  retainUntil?: Date;
}

/** A backup row as the backup workflow leaves it (no file: tests that need one put it in storage themselves). */
export const insertBackupRow = async (db: Db, o: BackupRow = {}): Promise<string> => {
  const id = o.id ?? randomUUID();
  const at = o.snapshotAt ?? new Date();
  const test = o.lastRestoreTest ?? null;
  await db.insert(backups).values({
    id,
    kind: o.kind ?? 'data',
    status: o.status ?? (test === 'pass' ? 'verified' : test === 'fail' ? 'restore-test-failed' : 'completed'),
    phase: 'done',
    requestedBy: 'test',
    startedAt: at,
    snapshotAt: at,
    finishedAt: at,
    sizeBytes: 1024,
    storageKey: `${id}.backup`,
    lastRestoreTestStatus: test,
    lastRestoreTestAt: test ? at : null,
    retainUntil: o.retainUntil ?? null,
  });
  return id;
};

/** A restore test still reading `backupId`. */
export const insertRunningRestoreTest = async (db: Db, backupId: string): Promise<string> => {
  const id = randomUUID();
  await db.insert(restoreTests).values({ id, backupId, trigger: 'schedule', requestedBy: 'test', status: 'running' });
  return id;
};
