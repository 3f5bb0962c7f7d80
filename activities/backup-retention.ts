import { ApplicationFailure, Context } from '@temporalio/activity';
import { and, desc, eq, inArray, isNull, lte, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { backups, restoreTests } from '../db/schema';
import {
  RetentionPolicy,
  selectRetention,
  type DeletionSkipped,
  type RetentionSelection,
} from '../domain/backup-retention';
import type { Config } from '../runtime/config';
import { appendAudit } from './audit';
import { backupObjectKey, backupStorageFor, manifestObjectKey, type BackupStorage } from './backup-storage';

export interface BackupRetentionDeps {
  db: Db;
  config: Config;
  clock: () => Date;
  /** Replaces the configured storage (tests). */
  backupStorage?: BackupStorage;
}

export interface RetentionPlan extends RetentionSelection {
  /** Keyring backups past their `retain_until`: they go whatever the GFS policy says. */
  expiredKeyring: string[];
}

export interface DeleteBackupInput {
  backupId: string;
  reason: 'retention' | 'keyring-retention';
}

const execution = () => {
  const e = Context.current().info.workflowExecution;
  return { workflowId: e?.workflowId ?? 'none', runId: e?.runId ?? null };
};

/** Data backups retention may consider: written, not deleted. Running and failed ones are never touched. */
const RETAINABLE = ['completed', 'verified', 'restore-test-failed'] as const;

/** The data backups retention chooses among, with the time their snapshot was taken and their latest test. */
const retainable = (db: Db) =>
  db
    .select({
      id: backups.id,
      takenAt: sql<Date>`coalesce(${backups.snapshotAt}, ${backups.startedAt})`.mapWith(backups.startedAt),
      restoreTest: backups.lastRestoreTestStatus,
    })
    .from(backups)
    .where(and(eq(backups.kind, 'data'), inArray(backups.status, RETAINABLE), isNull(backups.deletedAt)));

/** The newest data backup whose latest restore test passed (the one retention never deletes). */
export const newestVerifiedBackup = async (db: Pick<Db, 'select'>) =>
  (
    await db
      .select({ id: backups.id, snapshotAt: backups.snapshotAt, startedAt: backups.startedAt })
      .from(backups)
      .where(
        and(
          eq(backups.kind, 'data'),
          eq(backups.lastRestoreTestStatus, 'pass'),
          inArray(backups.status, RETAINABLE),
          isNull(backups.deletedAt),
        ),
      )
      .orderBy(desc(sql`coalesce(${backups.snapshotAt}, ${backups.startedAt})`), desc(backups.id))
      .limit(1)
  )[0];

/**
 * Retention: the plan (pure GFS over the data backups, plus the keyring backups past their retention; audited once
 * per run), a re-check before each deletion, and the deletion (objects, then the row marked `deleted` with its audit
 * entry in one transaction). Each is idempotent: a retried or repeated deletion deletes and audits once.
 */
export const backupRetentionActivities = (d: BackupRetentionDeps) => {
  const storage = d.backupStorage ?? backupStorageFor(d.config);
  return {
    async planBackupRetention(input: RetentionPolicy): Promise<RetentionPlan> {
      const policy = RetentionPolicy.safeParse(input);
      if (!policy.success) throw ApplicationFailure.nonRetryable('invalid retention policy', 'InvalidInput');
      const candidates = await retainable(d.db);
      const selection = selectRetention(
        candidates.map((c) => ({ id: c.id, takenAt: c.takenAt.getTime(), restoreTest: c.restoreTest })),
        policy.data,
      );
      const expired = await d.db
        .select({ id: backups.id })
        .from(backups)
        .where(and(eq(backups.kind, 'keyring'), isNull(backups.deletedAt), lte(backups.retainUntil, d.clock())))
        .orderBy(backups.startedAt, backups.id);
      const plan = { ...selection, expiredKeyring: expired.map((e) => e.id) };
      const { workflowId, runId } = execution();
      await appendAudit(d.db, {
        actor: 'system',
        action: 'backup.retention-planned',
        targetType: 'backup-retention',
        targetId: workflowId,
        workflowId,
        runId,
        details: {
          policy: policy.data,
          pinned: plan.pinned,
          kept: plan.keep.length,
          removing: plan.remove.length,
          expiredKeyring: plan.expiredKeyring.length,
        },
        idempotencyKey: `${workflowId}:planned`,
      });
      return plan;
    },

    /**
     * Why a planned deletion must not happen now, or null: the backup is gone already, became the newest verified
     * one since the plan, or a restore test is reading it (a drill); the next run considers it again.
     */
    async backupDeletionBlocker(input: { backupId: string }): Promise<DeletionSkipped | null> {
      const [row] = await d.db
        .select({ id: backups.id, kind: backups.kind, deletedAt: backups.deletedAt })
        .from(backups)
        .where(eq(backups.id, input.backupId));
      if (!row) return 'not-found';
      if (row.deletedAt) return 'already-deleted';
      if (row.kind === 'data' && (await newestVerifiedBackup(d.db))?.id === row.id) return 'pinned';
      const [reading] = await d.db
        .select({ id: restoreTests.id })
        .from(restoreTests)
        .where(and(eq(restoreTests.backupId, row.id), eq(restoreTests.status, 'running')))
        .limit(1);
      return reading ? 'restore-test-running' : null;
    },

    /** Deletes a backup's objects (the manifest first: it stops being a backup at once) and marks its row deleted. */
    async deleteBackup(input: DeleteBackupInput): Promise<{ deleted: boolean }> {
      const [row] = await d.db.select().from(backups).where(eq(backups.id, input.backupId));
      if (!row) return { deleted: false };
      await storage.delete(manifestObjectKey(row.id));
      await storage.delete(backupObjectKey(row.id));
      const { workflowId, runId } = execution();
      return d.db.transaction(async (tx) => {
        const [marked] = await tx
          .update(backups)
          .set({ status: 'deleted', deletedAt: d.clock() })
          .where(and(eq(backups.id, row.id), isNull(backups.deletedAt)))
          .returning({ id: backups.id });
        if (!marked) return { deleted: false };
        await appendAudit(tx, {
          actor: 'system',
          action: 'backup.deleted',
          targetType: 'backup',
          targetId: row.id,
          workflowId,
          runId,
          details: { kind: row.kind, reason: input.reason, previousStatus: row.status, sizeBytes: row.sizeBytes },
          idempotencyKey: `backup:${row.id}:deleted`,
        });
        return { deleted: true };
      });
    },
  };
};
