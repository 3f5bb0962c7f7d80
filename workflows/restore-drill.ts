import { ChildWorkflowFailure, executeChild, proxyActivities, uuid4, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { RestoreTestInput, RestoreTestResult } from '../domain/backup';
import { pickDrillBackup, type RestoreDrillInput, type RestoreDrillResult } from '../domain/backup-reviews';
import { restoreTestWorkflowId } from '../domain/ids';

export const io = { startToCloseTimeout: '1 minute', retry: { maximumAttempts: 10 } } satisfies ActivityOptions;

const { listRestoreDrillCandidates, recordRestoreDrill } = proxyActivities<Activities>(io);

/**
 * The weekly restore drill (`restore-drill-{id}`): a restore test (`restore-test-{id}`, trigger `schedule`) of a
 * random older verified backup. The seed is recorded with the choice, so an auditor can see how it was made.
 */
export async function restoreDrill(input: RestoreDrillInput): Promise<RestoreDrillResult> {
  // Math.random is seeded by Temporal inside a workflow: the same run replays the same seed.
  const seed = input.seed ?? Math.floor(Math.random() * 2 ** 31);
  const candidates = await listRestoreDrillCandidates();
  const backupId = pickDrillBackup(candidates, seed) ?? null;
  const restoreTestId = backupId ? uuid4() : null;
  const drill = { drillId: input.drillId, seed, candidates: candidates.length, backupId, restoreTestId };
  await recordRestoreDrill(drill);
  if (!backupId || !restoreTestId) return { ...drill, status: 'no-verified-backup' };
  const test: RestoreTestInput = {
    restoreTestId,
    backupId,
    trigger: 'schedule',
    requestedBy: input.requestedBy,
    ...(input.heartbeatTimeout ? { heartbeatTimeout: input.heartbeatTimeout } : {}),
  };
  try {
    const result = await executeChild<(t: RestoreTestInput) => Promise<RestoreTestResult>>('restoreTest', {
      workflowId: restoreTestWorkflowId(restoreTestId),
      args: [test],
    });
    return { ...drill, status: result.status };
  } catch (err) {
    // The restore test records and pages its own failure; the drill reports it.
    if (err instanceof ChildWorkflowFailure) return { ...drill, status: 'fail' };
    throw err;
  }
}
