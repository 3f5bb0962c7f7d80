import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineUpdate,
  isCancellation,
  log,
  proxyActivities,
  setHandler,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  CAMPAIGN_DEFAULTS,
  CAMPAIGN_PROGRESS_QUERY,
  addCampaignCounts,
  observedRate,
  paceMs,
  zeroCampaignCounts,
  type CampaignInput,
  type CampaignProgress,
  type CampaignReport,
  type CampaignStatus,
} from '../domain/campaign';

export const io = {
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 10, nonRetryableErrorTypes: ['NoticeNotFound'] },
} satisfies ActivityOptions;

/** One batch per activity, heartbeating: a dead worker is noticed after the heartbeat timeout and the batch retried. */
export const batchIo = {
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: CAMPAIGN_DEFAULTS.batchHeartbeatTimeout,
  // A cancelled batch commits what it sent before the campaign closes, so the report counts it.
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { maximumInterval: '30 seconds', maximumAttempts: 50, nonRetryableErrorTypes: ['NoticeNotFound'] },
} satisfies ActivityOptions;

const { beginCampaign, finishCampaign } = proxyActivities<Activities>(io);

export const campaignProgressQuery = defineQuery<CampaignProgress>(CAMPAIGN_PROGRESS_QUERY);
/** Holds sending at the next batch boundary; returns once no batch is in flight. */
export const pauseUpdate = defineUpdate<CampaignProgress>('pause');
export const resumeUpdate = defineUpdate<CampaignProgress>('resume');
/** Stops at the next batch boundary; returns the stored final report. */
export const cancelUpdate = defineUpdate<CampaignReport>('cancel');

const failureType = (err: unknown): string => {
  for (let e: unknown = err; e instanceof Error; e = (e as Error & { cause?: unknown }).cause) {
    if (e instanceof ApplicationFailure && e.type) return e.type;
  }
  return 'CampaignFailed';
};

/**
 * A transfer-notice or re-consent campaign: pages through the subjects in scope one batch (one activity) at
 * a time, paced to `ratePerSecond` from each batch's measured time; pause, resume and cancel are updates
 * taking effect between batches; continues as new every `batchesPerRun` batches with the cursor and counters.
 * Carries IDs, codes and counts only.
 */
export async function campaign(input: CampaignInput): Promise<CampaignReport> {
  const batchesPerRun = input.batchesPerRun ?? CAMPAIGN_DEFAULTS.batchesPerRun;
  const { runCampaignBatch } = proxyActivities<Activities>({
    ...batchIo,
    heartbeatTimeout: input.batchHeartbeatTimeout ?? batchIo.heartbeatTimeout,
  });
  const resume = input.resume;
  let cursor = resume?.cursor ?? '';
  let counts = resume?.counts ?? zeroCampaignCounts();
  let batches = resume?.batches ?? 0;
  let total = resume?.total ?? 0;
  let purpose = resume?.purpose ?? '';
  const startedAt = resume?.startedAt ?? Date.now();
  let pausedMs = resume?.pausedMs ?? 0;
  let pausedSince: number | undefined;
  let status: CampaignStatus = 'running';
  let cancelRequested = false;
  let inFlight = false;
  let report: CampaignReport | undefined;

  const activeMs = () => Date.now() - startedAt - pausedMs - (pausedSince === undefined ? 0 : Date.now() - pausedSince);
  const progress = (): CampaignProgress => ({
    campaignId: input.campaignId,
    status,
    total,
    counts,
    batches,
    cursor,
    ratePerSecond: input.ratePerSecond ?? null,
    observedPerSecond: observedRate(counts.targeted, activeMs()),
    startedAt,
  });
  const open = () => {
    if (report || cancelRequested)
      throw ApplicationFailure.nonRetryable(`campaign ${input.campaignId} is ${status}`, `campaign-${status}`);
  };
  setHandler(campaignProgressQuery, progress);
  setHandler(
    pauseUpdate,
    async () => {
      if (status === 'running') {
        status = 'paused';
        pausedSince = Date.now();
      }
      await condition(() => !inFlight);
      return progress();
    },
    { validator: open },
  );
  setHandler(
    resumeUpdate,
    () => {
      if (status === 'paused') {
        status = 'running';
        pausedMs += Date.now() - pausedSince!;
        pausedSince = undefined;
      }
      return progress();
    },
    { validator: open },
  );
  setHandler(
    cancelUpdate,
    async () => {
      cancelRequested = true;
      if (pausedSince !== undefined) pausedMs += Date.now() - pausedSince;
      pausedSince = undefined;
      status = 'cancelling';
      await condition(() => report !== undefined);
      return report!;
    },
    { validator: () => (report ? open() : undefined) },
  );

  /** Stores and audits the report; not cancellable, so a cancelled campaign is still closed. */
  const finish = (final: CampaignReport['status'], error?: string) =>
    CancellationScope.nonCancellable(async () => {
      status = final;
      report = await finishCampaign({
        campaignId: input.campaignId,
        status: final,
        error,
        observedPerSecond: observedRate(counts.targeted, activeMs()),
      });
      await condition(allHandlersFinished);
      return report;
    });

  let ending: CampaignReport['status'] | 'continued';
  try {
    if (!resume) {
      ({ total, purpose } = await beginCampaign({
        campaignId: input.campaignId,
        noticeId: input.noticeId,
        purposeChanged: input.purposeChanged,
        filter: input.filter,
        ratePerSecond: input.ratePerSecond,
        batchSize: input.batchSize,
        consent: input.consent,
        requestedBy: input.requestedBy,
      }));
    }
    ending = await batchesUntilEnd();
  } catch (err) {
    // The campaign closes with its own cause even if closing fails too.
    await finish(
      isCancellation(err) ? 'cancelled' : 'failed',
      isCancellation(err) ? undefined : failureType(err),
    ).catch((closing: unknown) => log.warn('closing the campaign failed', { failureType: failureType(closing) }));
    throw err;
  }
  if (ending === 'continued') {
    await condition(allHandlersFinished);
    return await continueAsNew<typeof campaign>({
      ...input,
      resume: { cursor, counts, batches, total, purpose, startedAt, pausedMs },
    });
  }
  return await finish(ending);

  /** Runs batches until the scope is exhausted, a cancel, or the end of this run's share (continue as new). */
  async function batchesUntilEnd(): Promise<'completed' | 'cancelled' | 'continued'> {
    for (let batchesThisRun = 0; ; batchesThisRun++) {
      await condition(() => status !== 'paused' || cancelRequested);
      if (cancelRequested) return 'cancelled';
      if (batchesThisRun >= batchesPerRun || workflowInfo().continueAsNewSuggested) {
        await condition(allHandlersFinished);
        // A pause or cancel that arrived while handlers finished is honoured first, not lost.
        if (status === 'running' && !cancelRequested) return 'continued';
        continue;
      }
      const batchStarted = Date.now();
      inFlight = true;
      const result = await runCampaignBatch({
        campaignId: input.campaignId,
        noticeId: input.noticeId,
        purposeChanged: input.purposeChanged,
        purpose,
        filter: input.filter,
        after: cursor,
        batchSize: input.batchSize,
        consent: input.consent,
        requestedBy: input.requestedBy,
        sendConcurrency: input.sendConcurrency ?? CAMPAIGN_DEFAULTS.sendConcurrency,
      }).finally(() => (inFlight = false));
      cursor = result.end;
      counts = addCampaignCounts(counts, result.counts);
      if (result.subjects > 0) batches += 1;
      if (result.done) return cancelRequested ? 'cancelled' : 'completed';
      const wait = paceMs(result.subjects, input.ratePerSecond, Date.now() - batchStarted);
      if (wait > 0) await condition(() => cancelRequested, wait);
    }
  }
}
