import { ApplicationFailure, isCancellation, proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  BACKUP_NON_RETRYABLE,
  summarizeReasons,
  type RestoreTestInput,
  type RestoreTestResult,
} from '../domain/backup';
import { openIncidentFrom } from './system-incident';

export const io = {
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 10, nonRetryableErrorTypes: BACKUP_NON_RETRYABLE },
} satisfies ActivityOptions;

/** The restore heartbeats as it reads; loading or hashing one large table can take a while between beats. */
export const restoreIo = {
  startToCloseTimeout: '12 hours',
  heartbeatTimeout: '2 minutes',
  retry: { maximumInterval: '1 minute', maximumAttempts: 5, nonRetryableErrorTypes: BACKUP_NON_RETRYABLE },
} satisfies ActivityOptions;

const { beginRestoreTest, failRestoreTest, raiseAlert } = proxyActivities<Activities>(io);

const failureType = (err: unknown): string => {
  for (let e: unknown = err; e instanceof Error; e = (e as Error & { cause?: unknown }).cause) {
    if (e instanceof ApplicationFailure && e.type) return e.type;
  }
  return 'RestoreTestFailed';
};

/**
 * `restore-test-{id}`: restores a backup into scratch tables and compares it with its manifest. A failure — a
 * damaged backup or a test that could not finish — marks the backup `restore-test-failed`, pages the operator and
 * opens a sev2 incident (when an escalation policy exists), which escalates until someone acknowledges it.
 */
export async function restoreTest(input: RestoreTestInput): Promise<RestoreTestResult> {
  const { runRestoreTest } = proxyActivities<Activities>({
    ...restoreIo,
    heartbeatTimeout: input.heartbeatTimeout ?? restoreIo.heartbeatTimeout,
  });
  await beginRestoreTest(input);
  const ids = { restoreTestId: input.restoreTestId, backupId: input.backupId };
  let result: RestoreTestResult;
  try {
    result = await runRestoreTest(ids);
  } catch (err) {
    if (isCancellation(err)) throw err;
    result = await failRestoreTest({ ...ids, error: failureType(err) });
  }
  if (result.status === 'fail') {
    await raiseAlert({
      kind: 'restore-test-failed',
      targetType: 'backup',
      targetId: input.backupId,
      reason: summarizeReasons(result.reasons).slice(0, 500),
      details: { restoreTestId: input.restoreTestId, reasons: result.reasons.slice(0, 10) },
    });
    await openIncidentFrom({
      kind: 'restore-test-failed',
      targetType: 'backup',
      targetId: input.backupId,
      severity: 'sev2',
      category: 'backup',
      reason: summarizeReasons(result.reasons).slice(0, 200),
    });
  }
  return result;
}
