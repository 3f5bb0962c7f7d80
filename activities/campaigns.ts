import { createHash } from 'node:crypto';
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { eq, inArray } from 'drizzle-orm';
import { campaigns, consents } from '../db/schema';
import {
  campaignConsentName,
  campaignTemplate,
  uuidFromSha256,
  type CampaignConsentTerms,
  type CampaignFilter,
  type CampaignFinalStatus,
  type CampaignReport,
} from '../domain/campaign';
import type { ConsentInput } from '../domain/consent';
import { campaignWorkflowId, consentWorkflowId } from '../domain/ids';
import type { consent } from '../workflows/consent';
import { appendAudit } from './audit';
import {
  commitCampaignBatch,
  committedCampaignBatch,
  subjectPage,
  subjectsInScope,
  type CampaignBatchOutcome,
  type TargetOutcome,
} from './campaign-batch';
import { getNotice } from './notices';
import { notifyActivities, type NotifyDeps } from './notify';
import { withoutValues } from './subject-import';
import { rawSql } from './subject-writer';

export type CampaignDeps = NotifyDeps;

/**
 * The consent a campaign asks of one subject: a name-based UUID (version 8, SHA-256, RFC 9562) of the
 * campaign and subject IDs, so every attempt names the same consent and the same `consent-{id}` workflow.
 */
export const campaignConsentId = (campaignId: string, subjectId: string): string =>
  uuidFromSha256(createHash('sha256').update(campaignConsentName(campaignId, subjectId)).digest());

/** The outbox key of a subject's transfer (or breach) notice: one message per campaign and subject, whatever retries. */
export const campaignNoticeKey = (campaignId: string, subjectId: string): string =>
  `${campaignWorkflowId(campaignId)}:notice:${subjectId}`;

export interface BeginCampaignInput {
  campaignId: string;
  noticeId: string;
  purposeChanged: boolean;
  filter: CampaignFilter;
  ratePerSecond?: number;
  batchSize: number;
  consent?: CampaignConsentTerms;
  requestedBy: string;
}

export interface BeginCampaignResult {
  /** Subjects in scope when the campaign began. */
  total: number;
  /** The notice's purpose: what a re-consent campaign's consents are for. */
  purpose: string;
}

export interface CampaignBatchInput {
  campaignId: string;
  noticeId: string;
  purposeChanged: boolean;
  purpose: string;
  filter: CampaignFilter;
  /** The subject ID the page starts after; '' for the first. */
  after: string;
  batchSize: number;
  consent?: CampaignConsentTerms;
  requestedBy: string;
  sendConcurrency: number;
}

export interface CampaignBatchResult extends CampaignBatchOutcome {
  /** No subject in scope after this batch. */
  done: boolean;
}

export interface FinishCampaignInput {
  campaignId: string;
  status: CampaignFinalStatus;
  /** A failure type, never a message. */
  error?: string;
  observedPerSecond: number;
}

/** The database refused or failed: report the SQLSTATE only, as the import does. */
const reported = async <T>(body: () => Promise<T>): Promise<T> => {
  try {
    return await body();
  } catch (err) {
    throw withoutValues(err);
  }
};

/**
 * Runs `work` over `items` with at most `limit` in flight, in order of launch, and settles every launched
 * one. Once `stop()` is true no more are launched, so what ran is always a prefix of `items`.
 */
const settleInOrder = async <T, R>(
  items: readonly T[],
  limit: number,
  stop: () => boolean,
  work: (item: T) => Promise<R>,
): Promise<PromiseSettledResult<R>[]> => {
  const results: PromiseSettledResult<R>[] = [];
  let next = 0;
  const lane = async () => {
    while (next < items.length && !stop()) {
      const i = next++;
      results[i] = await work(items[i]!).then(
        (value): PromiseSettledResult<R> => ({ status: 'fulfilled', value }),
        (reason: unknown): PromiseSettledResult<R> => ({ status: 'rejected', reason }),
      );
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results.slice(0, next);
};

/** A refusal that retrying cannot change (no address, rejected by the receiver): the subject counts as failed. */
const finalRefusal = (err: unknown): string | undefined =>
  err instanceof ApplicationFailure && err.nonRetryable ? (err.type ?? 'Refused') : undefined;

/**
 * The campaign's effects: begin (the row and its audit entry), one batch at a time (a keyset page of
 * subjects, each notified through the outbox or asked for consent, committed as one unit of work keyed by
 * where the page starts), and finish (the report, stored and audited once).
 */
export const campaignActivities = (d: CampaignDeps) => {
  let notifier: ReturnType<typeof notifyActivities> | undefined;
  const notify = () => (notifier ??= notifyActivities(d));
  const execution = () => {
    const e = Context.current().info.workflowExecution;
    return { workflowId: e?.workflowId, runId: e?.runId };
  };

  /** Each send holds a pool connection for its lock and needs another for its queries: stay under half the pool. */
  const concurrencyFor = (wanted: number) =>
    Math.max(1, Math.min(wanted, Math.floor((rawSql(d.db).options.max ?? 10) / 2)));

  const sendNotices = async (input: CampaignBatchInput, page: readonly string[], stop: () => boolean) =>
    settleInOrder(page, concurrencyFor(input.sendConcurrency), stop, async (subjectId): Promise<TargetOutcome> => {
      try {
        await notify().sendNotification({
          idempotencyKey: campaignNoticeKey(input.campaignId, subjectId),
          template: campaignTemplate(input.filter),
          subjectId,
          noticeId: input.noticeId,
        });
        return { subjectId, outcome: 'notified' };
      } catch (err) {
        const refused = finalRefusal(err);
        if (refused) return { subjectId, outcome: 'failed', error: refused };
        throw err;
      }
    });

  const requestConsents = async (input: CampaignBatchInput, page: readonly string[], stop: () => boolean) => {
    const ctx = Context.current();
    const ids = new Map(page.map((s) => [s, campaignConsentId(input.campaignId, s)]));
    // Recorded consents were started by an earlier attempt, even if their workflow has since left retention.
    const recorded = new Set(
      (
        await d.db
          .select({ id: consents.id })
          .from(consents)
          .where(inArray(consents.id, [...ids.values()]))
      ).map((r) => r.id),
    );
    const terms = input.consent!;
    return settleInOrder(
      page,
      concurrencyFor(input.sendConcurrency),
      stop,
      async (subjectId): Promise<TargetOutcome> => {
        const consentId = ids.get(subjectId)!;
        const requested: TargetOutcome = { subjectId, outcome: 'consent-requested', consentId };
        if (recorded.has(consentId)) return requested;
        const args: ConsentInput = {
          consentId,
          subjectId,
          noticeId: input.noticeId,
          purpose: input.purpose,
          channel: 'email',
          ...terms,
          requestedBy: input.requestedBy,
          round: 1,
        };
        try {
          // The worker's own client: its namespace, payload codec and task queue.
          await ctx.client.workflow.start<typeof consent>('consent', {
            taskQueue: ctx.info.taskQueue,
            workflowId: consentWorkflowId(consentId),
            args: [args],
            workflowIdReusePolicy: 'REJECT_DUPLICATE',
          });
        } catch (err) {
          if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
        }
        return requested;
      },
    );
  };

  return {
    /** Records the campaign (idempotent), counts the subjects in scope, and audits its start. */
    beginCampaign: (input: BeginCampaignInput): Promise<BeginCampaignResult> =>
      reported(async () => {
        const notice = await getNotice(d.db, input.noticeId).catch(() => {
          throw ApplicationFailure.nonRetryable(`notice ${input.noticeId} was not found`, 'NoticeNotFound');
        });
        const total = await subjectsInScope(d.db, input.filter);
        const { workflowId, runId } = execution();
        return d.db.transaction(async (tx) => {
          await tx
            .insert(campaigns)
            .values({
              id: input.campaignId,
              noticeId: input.noticeId,
              purposeChanged: input.purposeChanged,
              jurisdiction: input.filter.jurisdiction ?? null,
              importId: input.filter.importId ?? null,
              ratePerSecond: input.ratePerSecond ?? null,
              batchSize: input.batchSize,
              consentTerms: input.consent ?? null,
              requestedBy: input.requestedBy,
              total,
            })
            .onConflictDoNothing();
          const [row] = await tx.select().from(campaigns).where(eq(campaigns.id, input.campaignId));
          await appendAudit(tx, {
            actor: input.requestedBy,
            action: 'campaign.started',
            targetType: 'campaign',
            targetId: input.campaignId,
            workflowId,
            runId,
            details: {
              noticeId: input.noticeId,
              purposeChanged: input.purposeChanged,
              filter: input.filter,
              ratePerSecond: input.ratePerSecond ?? null,
              batchSize: input.batchSize,
              total: row!.total,
            },
            idempotencyKey: `${campaignWorkflowId(input.campaignId)}:started`,
          });
          return { total: row!.total, purpose: notice.purpose };
        });
      }),

    /**
     * One batch: the next page of subjects after `after`, each sent the transfer notice through the outbox
     * (key campaign-{id}:notice:{subject}) or asked for consent (workflow consent-{uuid}, the UUID derived
     * from campaign and subject), with `sendConcurrency` in flight; then the batch is committed as one unit.
     * A batch an earlier attempt committed is returned as recorded. A retry after a crash sends nothing twice:
     * the outbox returns sent messages without sending, and a started consent workflow is not started again.
     * Heartbeats on a timer; on cancellation it stops launching, commits what ran (a prefix of the page), and
     * reports the cancellation.
     */
    runCampaignBatch: (input: CampaignBatchInput): Promise<CampaignBatchResult> =>
      reported(async () => {
        const ctx = Context.current();
        const done = await committedCampaignBatch(d.db, input.campaignId, input.after);
        if (done) return { ...done, done: done.subjects < input.batchSize };
        const page = await subjectPage(d.db, input.filter, input.after, input.batchSize);
        if (page.length === 0)
          return {
            counts: { targeted: 0, notified: 0, consentsRequested: 0, failed: 0 },
            end: input.after,
            subjects: 0,
            done: true,
          };

        const heartbeatMs = ctx.info.heartbeatTimeoutMs ?? 0;
        const beating = heartbeatMs > 0 ? setInterval(() => ctx.heartbeat(), Math.max(50, heartbeatMs / 4)) : undefined;
        const cancelled = () => ctx.cancellationSignal.aborted;
        let settled: PromiseSettledResult<TargetOutcome>[];
        try {
          settled = await (input.purposeChanged ? requestConsents : sendNotices)(input, page, cancelled);
        } finally {
          clearInterval(beating);
        }
        const retry = settled.find((s) => s.status === 'rejected');
        // Sent messages stay sent in the outbox: the retry skips them and sends only the rest.
        if (retry) throw retry.reason;
        const targets = settled.map((s) => (s as PromiseFulfilledResult<TargetOutcome>).value);
        const outcome = targets.length
          ? await commitCampaignBatch(d.db, input.campaignId, input.after, targets)
          : undefined;
        if (cancelled()) throw new CancelledFailure('the campaign was cancelled');
        return { ...outcome!, done: page.length < input.batchSize };
      }),

    /** Closes the campaign once: stores the report from the committed counters and audits it. */
    finishCampaign: (input: FinishCampaignInput): Promise<CampaignReport> =>
      reported(async () => {
        const { workflowId, runId } = execution();
        const finishedAt = d.clock();
        return d.db.transaction(async (tx) => {
          const [row] = await tx.select().from(campaigns).where(eq(campaigns.id, input.campaignId)).for('update');
          if (row?.report) return row.report as unknown as CampaignReport;
          // No row: beginning failed (say, the notice was missing). Close with that cause.
          const report: CampaignReport = {
            campaignId: input.campaignId,
            status: input.status,
            purposeChanged: row?.purposeChanged ?? false,
            total: row?.total ?? 0,
            targeted: row?.targeted ?? 0,
            notified: row?.notified ?? 0,
            consentsRequested: row?.consentsRequested ?? 0,
            failed: row?.failed ?? 0,
            batches: row?.batches ?? 0,
            ratePerSecond: row?.ratePerSecond ?? null,
            observedPerSecond: input.observedPerSecond,
            startedAt: (row?.startedAt ?? finishedAt).toISOString(),
            finishedAt: finishedAt.toISOString(),
            error: input.error ?? null,
          };
          if (row)
            await tx
              .update(campaigns)
              .set({
                status: input.status,
                report: report as unknown as Record<string, unknown>,
                error: input.error ?? null,
                finishedAt,
              })
              .where(eq(campaigns.id, input.campaignId));
          await appendAudit(tx, {
            actor: 'system',
            action: `campaign.${input.status}`,
            targetType: 'campaign',
            targetId: input.campaignId,
            workflowId,
            runId,
            details: { ...report },
            idempotencyKey: `${campaignWorkflowId(input.campaignId)}:finished`,
          });
          return report;
        });
      }),
  };
};
