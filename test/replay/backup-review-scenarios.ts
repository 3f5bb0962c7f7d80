import { randomUUID } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { backups } from '../../db/schema';
import {
  backupFreshnessWorkflowId,
  backupRetentionWorkflowId,
  restoreDrillWorkflowId,
  scheduleIdOf,
} from '../../domain/ids';
import { backupFreshness, backupRetention, restoreDrill, scheduledRun } from '../../workflows';
import { insertBackupRow, insertRunningRestoreTest } from '../helpers/backup-rows';
import type { Scenario, ScenarioContext } from './scenarios';

const DAY = 86_400_000;

const settled = async (handle: WorkflowHandle): Promise<WorkflowHandle> => {
  await handle.result().catch(() => {});
  return handle;
};

/** These scenarios run last: retention and the drill's setup change every backup row of the recording database. */
const noBackups = ({ database }: ScenarioContext) =>
  database.db.update(backups).set({ status: 'deleted', deletedAt: new Date() });

const freshness = async ({ client, taskQueue }: ScenarioContext, thresholdMs: number) => {
  const checkId = randomUUID();
  return settled(
    await client.workflow.start(backupFreshness, {
      taskQueue,
      workflowId: backupFreshnessWorkflowId(checkId),
      args: [{ checkId, requestedBy: 'recorded', thresholdMs }],
    }),
  );
};

const retention = async ({ client, taskQueue }: ScenarioContext, keepDaily: number) => {
  const retentionId = randomUUID();
  return settled(
    await client.workflow.start(backupRetention, {
      taskQueue,
      workflowId: backupRetentionWorkflowId(retentionId),
      args: [{ retentionId, requestedBy: 'recorded', keepDaily, keepWeekly: 0, keepMonthly: 0 }],
    }),
  );
};

const drill = async ({ client, taskQueue }: ScenarioContext) => {
  const drillId = randomUUID();
  return settled(
    await client.workflow.start(restoreDrill, {
      taskQueue,
      workflowId: restoreDrillWorkflowId(drillId),
      args: [{ drillId, requestedBy: 'recorded', seed: 1 }],
    }),
  );
};

const launch = async ({ client, taskQueue }: ScenarioContext, schedule: string, input: Record<string, unknown>) =>
  settled(
    await client.workflow.start(scheduledRun, {
      taskQueue,
      // As a schedule names its runs: the schedule ID and the scheduled time.
      workflowId: `${scheduleIdOf(schedule)}-${new Date().toISOString()}`,
      args: [{ schedule, input }],
    }),
  );

/** The recurring reviews of backups and the schedules' launcher. */
export const backupReviewScenarios: Record<string, Record<string, Scenario>> = {
  scheduledRun: {
    /** A scheduled freshness check: fresh IDs, the process as a child under its own ID, its result returned. */
    'runs-process': (ctx) =>
      launch(ctx, 'backup-freshness', { requestedBy: 'schedule:backup-freshness', thresholdMs: DAY }),
    /** A schedule the code no longer declares: fails without starting anything. */
    'unknown-schedule': (ctx) => launch(ctx, 'backup-weekly', { requestedBy: 'recorded' }),
  },
  backupFreshness: {
    /** No verified backup at all: an alert. */
    'none-alerted': async (ctx) => {
      await noBackups(ctx);
      return freshness(ctx, DAY);
    },
    /** The newest verified backup is older than the threshold: an alert. */
    'stale-alerted': async (ctx) => {
      await insertBackupRow(ctx.database.db, { lastRestoreTest: 'pass', snapshotAt: new Date(Date.now() - 2 * DAY) });
      return freshness(ctx, DAY);
    },
    /** Within the threshold: recorded, no alert. */
    fresh: async (ctx) => {
      await insertBackupRow(ctx.database.db, { lastRestoreTest: 'pass' });
      return freshness(ctx, DAY);
    },
  },
  backupRetention: {
    /** Old untested backups deleted, the newest verified kept, one a restore test is reading skipped, an expired keyring backup deleted. */
    'deleted-and-skipped': async (ctx) => {
      const { db } = ctx.database;
      await noBackups(ctx);
      await insertBackupRow(db, { lastRestoreTest: 'pass', snapshotAt: new Date(Date.now() - 10 * DAY) });
      for (const days of [1, 2, 3]) await insertBackupRow(db, { snapshotAt: new Date(Date.now() - days * DAY) });
      await insertRunningRestoreTest(db, await insertBackupRow(db, { snapshotAt: new Date(Date.now() - 4 * DAY) }));
      await insertBackupRow(db, { kind: 'keyring', retainUntil: new Date(Date.now() - 1000) });
      return retention(ctx, 1);
    },
    /** Nothing outside the policy: a plan and no deletion. */
    'nothing-to-delete': async (ctx) => {
      await noBackups(ctx);
      await insertBackupRow(ctx.database.db, { lastRestoreTest: 'pass' });
      return retention(ctx, 7);
    },
  },
  restoreDrill: {
    'no-verified-backup': async (ctx) => {
      await noBackups(ctx);
      return drill(ctx);
    },
    /** A verified backup whose file is gone: the drill's restore test (a child) runs and fails, and pages. */
    'restore-tested': async (ctx) => {
      await noBackups(ctx);
      await insertBackupRow(ctx.database.db, { lastRestoreTest: 'pass', snapshotAt: new Date(Date.now() - 8 * DAY) });
      await insertBackupRow(ctx.database.db, { lastRestoreTest: 'pass' });
      return drill(ctx);
    },
  },
};
