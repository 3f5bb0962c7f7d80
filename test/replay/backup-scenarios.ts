import { randomUUID } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import type { BackupInput } from '../../domain/backup';
import { backupWorkflowId, restoreTestWorkflowId } from '../../domain/ids';
import { backup, restoreTest } from '../../workflows';
import { insertBackupRow } from '../helpers/backup-rows';
import { insertSubject } from '../helpers/notifications';
import type { Scenario, ScenarioContext } from './scenarios';

const settled = async (handle: WorkflowHandle): Promise<WorkflowHandle> => {
  await handle.result().catch(() => {});
  return handle;
};

const startBackup = async ({ client, taskQueue, database, keyring }: ScenarioContext, o: Partial<BackupInput> = {}) => {
  await insertSubject(database.db, keyring, { locale: 'en', email: 'recorded@example.com' });
  const backupId = o.backupId ?? randomUUID();
  return client.workflow.start(backup, {
    taskQueue,
    workflowId: backupWorkflowId(backupId),
    args: [{ backupId, keyringBackupId: randomUUID(), requestedBy: 'recorded', ...o }],
  });
};

const startRestoreTest = async ({ client, taskQueue }: ScenarioContext, backupId: string) => {
  const restoreTestId = randomUUID();
  return client.workflow.start(restoreTest, {
    taskQueue,
    workflowId: restoreTestWorkflowId(restoreTestId),
    args: [{ restoreTestId, backupId, trigger: 'api', requestedBy: 'recorded' }],
  });
};

/** The backup and its restore test. */
export const backupScenarios: Record<string, Record<string, Scenario>> = {
  backup: {
    /** Begin, export both backups from one snapshot, then the restore test as a child: verified. */
    verified: async (ctx) => settled(await startBackup(ctx)),
    /** Without a restore test: completed. */
    untested: async (ctx) => settled(await startBackup(ctx, { restoreTest: false })),
    /** The ID was used by a backup that failed: the export refuses it, the backup is closed as failed. */
    'export-fails': async (ctx) => {
      const backupId = await insertBackupRow(ctx.database.db, { status: 'failed' });
      return settled(await startBackup(ctx, { backupId }));
    },
  },
  restoreTest: {
    /** A written backup restored and compared: pass. */
    pass: async (ctx) => {
      const written = await startBackup(ctx, { restoreTest: false });
      const { backupId } = await written.result();
      return settled(await startRestoreTest(ctx, backupId));
    },
    /** A backup whose objects are gone: fail (manifest-missing), the backup marked, the operator paged. */
    'fail-alerted': async (ctx) => settled(await startRestoreTest(ctx, await insertBackupRow(ctx.database.db))),
    /** A failed backup has nothing to restore: refused before a test is recorded. */
    'not-restorable': async (ctx) =>
      settled(await startRestoreTest(ctx, await insertBackupRow(ctx.database.db, { status: 'failed' }))),
  },
};
