import { randomUUID } from 'node:crypto';
import { z } from '@hono/zod-openapi';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { and, eq, isNotNull, sql } from 'drizzle-orm';
import { appendAudit } from '../../activities/audit';
import { getNotice } from '../../activities/notices';
import { campaigns, campaignTargets, consents } from '../../db/schema';
import {
  CAMPAIGN_CONFLICT_PREFIX,
  CAMPAIGN_STATUSES,
  CampaignFilter,
  CampaignRequestFields,
  checkConsentTerms,
  type CampaignInput,
  type CampaignProgress,
} from '../../domain/campaign';
import { campaignWorkflowId } from '../../domain/ids';
import type { Services } from '../../runtime/services';
import {
  campaignProgressQuery,
  cancelUpdate,
  pauseUpdate,
  resumeUpdate,
  type campaign as campaignWorkflow,
} from '../../workflows/campaign';
import { actorOf, defineRoute, endpoint, jsonResponse, v1Resource, type Principal } from '../auth';
import { ApiError, problemResponse } from '../errors';
import { IdParam } from '../params';
import { IdempotencyHeaders, requestHash, startProcess } from '../processes';

const duration = (example: string) =>
  ({ description: `Re-consent only, as in POST /v1/consents: ISO 8601 (${example}) or words ("30 seconds")` }) as const;
const NewCampaign = z
  .object({
    ...CampaignRequestFields.shape,
    filter: z
      .object({ ...CampaignFilter.shape })
      .strict()
      .optional()
      .openapi({ description: 'Only the subjects of this jurisdiction and/or import' }),
    respondWithin: CampaignRequestFields.shape.respondWithin.meta(duration('P14D')),
    remindEvery: CampaignRequestFields.shape.remindEvery.meta(duration('P3D')),
    validFor: CampaignRequestFields.shape.validFor.meta(duration('P365D')),
  })
  .strict()
  .superRefine(checkConsentTerms)
  .openapi('NewCampaign', {
    description:
      'A transfer-notice campaign; with purposeChanged, a re-consent campaign (respondWithin, remindEvery, ' +
      'maxReminders and validFor then required)',
  });

const Status = z.enum(CAMPAIGN_STATUSES);
const Instant = z.iso.datetime().nullable();
const CampaignStarted = z.object({ id: z.uuid(), workflowId: z.string() }).openapi('CampaignStarted');
const Totals = z
  .object({
    total: z.number().int().openapi({ description: 'Subjects in scope when the campaign began' }),
    targeted: z.number().int().openapi({ description: 'Subjects reached so far' }),
    notified: z.number().int().openapi({ description: 'Transfer notices sent' }),
    consentsRequested: z.number().int().openapi({ description: 'Consent workflows started (re-consent)' }),
    failed: z.number().int().openapi({ description: 'Subjects that could not be notified (no address, refused)' }),
    granted: z.number().int(),
    denied: z.number().int(),
    pending: z.number().int().openapi({ description: 'Consents requested and not yet answered' }),
    expired: z.number().int(),
    withdrawn: z.number().int(),
  })
  .openapi('CampaignTotals');
const Progress = z
  .object({
    campaignId: z.uuid(),
    status: Status,
    total: z.number().int(),
    counts: z.object({
      targeted: z.number().int(),
      notified: z.number().int(),
      consentsRequested: z.number().int(),
      failed: z.number().int(),
    }),
    batches: z.number().int(),
    ratePerSecond: z.number().nullable(),
    observedPerSecond: z.number(),
  })
  .openapi('CampaignProgress');
const Report = z
  .object({
    campaignId: z.uuid(),
    status: z.enum(['completed', 'cancelled', 'failed']),
    purposeChanged: z.boolean(),
    total: z.number().int(),
    targeted: z.number().int(),
    notified: z.number().int(),
    consentsRequested: z.number().int(),
    failed: z.number().int(),
    batches: z.number().int(),
    ratePerSecond: z.number().nullable(),
    observedPerSecond: z.number(),
    startedAt: z.iso.datetime(),
    finishedAt: z.iso.datetime(),
    error: z.string().nullable(),
  })
  .openapi('CampaignReport');
const Campaign = z
  .object({
    id: z.uuid(),
    status: Status,
    noticeId: z.uuid(),
    purposeChanged: z.boolean(),
    filter: z.object({ jurisdiction: z.string().optional(), importId: z.uuid().optional() }),
    batchSize: z.number().int(),
    rate: z.object({
      limit: z.number().nullable().openapi({ description: 'ratePerSecond as requested; null for no limit' }),
      observed: z.number().openapi({ description: 'Subjects per second while not paused' }),
    }),
    totals: Totals,
    batches: z.number().int(),
    startedAt: Instant,
    finishedAt: Instant,
    report: Report.nullable(),
  })
  .openapi('Campaign');

const tags = ['campaigns'];
const ended = problemResponse('The campaign has ended (problem code campaign-<status>)');

const start = defineRoute({
  roles: ['owner'],
  method: 'post',
  path: '/campaigns',
  tags,
  summary: 'Send the transfer notice to every subject in scope, or ask them for consent again (workflow campaign-{id})',
  request: {
    headers: IdempotencyHeaders,
    body: { required: true, content: { 'application/json': { schema: NewCampaign } } },
  },
  responses: {
    202: jsonResponse(CampaignStarted, 'The campaign was started'),
    200: jsonResponse(CampaignStarted, 'The same Idempotency-Key and request started it before'),
    404: problemResponse('No such notice'),
    409: problemResponse('Idempotency-Key reused with another request'),
  },
});

const getOne = defineRoute({
  roles: ['owner'],
  method: 'get',
  path: '/campaigns/{id}',
  tags,
  summary: 'A campaign: status, totals (targeted, notified, failed, consent answers) and rate',
  request: { params: IdParam },
  responses: { 200: jsonResponse(Campaign, 'The campaign'), 404: problemResponse('No such campaign') },
});

const controlRoute = <A extends 'pause' | 'resume' | 'cancel'>(action: A, summary: string, body: z.ZodType) =>
  defineRoute({
    roles: ['owner'],
    method: 'post',
    path: `/campaigns/{id}/${action}` as `/campaigns/{id}/${A}`,
    tags,
    summary,
    request: { params: IdParam },
    responses: { 200: jsonResponse(body, 'Done'), 404: problemResponse('No such campaign'), 409: ended },
  });

const pause = controlRoute(
  'pause',
  'Hold sending at the next batch boundary; answers once no batch is in flight',
  Progress,
);
const resume = controlRoute('resume', 'Continue a paused campaign', Progress);
const cancel = controlRoute('cancel', 'Stop at the next batch boundary; answers with the stored final report', Report);

const iso = (d: Date | null) => d?.toISOString() ?? null;

/** The campaign-<status> failure an update was refused with, wherever it sits in the cause chain. */
const conflictOf = (err: unknown): ApplicationFailure | undefined => {
  for (let e: unknown = err; e instanceof Error; e = (e as Error & { cause?: unknown }).cause)
    if (e instanceof ApplicationFailure && e.type?.startsWith(CAMPAIGN_CONFLICT_PREFIX)) return e;
  return undefined;
};

export const campaignRoutes = (services: Services) => {
  const { db } = services.database;
  const { temporal } = services;
  const row = async (id: string) => (await db.select().from(campaigns).where(eq(campaigns.id, id)))[0];
  const handle = (id: string) => temporal.workflow.getHandle(campaignWorkflowId(id));

  /**
   * Runs a control update and audits who asked (user, API key, run ID); a refusal, or a campaign whose
   * workflow has ended, is a 409 naming its status.
   */
  const control = async <R>(
    id: string,
    action: 'pause' | 'resume' | 'cancel',
    principal: Principal,
    run: (h: WorkflowHandle, updateId: string) => Promise<R>,
  ): Promise<R> => {
    const h = handle(id);
    const updateId = randomUUID();
    let result: R;
    try {
      result = await run(h, updateId);
    } catch (err) {
      const refused = conflictOf(err);
      if (refused) throw ApiError.conflict(refused.type!, refused.message);
      if (err instanceof WorkflowUpdateFailedError) throw err;
      const current = await row(id);
      if (!current && err instanceof WorkflowNotFoundError) throw ApiError.notFound(`campaign ${id}`);
      if (current && (err instanceof WorkflowNotFoundError || current.status !== 'running'))
        throw ApiError.conflict(
          `campaign-${current.status}`,
          `campaign ${id} is ${current.status}: it cannot be ${action === 'pause' ? 'paused' : `${action}d`}`,
        );
      throw err;
    }
    const runId = await h
      .describe()
      .then((d) => d.runId)
      .catch(() => null);
    await appendAudit(db, {
      ...actorOf(principal),
      action: `campaign.${action}-requested`,
      targetType: 'campaign',
      targetId: id,
      workflowId: h.workflowId,
      runId,
      idempotencyKey: `${h.workflowId}:${action}:${updateId}`,
    });
    return result;
  };

  /** Consent answers of the campaign's consents, by status. */
  const consentTotals = async (id: string) => {
    const rows = await db
      .select({ status: consents.status, n: sql<number>`count(*)::int` })
      .from(campaignTargets)
      .innerJoin(consents, eq(consents.id, campaignTargets.consentId))
      .where(and(eq(campaignTargets.campaignId, id), isNotNull(campaignTargets.consentId)))
      .groupBy(consents.status);
    return Object.fromEntries(rows.map((r) => [r.status, r.n])) as Partial<Record<string, number>>;
  };

  return v1Resource(
    endpoint(start, async (c) => {
      const body = c.req.valid('json');
      await getNotice(db, body.noticeId);
      const id = randomUUID();
      const input: CampaignInput = {
        campaignId: id,
        noticeId: body.noticeId,
        purposeChanged: body.purposeChanged,
        filter: body.filter ?? {},
        ...(body.ratePerSecond === undefined ? {} : { ratePerSecond: body.ratePerSecond }),
        batchSize: body.batchSize,
        ...(body.purposeChanged
          ? {
              consent: {
                respondWithinMs: body.respondWithin!,
                remindEveryMs: body.remindEvery!,
                maxReminders: body.maxReminders!,
                validForMs: body.validFor!,
              },
            }
          : {}),
        requestedBy: actorOf(c.var.principal).actor,
      };
      const started = await startProcess<typeof campaignWorkflow>(services, c.var.principal, {
        route: 'POST /v1/campaigns',
        idempotencyKey: c.req.valid('header')['idempotency-key'],
        requestHash: requestHash(body),
        workflowType: 'campaign',
        id,
        workflowId: campaignWorkflowId,
        targetType: 'campaign',
        args: [input],
      });
      return c.json({ id: started.id, workflowId: started.workflowId }, started.created ? 202 : 200);
    }),
    endpoint(getOne, async (c) => {
      const { id } = c.req.valid('param');
      const found = await row(id);
      const live: CampaignProgress | undefined =
        !found || found.status === 'running'
          ? await handle(id)
              .query(campaignProgressQuery)
              .catch(() => undefined)
          : undefined;
      if (!found) {
        // Started but not yet recorded: the workflow answers until its first activity has run.
        if (!live) throw ApiError.notFound(`campaign ${id}`);
        throw new ApiError(404, 'not-yet-recorded', 'Not found', `campaign ${id} is starting: retry shortly`);
      }
      const answers = await consentTotals(id);
      const answered = ['granted', 'denied', 'expired', 'withdrawn'].reduce((n, s) => n + (answers[s] ?? 0), 0);
      const report = (found.report as z.infer<typeof Report> | null) ?? null;
      return c.json(
        {
          id: found.id,
          status: found.status === 'running' ? (live?.status ?? 'running') : found.status,
          noticeId: found.noticeId,
          purposeChanged: found.purposeChanged,
          filter: {
            ...(found.jurisdiction ? { jurisdiction: found.jurisdiction } : {}),
            ...(found.importId ? { importId: found.importId } : {}),
          },
          batchSize: found.batchSize,
          rate: { limit: found.ratePerSecond, observed: report?.observedPerSecond ?? live?.observedPerSecond ?? 0 },
          totals: {
            total: found.total,
            targeted: found.targeted,
            notified: found.notified,
            consentsRequested: found.consentsRequested,
            failed: found.failed,
            granted: answers.granted ?? 0,
            denied: answers.denied ?? 0,
            pending: found.consentsRequested - answered,
            expired: answers.expired ?? 0,
            withdrawn: answers.withdrawn ?? 0,
          },
          batches: found.batches,
          startedAt: iso(found.startedAt),
          finishedAt: iso(found.finishedAt),
          report,
        },
        200,
      );
    }),
    endpoint(pause, async (c) => {
      const { id } = c.req.valid('param');
      return c.json(
        await control(id, 'pause', c.var.principal, (h, updateId) => h.executeUpdate(pauseUpdate, { updateId })),
        200,
      );
    }),
    endpoint(resume, async (c) => {
      const { id } = c.req.valid('param');
      return c.json(
        await control(id, 'resume', c.var.principal, (h, updateId) => h.executeUpdate(resumeUpdate, { updateId })),
        200,
      );
    }),
    endpoint(cancel, async (c) => {
      const { id } = c.req.valid('param');
      return c.json(
        await control(id, 'cancel', c.var.principal, (h, updateId) => h.executeUpdate(cancelUpdate, { updateId })),
        200,
      );
    }),
  );
};
