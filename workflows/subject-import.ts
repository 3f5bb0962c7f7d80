import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  continueAsNew,
  defineQuery,
  isCancellation,
  log,
  proxyActivities,
  setHandler,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  addCounts,
  IMPORT_DEFAULTS,
  IMPORT_PROGRESS_QUERY,
  zeroCounts,
  type ImportProgress,
  type ImportReport,
  type ImportStatus,
  type SubjectImportInput,
} from '../domain/subject-import';

export const io = {
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 10, nonRetryableErrorTypes: ['StagedFileMissing', 'ImportNotFound', 'CryptoError'] },
} satisfies ActivityOptions;

/** Long-running and heartbeating: a dead worker is noticed after the heartbeat timeout, and the retry resumes. */
export const batchIo = {
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '10 seconds',
  // Wait for the activity to stop at a batch boundary, so the final counts are the committed ones.
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: {
    maximumInterval: '30 seconds',
    maximumAttempts: 50,
    nonRetryableErrorTypes: ['StagedFileMissing', 'CryptoError'],
  },
} satisfies ActivityOptions;

const { beginSubjectImport, finishSubjectImport } = proxyActivities<Activities>(io);

export const importProgressQuery = defineQuery<ImportProgress>(IMPORT_PROGRESS_QUERY);

const failureType = (err: unknown): string => {
  for (let e: unknown = err; e instanceof Error; e = (e as Error & { cause?: unknown }).cause) {
    if (e instanceof ApplicationFailure && e.type) return e.type;
  }
  return 'ImportFailed';
};

/**
 * Imports a staged NDJSON file of subjects in batches. Carries only IDs, counts and byte offsets;
 * continues as new every `batchesPerRun` batches with the cursor and counters.
 */
export async function subjectImport(input: SubjectImportInput): Promise<ImportReport> {
  const batchLines = input.batchLines ?? IMPORT_DEFAULTS.batchLines;
  const batchesPerActivity = input.batchesPerActivity ?? IMPORT_DEFAULTS.batchesPerActivity;
  const batchesPerRun = input.batchesPerRun ?? IMPORT_DEFAULTS.batchesPerRun;
  let cursor = input.resume?.cursor ?? { offset: 0, line: 1 };
  let counts = input.resume?.counts ?? zeroCounts();
  const { importSubjectBatches } = proxyActivities<Activities>({
    ...batchIo,
    heartbeatTimeout: input.batchHeartbeatTimeout ?? batchIo.heartbeatTimeout,
  });
  let status: ImportStatus = 'running';
  setHandler(importProgressQuery, () => ({
    importId: input.importId,
    status,
    total: input.totalLines,
    counts,
    cursor,
    stagedBytes: input.stagedBytes,
  }));

  const finish = (final: Exclude<ImportStatus, 'running'>, error?: string) => {
    status = final;
    return CancellationScope.nonCancellable(() =>
      finishSubjectImport({ importId: input.importId, status: final, error }),
    );
  };

  let continueWith: SubjectImportInput | undefined;
  try {
    if (!input.resume) {
      await beginSubjectImport({
        importId: input.importId,
        mode: input.mode,
        requestedBy: input.requestedBy,
        totalLines: input.totalLines,
        stagedBytes: input.stagedBytes,
      });
    }
    let batchesThisRun = 0;
    for (;;) {
      if (batchesThisRun >= batchesPerRun || workflowInfo().continueAsNewSuggested) {
        continueWith = { ...input, resume: { cursor, counts } };
        break;
      }
      const result = await importSubjectBatches({
        importId: input.importId,
        mode: input.mode,
        cursor,
        batchLines,
        maxBatches: Math.min(batchesPerActivity, batchesPerRun - batchesThisRun),
      });
      cursor = result.cursor;
      counts = addCounts(counts, result.counts);
      batchesThisRun += Math.max(result.batches, 1);
      if (result.done) break;
    }
  } catch (err) {
    // The import fails with its own cause even if closing it fails too (the staging sweep closes it then).
    await finish(
      isCancellation(err) ? 'cancelled' : 'failed',
      isCancellation(err) ? undefined : failureType(err),
    ).catch((closing: unknown) => log.warn('closing the import failed', { failureType: failureType(closing) }));
    throw err;
  }
  if (continueWith) return await continueAsNew<typeof subjectImport>(continueWith);
  return await finish('completed');
}
