import {
  ApplicationFailure,
  CancellationScope,
  executeChild,
  isCancellation,
  log,
  proxyActivities,
  uuid4,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { BACKUP_NON_RETRYABLE, type BackupInput, type BackupResult, type RestoreTestResult } from '../domain/backup';
import { restoreTestWorkflowId } from '../domain/ids';
import { restoreTest } from './restore-test';

export const io = {
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 10, nonRetryableErrorTypes: BACKUP_NON_RETRYABLE },
} satisfies ActivityOptions;

/** The export heartbeats as bytes flow: a dead worker is noticed after the heartbeat timeout and the export restarts. */
export const exportIo = {
  startToCloseTimeout: '12 hours',
  heartbeatTimeout: '1 minute',
  retry: { maximumInterval: '1 minute', maximumAttempts: 20, nonRetryableErrorTypes: BACKUP_NON_RETRYABLE },
} satisfies ActivityOptions;

const { beginBackup, failBackup } = proxyActivities<Activities>(io);

const failureType = (err: unknown): string => {
  for (let e: unknown = err; e instanceof Error; e = (e as Error & { cause?: unknown }).cause) {
    if (e instanceof ApplicationFailure && e.type) return e.type;
  }
  return 'BackupFailed';
};

/**
 * `backup-{id}`: the data backup and its keyring backup from one snapshot, then a restore test of the data backup
 * (a child, `restore-test-{id}`). The keyring backup's deletion when its retention ends is the retention sweep's.
 */
export async function backup(input: BackupInput): Promise<BackupResult> {
  const { exportBackup } = proxyActivities<Activities>({
    ...exportIo,
    heartbeatTimeout: input.heartbeatTimeout ?? exportIo.heartbeatTimeout,
  });
  const ids = { backupId: input.backupId, keyringBackupId: input.keyringBackupId };
  await beginBackup({ ...ids, requestedBy: input.requestedBy });
  let exported: Awaited<ReturnType<typeof exportBackup>>;
  try {
    exported = await exportBackup({ ...ids, keyringRetentionMs: input.keyringRetentionMs });
  } catch (err) {
    await CancellationScope.nonCancellable(() =>
      failBackup({ ...ids, error: isCancellation(err) ? 'Cancelled' : failureType(err) }),
    );
    throw err;
  }

  let tested: RestoreTestResult | undefined;
  if (input.restoreTest !== false) {
    const restoreTestId = input.restoreTestId ?? uuid4();
    tested = await executeChild(restoreTest, {
      workflowId: restoreTestWorkflowId(restoreTestId),
      args: [
        {
          restoreTestId,
          backupId: input.backupId,
          trigger: 'after-backup',
          requestedBy: input.requestedBy,
          heartbeatTimeout: input.heartbeatTimeout,
        },
      ],
    });
    log.info('backup restore-tested', { backupId: input.backupId, status: tested.status });
  }
  return {
    ...ids,
    status: tested ? (tested.status === 'pass' ? 'verified' : 'restore-test-failed') : 'completed',
    sizeBytes: exported.data.sizeBytes,
    ...(tested ? { restoreTest: tested } : {}),
  };
}
