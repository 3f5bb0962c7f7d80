import { Context } from '@temporalio/activity';
import { and, asc, eq, gte, inArray, isNull, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { alerts, backups } from '../db/schema';
import type { BackupFreshnessResult, NewestVerifiedBackup, RestoreDrillResult } from '../domain/backup-reviews';
import { appendAudit } from './audit';
import { newestVerifiedBackup } from './backup-retention';

export interface BackupReviewDeps {
  db: Db;
  clock: () => Date;
}

const execution = () => {
  const e = Context.current().info.workflowExecution;
  return { workflowId: e?.workflowId ?? 'none', runId: e?.runId ?? null };
};

/**
 * The freshness alarm's and the restore drill's reads and records. Reads are plain; each record is one audit entry
 * keyed by the workflow, so a retry records once.
 */
export const backupReviewActivities = (d: BackupReviewDeps) => ({
  /** The newest verified data backup and the time of the check (the activity's clock, not the workflow's). */
  /**
   * `alreadyAlerted`: a stale alert was raised since the newest verified backup went stale (any, when there is
   * none) — this staleness already opened its incident, and the hourly check only pages again.
   */
  async findNewestVerifiedBackup(thresholdMs = 0): Promise<{
    newest: NewestVerifiedBackup | null;
    checkedAt: string;
    alreadyAlerted: boolean;
  }> {
    const row = await newestVerifiedBackup(d.db);
    const newest = row ? { backupId: row.id, snapshotAt: (row.snapshotAt ?? row.startedAt).toISOString() } : null;
    const staleSince = newest ? new Date(Date.parse(newest.snapshotAt) + thresholdMs) : new Date(0);
    const [earlier] = await d.db
      .select({ id: alerts.id })
      .from(alerts)
      .where(and(eq(alerts.kind, 'backup-stale'), gte(alerts.createdAt, staleSince)))
      .limit(1);
    return { newest, checkedAt: d.clock().toISOString(), alreadyAlerted: earlier !== undefined };
  },

  async recordBackupFreshness(result: BackupFreshnessResult): Promise<void> {
    const { workflowId, runId } = execution();
    await appendAudit(d.db, {
      actor: 'system',
      action: 'backup.freshness-checked',
      targetType: 'backup-freshness',
      targetId: result.checkId,
      workflowId,
      runId,
      details: { ...result },
      idempotencyKey: `${workflowId}:checked`,
    });
  },

  /**
   * What a drill may pick: verified data backups, oldest first, without the newest (tested right after it was
   * taken) — unless it is the only one.
   */
  async listRestoreDrillCandidates(): Promise<string[]> {
    const verified = await d.db
      .select({ id: backups.id })
      .from(backups)
      .where(
        and(
          eq(backups.kind, 'data'),
          eq(backups.lastRestoreTestStatus, 'pass'),
          inArray(backups.status, ['verified', 'completed', 'restore-test-failed']),
          isNull(backups.deletedAt),
        ),
      )
      .orderBy(asc(sql`coalesce(${backups.snapshotAt}, ${backups.startedAt})`), asc(backups.id));
    const ids = verified.map((v) => v.id);
    return ids.length > 1 ? ids.slice(0, -1) : ids;
  },

  /** The drill's choice (seed, how many it chose from, the backup and the restore test), before the test starts. */
  async recordRestoreDrill(drill: Omit<RestoreDrillResult, 'status'>): Promise<void> {
    const { workflowId, runId } = execution();
    await appendAudit(d.db, {
      actor: 'system',
      action: 'backup.restore-drill-picked',
      targetType: 'restore-drill',
      targetId: drill.drillId,
      workflowId,
      runId,
      details: { ...drill },
      idempotencyKey: `${workflowId}:picked`,
    });
  },
});
