import { randomUUID } from 'node:crypto';
import { z } from '@hono/zod-openapi';
import { asc, desc, eq } from 'drizzle-orm';
import { getNotice } from '../../activities/notices';
import { consentEvents, consents, purposeRestrictions, subjects } from '../../db/schema';
import {
  CONSENT_STATUSES,
  ConsentRequest,
  SENSITIVE_DECISIONS,
  sensitiveCategories,
  type ConsentActor,
  type ConsentInput,
} from '../../domain/consent';
import { ConsentReceipt, SignedReceipt } from '../../domain/consent-receipt';
import { consentWorkflowId } from '../../domain/ids';
import type { Services } from '../../runtime/services';
import { consentStateQuery, type consent as consentWorkflow } from '../../workflows/consent';
import { actorOf, defineRoute, endpoint, jsonResponse, v1Resource, type Principal } from '../auth';
import { consentUpdates } from '../consent-updates';
import { ApiError, problemResponse } from '../errors';
import { IdParam } from '../params';
import { IdempotencyHeaders, requestHash, startProcess } from '../processes';

const NewConsent = z
  .object({
    ...ConsentRequest.shape,
    respondWithin: ConsentRequest.shape.respondWithin.meta({ description: 'ISO 8601 (P14D) or words ("30 seconds")' }),
    remindEvery: ConsentRequest.shape.remindEvery.meta({ description: 'ISO 8601 (P3D) or words ("30 seconds")' }),
    validFor: ConsentRequest.shape.validFor.meta({ description: 'ISO 8601 (P365D) or words ("30 seconds")' }),
  })
  .strict()
  .openapi('NewConsent');

const Status = z.enum(CONSENT_STATUSES);
const SensitiveDecision = z
  .enum(SENSITIVE_DECISIONS)
  .nullable()
  .openapi({ description: 'The separate answer for sensitive personal information (PIPL Art. 29); null if not asked' });
const Signed = z.object({ ...SignedReceipt.shape, receipt: ConsentReceipt }).openapi('SignedConsentReceiptIssued');
const Instant = z.iso.datetime().nullable();

const ConsentStarted = z.object({ id: z.uuid(), workflowId: z.string() }).openapi('ConsentStarted');
const Consent = z
  .object({
    id: z.uuid(),
    subjectId: z.uuid(),
    noticeId: z.uuid(),
    purpose: z.string(),
    channel: z.string(),
    status: Status,
    round: z.number().int().openapi({ description: '1, then one more per renewal' }),
    requestedAt: Instant,
    respondBy: Instant,
    decidedAt: Instant,
    validUntil: Instant,
    withdrawnAt: Instant,
    sensitiveCategories: z
      .array(z.string())
      .openapi({ description: 'Sensitive catalog fields the purpose touches: their consent is asked separately' }),
    sensitiveDecision: SensitiveDecision,
    history: z.array(z.object({ round: z.number().int(), type: z.string(), at: z.iso.datetime(), actor: z.string() })),
    receipt: Signed.nullable(),
  })
  .openapi('Consent');
const Decision = z
  .object({
    decision: z.enum(['grant', 'deny']),
    sensitive: z
      .boolean()
      .optional()
      .openapi({
        description:
          'The separate answer for sensitive personal information (PIPL Art. 29): required with a grant when the ' +
          'notice’s purpose touches sensitive fields, refused (400) when it touches none; a deny refuses it',
      }),
  })
  .strict()
  .openapi('ConsentDecision');
const DecisionResult = z
  .object({
    status: z.enum(['granted', 'denied']),
    sensitive: z.enum(SENSITIVE_DECISIONS).optional(),
    receipt: Signed,
  })
  .openapi('ConsentDecided');
const Withdrawn = z
  .object({ status: z.literal('withdrawn'), withdrawnAt: z.iso.datetime() })
  .openapi('ConsentWithdrawn');
const SubjectConsents = z
  .object({
    subjectId: z.uuid(),
    purposes: z.array(
      z.object({
        purpose: z.string(),
        consentId: z.uuid(),
        status: Status,
        round: z.number().int(),
        validUntil: Instant,
        sensitiveDecision: SensitiveDecision,
        restricted: z
          .boolean()
          .openapi({ description: 'Processing for this purpose is restricted (consent withdrawn)' }),
      }),
    ),
  })
  .openapi('SubjectConsents');

const tags = ['consents'];
const illegal = problemResponse('The consent is in a state that does not allow this (problem code consent-<state>)');

const request = defineRoute({
  roles: ['owner'],
  method: 'post',
  path: '/consents',
  tags,
  summary: 'Ask a subject for consent to a notice’s purpose (starts workflow consent-{id})',
  request: {
    headers: IdempotencyHeaders,
    body: { required: true, content: { 'application/json': { schema: NewConsent } } },
  },
  responses: {
    202: jsonResponse(ConsentStarted, 'The request was started'),
    200: jsonResponse(ConsentStarted, 'The same Idempotency-Key and request started it before'),
    404: problemResponse('No such subject or notice'),
    409: problemResponse('Idempotency-Key reused with another request'),
  },
});

const getOne = defineRoute({
  roles: ['owner', 'auditor'],
  method: 'get',
  path: '/consents/{id}',
  tags,
  summary: 'A consent: status, history and receipt',
  request: { params: IdParam },
  responses: { 200: jsonResponse(Consent, 'The consent'), 404: problemResponse('No such consent') },
});

const getReceipt = defineRoute({
  roles: ['owner', 'auditor'],
  method: 'get',
  path: '/consents/{id}/receipt',
  tags,
  summary: 'The signed receipt of the latest decision, with the signing key ID',
  request: { params: IdParam },
  responses: {
    200: jsonResponse(Signed, 'The signed receipt'),
    404: problemResponse('No such consent or no decision'),
  },
});

const decide = defineRoute({
  roles: ['owner'],
  method: 'post',
  path: '/consents/{id}/decisions',
  tags,
  summary: 'Record the subject’s answer on their behalf; returns the signed receipt',
  request: { params: IdParam, body: { required: true, content: { 'application/json': { schema: Decision } } } },
  responses: {
    200: jsonResponse(DecisionResult, 'Recorded, with its receipt'),
    400: problemResponse('A `sensitive` answer missing, or given where the purpose touches no sensitive data'),
    404: problemResponse('No such consent'),
    409: illegal,
  },
});

const withdrawRoute = defineRoute({
  roles: ['owner'],
  method: 'post',
  path: '/consents/{id}/withdraw',
  tags,
  summary: 'Withdraw a granted consent on the subject’s behalf; the purpose is restricted for the subject',
  request: { params: IdParam },
  responses: { 200: jsonResponse(Withdrawn, 'Withdrawn'), 404: problemResponse('No such consent'), 409: illegal },
});

const perSubject = defineRoute({
  roles: ['owner', 'auditor'],
  method: 'get',
  path: '/subjects/{id}/consents',
  tags,
  summary: 'A subject’s current consent per purpose',
  request: { params: IdParam },
  responses: {
    200: jsonResponse(SubjectConsents, 'The latest consent per purpose'),
    404: problemResponse('No such subject'),
  },
});

const iso = (d: Date | null) => d?.toISOString() ?? null;

export const consentRoutes = (services: Services) => {
  const { db } = services.database;
  const { temporal, catalog } = services;
  const updates = consentUpdates(services);
  const { row } = updates;
  const by = (principal: Principal): ConsentActor => ({ ...actorOf(principal), method: 'on-behalf' });

  return v1Resource(
    endpoint(request, async (c) => {
      const body = c.req.valid('json');
      const notice = await getNotice(db, body.noticeId);
      const [subject] = await db.select({ id: subjects.id }).from(subjects).where(eq(subjects.id, body.subjectId));
      if (!subject) throw ApiError.notFound(`subject ${body.subjectId}`);
      const id = randomUUID();
      const input: ConsentInput = {
        consentId: id,
        subjectId: body.subjectId,
        noticeId: body.noticeId,
        purpose: notice.purpose,
        channel: body.channel,
        respondWithinMs: body.respondWithin,
        remindEveryMs: body.remindEvery,
        maxReminders: body.maxReminders,
        validForMs: body.validFor,
        requestedBy: actorOf(c.var.principal).actor,
        round: 1,
      };
      const started = await startProcess<typeof consentWorkflow>(services, c.var.principal, {
        route: 'POST /v1/consents',
        idempotencyKey: c.req.valid('header')['idempotency-key'],
        requestHash: requestHash(body),
        workflowType: 'consent',
        id,
        workflowId: consentWorkflowId,
        targetType: 'consent',
        args: [input],
      });
      return c.json({ id: started.id, workflowId: started.workflowId }, started.created ? 202 : 200);
    }),
    endpoint(getOne, async (c) => {
      const { id } = c.req.valid('param');
      const found = await row(id);
      if (!found) {
        // Started but not yet recorded: the workflow answers until its first activity has run.
        const state = await temporal.workflow
          .getHandle(consentWorkflowId(id))
          .query(consentStateQuery)
          .catch(() => undefined);
        if (!state) throw ApiError.notFound(`consent ${id}`);
        throw new ApiError(404, 'not-yet-recorded', 'Not found', `consent ${id} is starting: retry shortly`);
      }
      const history = await db
        .select()
        .from(consentEvents)
        .where(eq(consentEvents.consentId, id))
        .orderBy(asc(consentEvents.at), asc(consentEvents.round));
      return c.json(
        {
          id: found.id,
          subjectId: found.subjectId,
          noticeId: found.noticeId,
          purpose: found.purpose,
          channel: found.channel,
          status: found.status,
          round: found.round,
          requestedAt: iso(found.requestedAt),
          respondBy: iso(found.respondBy),
          decidedAt: iso(found.decidedAt),
          validUntil: iso(found.validUntil),
          withdrawnAt: iso(found.withdrawnAt),
          sensitiveCategories: sensitiveCategories(catalog, found.purpose),
          sensitiveDecision: found.sensitiveDecision,
          history: history.map((e) => ({ round: e.round, type: e.type, at: e.at.toISOString(), actor: e.actor })),
          receipt: (found.receipt as z.infer<typeof Signed> | null) ?? null,
        },
        200,
      );
    }),
    endpoint(getReceipt, async (c) => {
      const { id } = c.req.valid('param');
      const found = await row(id);
      if (!found?.receipt) throw ApiError.notFound(`a receipt of consent ${id}`);
      return c.json(found.receipt as z.infer<typeof Signed>, 200);
    }),
    endpoint(decide, async (c) => {
      const { id } = c.req.valid('param');
      const { decision, sensitive } = c.req.valid('json');
      const result = await updates.decide(id, decision, by(c.var.principal), sensitive);
      return c.json(result as z.infer<typeof DecisionResult>, 200);
    }),
    endpoint(withdrawRoute, async (c) => {
      const { id } = c.req.valid('param');
      return c.json(await updates.withdraw(id, by(c.var.principal)), 200);
    }),
    endpoint(perSubject, async (c) => {
      const { id } = c.req.valid('param');
      const [subject] = await db.select({ id: subjects.id }).from(subjects).where(eq(subjects.id, id));
      if (!subject) throw ApiError.notFound(`subject ${id}`);
      const rows = await db
        .selectDistinctOn([consents.purpose])
        .from(consents)
        .where(eq(consents.subjectId, id))
        .orderBy(asc(consents.purpose), desc(consents.createdAt));
      const restricted = new Set(
        (
          await db
            .select({ purpose: purposeRestrictions.purpose })
            .from(purposeRestrictions)
            .where(eq(purposeRestrictions.subjectId, id))
        ).map((r) => r.purpose),
      );
      return c.json(
        {
          subjectId: id,
          purposes: rows.map((r) => ({
            purpose: r.purpose,
            consentId: r.id,
            status: r.status,
            round: r.round,
            validUntil: iso(r.validUntil),
            sensitiveDecision: r.sensitiveDecision,
            restricted: restricted.has(r.purpose),
          })),
        },
        200,
      );
    }),
  );
};
