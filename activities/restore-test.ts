import { ApplicationFailure, Context } from '@temporalio/activity';
import { and, eq, inArray, isNull, lte, or } from 'drizzle-orm';
import type { Database, Db } from '../db/client';
import { backups, restoreTests } from '../db/schema';
import {
  summarizeReasons,
  type RestoreTestInput,
  type RestoreTestReason,
  type RestoreTestResult,
  type RestoreTestTable,
} from '../domain/backup';
import type { Config } from '../runtime/config';
import type { Keyring } from '../runtime/keyring';
import type { Logger } from '../runtime/logger';
import { appendAudit } from './audit';
import { createBareTableStatement } from './backup-copy';
import { restoreBackup, type RestoreProgress } from './backup-restore';
import { backupStorageFor, type BackupStorage } from './backup-storage';

export interface RestoreTestDeps {
  db: Db;
  database: Database;
  keyring: Keyring;
  config: Config;
  logger: Logger;
  clock: () => Date;
  backupStorage?: BackupStorage;
}

const PROGRESS_EVERY_MS = 1000;
const RESTORABLE: ('completed' | 'verified' | 'restore-test-failed')[] = [
  'completed',
  'verified',
  'restore-test-failed',
];

const execution = () => {
  const e = Context.current().info.workflowExecution;
  return { workflowId: e?.workflowId ?? null, runId: e?.runId ?? null };
};

/**
 * Restore tests: `beginRestoreTest` records the test, `runRestoreTest` restores the backup into scratch tables
 * (temporary tables of the activity's own transaction: a schema of its own that no other session sees and that
 * vanishes with the transaction, whatever happens to the worker), compares every table with the manifest and
 * records the verdict, RTO and RPO, marking the backup `verified` or `restore-test-failed`.
 */
export const restoreTestActivities = (d: RestoreTestDeps) => {
  const storage = d.backupStorage ?? backupStorageFor(d.config);

  const audit = (
    db: Parameters<typeof appendAudit>[0],
    backupId: string,
    restoreTestId: string,
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
      details: { restoreTestId, ...details },
      idempotencyKey: `restore-test:${restoreTestId}:${action}`,
    });
  };

  const resultOf = (row: typeof restoreTests.$inferSelect): RestoreTestResult => ({
    restoreTestId: row.id,
    backupId: row.backupId,
    status: row.status === 'pass' ? 'pass' : 'fail',
    reasons: row.reasons as RestoreTestReason[],
    rtoMs: row.rtoMs ?? 0,
    rpoMs: row.rpoMs ?? 0,
  });

  /** Records the verdict and the backup's latest test in one transaction, audited; a recorded test is returned as it was. */
  const recordVerdict = async (
    test: typeof restoreTests.$inferSelect,
    v: {
      reasons: RestoreTestReason[];
      tables: RestoreTestTable[];
      rtoMs: number | null;
      rpoMs: number | null;
      finished: Date;
    },
  ): Promise<RestoreTestResult> => {
    const status = v.reasons.length === 0 ? 'pass' : 'fail';
    const recorded = await d.db.transaction(async (tx) => {
      const updated = await tx
        .update(restoreTests)
        .set({
          status,
          phase: 'done',
          reasons: v.reasons as unknown as Record<string, unknown>[],
          tables: v.tables as unknown as Record<string, unknown>[],
          rtoMs: v.rtoMs,
          rpoMs: v.rpoMs,
          finishedAt: v.finished,
        })
        .where(and(eq(restoreTests.id, test.id), eq(restoreTests.status, 'running')))
        .returning();
      if (updated.length === 0) return undefined;
      // The backup shows its latest test: an older test finishing late does not overwrite a newer verdict.
      await tx
        .update(backups)
        .set({
          status: status === 'pass' ? 'verified' : 'restore-test-failed',
          lastRestoreTestId: test.id,
          lastRestoreTestStatus: status,
          lastRestoreTestAt: test.startedAt,
        })
        .where(
          and(
            eq(backups.id, test.backupId),
            inArray(backups.status, RESTORABLE),
            or(isNull(backups.lastRestoreTestAt), lte(backups.lastRestoreTestAt, test.startedAt)),
          ),
        );
      await audit(tx, test.backupId, test.id, `restore-test.${status === 'pass' ? 'passed' : 'failed'}`, {
        reasons: v.reasons.slice(0, 20),
        tables: v.tables.length,
        rtoMs: v.rtoMs,
        rpoMs: v.rpoMs,
      });
      return updated[0];
    });
    if (!recorded) {
      const [current] = await d.db.select().from(restoreTests).where(eq(restoreTests.id, test.id));
      return resultOf(current!);
    }
    d.logger.info(
      {
        restoreTest: {
          id: test.id,
          backupId: test.backupId,
          status,
          rtoMs: v.rtoMs,
          rpoMs: v.rpoMs,
          reasons: summarizeReasons(v.reasons),
        },
      },
      'restore test finished',
    );
    return resultOf(recorded);
  };

  return {
    async beginRestoreTest(input: RestoreTestInput): Promise<void> {
      const [backup] = await d.db.select().from(backups).where(eq(backups.id, input.backupId));
      if (!backup) throw ApplicationFailure.nonRetryable(`backup ${input.backupId} was not found`, 'BackupNotFound');
      const [existing] = await d.db.select().from(restoreTests).where(eq(restoreTests.id, input.restoreTestId));
      if (existing) return;
      if (!(RESTORABLE as string[]).includes(backup.status))
        throw ApplicationFailure.nonRetryable(
          `backup ${input.backupId} is ${backup.status}: nothing to restore`,
          'BackupNotRestorable',
        );
      const e = execution();
      await d.db.transaction(async (tx) => {
        const created = await tx
          .insert(restoreTests)
          .values({
            id: input.restoreTestId,
            backupId: input.backupId,
            trigger: input.trigger,
            requestedBy: input.requestedBy,
            startedAt: d.clock(),
            workflowId: e.workflowId,
            runId: e.runId,
          })
          .onConflictDoNothing()
          .returning({ id: restoreTests.id });
        if (created.length > 0)
          await audit(tx, input.backupId, input.restoreTestId, 'restore-test.started', {
            trigger: input.trigger,
            requestedBy: input.requestedBy,
          });
      });
    },

    async runRestoreTest(input: { restoreTestId: string; backupId: string }): Promise<RestoreTestResult> {
      const [test] = await d.db.select().from(restoreTests).where(eq(restoreTests.id, input.restoreTestId));
      if (!test)
        throw ApplicationFailure.nonRetryable(`restore test ${input.restoreTestId} was not begun`, 'BackupNotFound');
      if (test.status !== 'running') return resultOf(test);

      let last = 0;
      let writing: Promise<unknown> = Promise.resolve();
      const onProgress = (p: RestoreProgress) => {
        const now = d.clock().getTime();
        if (now - last < PROGRESS_EVERY_MS) return;
        last = now;
        Context.current().heartbeat(p);
        writing = writing
          .then(() =>
            d.db
              .update(restoreTests)
              .set({ phase: p.phase, bytesDone: p.bytesDone })
              .where(and(eq(restoreTests.id, input.restoreTestId), eq(restoreTests.status, 'running'))),
          )
          .catch(() => {});
      };

      const started = d.clock();
      Context.current().heartbeat({ phase: 'verify-manifest', bytesDone: 0 });
      let outcome: Awaited<ReturnType<typeof restoreBackup>> | undefined;
      await d.database.sql.begin(async (tx) => {
        let n = 0;
        outcome = await restoreBackup({
          storage,
          keyring: d.keyring,
          backupId: input.backupId,
          tx,
          async target(table) {
            const relation = `restore_${(n++).toString().padStart(3, '0')}`;
            await tx.unsafe(createBareTableStatement(table, relation, true));
            return { schema: 'pg_temp', relation };
          },
          onProgress,
        });
        // The scratch tables go with the transaction (ON COMMIT DROP); nothing was written elsewhere.
      });
      const finished = d.clock();
      await writing;
      const { reasons, tables, manifest } = outcome!;
      const rpoMs = manifest ? Math.max(0, started.getTime() - Date.parse(manifest.snapshot.at)) : null;
      return recordVerdict(test, { reasons, tables, rtoMs: finished.getTime() - started.getTime(), rpoMs, finished });
    },

    /** A restore test that could not run to its end (its activity gave up) fails like a damaged backup. */
    async failRestoreTest(input: {
      restoreTestId: string;
      backupId: string;
      error: string;
    }): Promise<RestoreTestResult> {
      const [test] = await d.db.select().from(restoreTests).where(eq(restoreTests.id, input.restoreTestId));
      if (!test)
        throw ApplicationFailure.nonRetryable(`restore test ${input.restoreTestId} was not begun`, 'BackupNotFound');
      if (test.status !== 'running') return resultOf(test);
      const finished = d.clock();
      return recordVerdict(test, {
        reasons: [{ code: 'restore-failed', message: input.error.slice(0, 200) }],
        tables: [],
        rtoMs: null,
        rpoMs: null,
        finished,
      });
    },
  };
};
