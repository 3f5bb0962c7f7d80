import { randomUUID } from 'node:crypto';
import { z } from '@hono/zod-openapi';
import { WorkflowNotFoundError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { asc, desc, eq } from 'drizzle-orm';
import { accessGrants, accessReviewItems, accessReviews } from '../../db/schema';
import {
  ACCESS_DECISIONS,
  ACCESS_REVIEW_DEFAULTS,
  ALREADY_DECIDED,
  AccessDecisionRequest,
  AccessReviewRequest,
  NOT_APPROVER,
  NOT_IN_REVIEW,
  REVIEW_CLOSED,
  SELF_CERTIFICATION,
} from '../../domain/access-review';
import { accessReviewWorkflowId } from '../../domain/ids';
import type { Services } from '../../runtime/services';
import { accessDecisionUpdate, type accessReview } from '../../workflows/access-review';
import { actorOf, defineRoute, endpoint, jsonResponse, v1Resource } from '../auth';
import { ApiError, problemResponse } from '../errors';
import { IdParam } from '../params';
import { IdempotencyHeaders, requestHash, startProcess } from '../processes';

const tags = ['access'];

const Item = z
  .object({
    grantId: z.uuid(),
    granteeId: z.uuid(),
    reviewerId: z.uuid(),
    capability: z.string(),
    classification: z.string().nullable(),
    purpose: z.string().nullable(),
    expiresAt: z.iso.datetime(),
    decision: z.enum(ACCESS_DECISIONS).nullable(),
    decidedBy: z.string().nullable(),
    decidedAt: z.iso.datetime().nullable(),
    outcome: z.string().nullable().openapi({
      description: 'kept, revoked, not-certified, or ended (expired or revoked elsewhere); null while open',
    }),
    revokedAt: z.iso.datetime().nullable(),
    revokeReason: z.string().nullable(),
  })
  .openapi('AccessReviewItem');

const Review = z
  .object({
    id: z.uuid(),
    workflowId: z.string(),
    period: z.string(),
    status: z.enum(['open', 'closed']),
    requestedBy: z.string(),
    startedAt: z.iso.datetime(),
    deadlineAt: z.iso.datetime(),
    closedAt: z.iso.datetime().nullable(),
    progress: z.object({ total: z.number(), decided: z.number(), pending: z.number() }),
    summary: z
      .record(z.string(), z.number())
      .nullable()
      .openapi({ description: 'At the close: total, kept, revoked, notCertified, ended' }),
    items: z.array(Item).openapi({ description: 'Who kept what, what was revoked and why' }),
  })
  .openapi('AccessReview');

const start = defineRoute({
  roles: ['admin'],
  method: 'post',
  path: '/access-reviews',
  tags,
  summary: 'Start an access review now (the quarterly schedule starts the others)',
  request: {
    headers: IdempotencyHeaders,
    body: { required: true, content: { 'application/json': { schema: AccessReviewRequest } } },
  },
  responses: {
    200: jsonResponse(z.object({ id: z.uuid(), workflowId: z.string() }), 'Started earlier with this Idempotency-Key'),
    202: jsonResponse(z.object({ id: z.uuid(), workflowId: z.string() }), 'Started'),
    409: problemResponse('Idempotency-Key reused with another request'),
  },
});

const ReviewSummary = z
  .object({
    id: z.uuid(),
    period: z.string(),
    status: z.enum(['open', 'closed']),
    requestedBy: z.string(),
    startedAt: z.iso.datetime(),
    deadlineAt: z.iso.datetime(),
    closedAt: z.iso.datetime().nullable(),
    summary: z.record(z.string(), z.number()).nullable(),
  })
  .openapi('AccessReviewSummary');

const list = defineRoute({
  roles: ['admin', 'approver', 'auditor'],
  method: 'get',
  path: '/access-reviews',
  tags,
  summary: 'Access reviews, newest first (the scheduled ones included)',
  request: { query: z.object({ limit: z.coerce.number().int().min(1).max(200).default(50) }).strict() },
  responses: { 200: jsonResponse(z.object({ items: z.array(ReviewSummary) }), 'The reviews') },
});

const get = defineRoute({
  roles: ['admin', 'approver', 'auditor'],
  method: 'get',
  path: '/access-reviews/{id}',
  tags,
  summary: 'Progress of an access review and, once closed, its evidence',
  request: { params: IdParam },
  responses: { 200: jsonResponse(Review, 'The review'), 404: problemResponse('No such access review') },
});

const decide = defineRoute({
  roles: ['approver'],
  method: 'post',
  path: '/access-reviews/{id}/decisions',
  tags,
  summary: 'Keep or revoke one grant in the review (a revoke takes effect at once); never your own grant',
  request: {
    params: IdParam,
    body: { required: true, content: { 'application/json': { schema: AccessDecisionRequest } } },
  },
  responses: {
    200: jsonResponse(
      z.object({ grantId: z.uuid(), decision: z.enum(ACCESS_DECISIONS), decidedAt: z.iso.datetime() }),
      'Recorded',
    ),
    403: problemResponse('Requires the role approver; or the grant is your own (self-certification)'),
    404: problemResponse('No such access review, or the grant is not in it'),
    409: problemResponse('The grant was decided already (already-decided), or the review is closed'),
  },
});

const refusalOf = (err: unknown): ApplicationFailure | undefined => {
  for (let e: unknown = err; e instanceof Error; e = (e as Error & { cause?: unknown }).cause)
    if (e instanceof ApplicationFailure && e.type) return e;
  return undefined;
};

export const accessReviewRoutes = (services: Services) => {
  const { db } = services.database;
  const { temporal } = services;

  return v1Resource(
    endpoint(start, async (c) => {
      const body = c.req.valid('json');
      const reviewId = randomUUID();
      const started = await startProcess<typeof accessReview>(services, c.var.principal, {
        route: 'POST /v1/access-reviews',
        idempotencyKey: c.req.valid('header')['idempotency-key'],
        requestHash: requestHash(body),
        workflowType: 'accessReview',
        id: reviewId,
        workflowId: accessReviewWorkflowId,
        targetType: 'access-review',
        args: [
          {
            reviewId,
            requestedBy: actorOf(c.var.principal).actor,
            deadlineMs: body.deadline ?? ACCESS_REVIEW_DEFAULTS.deadlineMs,
            reminderEveryMs: body.reminderEvery ?? ACCESS_REVIEW_DEFAULTS.reminderEveryMs,
          },
        ],
      });
      return c.json({ id: started.id, workflowId: started.workflowId }, started.created ? 202 : 200);
    }),

    endpoint(list, async (c) => {
      const rows = await db
        .select()
        .from(accessReviews)
        .orderBy(desc(accessReviews.startedAt), asc(accessReviews.id))
        .limit(c.req.valid('query').limit);
      return c.json(
        {
          items: rows.map((r) => ({
            id: r.id,
            period: r.period,
            status: r.status,
            requestedBy: r.requestedBy,
            startedAt: r.startedAt.toISOString(),
            deadlineAt: r.deadlineAt.toISOString(),
            closedAt: r.closedAt?.toISOString() ?? null,
            summary: r.summary ?? null,
          })),
        },
        200,
      );
    }),

    endpoint(get, async (c) => {
      const { id } = c.req.valid('param');
      const [review] = await db.select().from(accessReviews).where(eq(accessReviews.id, id));
      if (!review) throw ApiError.notFound(`access review ${id}`);
      const rows = await db
        .select({ item: accessReviewItems, grant: accessGrants })
        .from(accessReviewItems)
        .innerJoin(accessGrants, eq(accessGrants.id, accessReviewItems.grantId))
        .where(eq(accessReviewItems.reviewId, id))
        .orderBy(asc(accessReviewItems.reviewerId), asc(accessReviewItems.grantId));
      const decided = rows.filter((r) => r.item.decision !== null).length;
      return c.json(
        {
          id: review.id,
          workflowId: accessReviewWorkflowId(review.id),
          period: review.period,
          status: review.status,
          requestedBy: review.requestedBy,
          startedAt: review.startedAt.toISOString(),
          deadlineAt: review.deadlineAt.toISOString(),
          closedAt: review.closedAt?.toISOString() ?? null,
          progress: { total: rows.length, decided, pending: rows.length - decided },
          summary: review.summary ?? null,
          items: rows.map(({ item, grant }) => ({
            grantId: item.grantId,
            granteeId: item.granteeId,
            reviewerId: item.reviewerId,
            capability: grant.capability,
            classification: grant.classification,
            purpose: grant.purpose,
            expiresAt: grant.expiresAt.toISOString(),
            decision: item.decision,
            decidedBy: item.decidedBy,
            decidedAt: item.decidedAt?.toISOString() ?? null,
            outcome: item.outcome,
            revokedAt: grant.revokedAt?.toISOString() ?? null,
            revokeReason: grant.revokeReason,
          })),
        },
        200,
      );
    }),

    endpoint(decide, async (c) => {
      const { id } = c.req.valid('param');
      const request = c.req.valid('json');
      const [review] = await db.select().from(accessReviews).where(eq(accessReviews.id, id));
      if (!review) throw ApiError.notFound(`access review ${id}`);
      const { principal } = c.var;
      try {
        const decided = await temporal.workflow
          .getHandle(accessReviewWorkflowId(id))
          .executeUpdate(accessDecisionUpdate, {
            args: [{ userId: principal.userId, role: principal.role, apiKeyId: principal.keyId }, request],
          });
        return c.json(decided, 200);
      } catch (err) {
        if (err instanceof WorkflowNotFoundError)
          throw ApiError.conflict('access-review-closed', `access review ${id} is closed`);
        const refused = refusalOf(err);
        switch (refused?.type) {
          case SELF_CERTIFICATION:
            throw new ApiError(403, 'self-certification', 'Forbidden', refused.message);
          case NOT_APPROVER:
            throw ApiError.forbidden(refused.message);
          case NOT_IN_REVIEW:
            throw ApiError.notFound(`grant ${request.grantId} in access review ${id}`);
          case ALREADY_DECIDED:
            throw ApiError.conflict('already-decided', refused.message);
          case REVIEW_CLOSED:
            throw ApiError.conflict('access-review-closed', refused.message);
          default:
            throw err;
        }
      }
    }),
  );
};
