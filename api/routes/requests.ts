import { z } from '@hono/zod-openapi';
import { and, eq } from 'drizzle-orm';
import { appendAudit } from '../../activities/audit';
import type { SealedExportFile } from '../../activities/export-crypto';
import { requestLinkToken, requestLinkUrl } from '../../activities/request-links';
import { listRequests, requestStats } from '../../activities/request-records';
import { requestExports, subjects } from '../../db/schema';
import {
  AssignBody,
  ExtendBody,
  FulfilBody,
  NoteBody,
  PauseBody,
  REQUEST_STATUSES,
  REQUEST_TYPES,
  RefuseBody,
  RequestFiling,
  VerifyBody,
  type RequestActor,
} from '../../domain/request';
import type { Services } from '../../runtime/services';
import { actorOf, defineRoute, endpoint, jsonResponse, v1Resource, type Principal } from '../auth';
import { ApiError, problemResponse } from '../errors';
import { IdParam } from '../params';
import { IdempotencyHeaders } from '../processes';
import { requestActions } from '../request-updates';

const tags = ['requests'];
const Started = z.object({ id: z.uuid(), workflowId: z.string() }).openapi('RequestFiled');
const Detail = z.record(z.string(), z.unknown()).openapi('DataSubjectRequest', {
  description:
    'Type, status, clock (rule, source, due time, time left, extension, pauses, reminders), verification, exports (hash and recipient), objections, destruction and certificate, timeline',
});
const Summary = z.record(z.string(), z.unknown()).openapi('DataSubjectRequestSummary');
const Stats = z.record(z.string(), z.unknown()).openapi('DataSubjectRequestStats', {
  description: 'Counts by type and status, median and p95 time to close, on-time percentage, overdue open requests',
});
const Recorded = z
  .object({ status: z.enum(REQUEST_STATUSES), at: z.iso.datetime(), dueAt: z.iso.datetime(), timeLeftMs: z.number() })
  .openapi('RequestUpdated');
const Fulfilled = z
  .object({
    status: z.enum(REQUEST_STATUSES),
    at: z.iso.datetime(),
    outcome: z.string(),
    exportId: z.uuid().optional(),
    sha256: z.string().optional(),
    password: z
      .string()
      .optional()
      .openapi({ description: 'The one-time password of the export: shown once, never stored' }),
    destructionId: z.uuid().optional(),
    restrictedPurposes: z.array(z.string()).optional(),
  })
  .openapi('RequestFulfilled');
const ListQuery = z
  .object({
    status: z.enum(REQUEST_STATUSES).optional(),
    type: z.enum(REQUEST_TYPES).optional(),
    overdue: z
      .enum(['true', 'false'])
      .transform((v) => v === 'true')
      .optional(),
    limit: z.coerce.number().int().min(1).max(500).default(100),
  })
  .strict();
const StatsQuery = z.object({ since: z.iso.datetime({ offset: true }).optional() }).strict();

const illegal = problemResponse(
  'Not allowed in the request’s status (problem code request-<status>, request-already-extended …)',
);
const unprocessable = problemResponse('A required reason or value is missing (PIPL Art. 50: a refusal gives reasons)');
const work = <B extends z.ZodType>(path: string, summary: string, body: B) =>
  defineRoute({
    roles: ['owner'],
    method: 'post',
    path: `/requests/{id}/${path}`,
    tags,
    summary,
    request: { params: IdParam, body: { required: true, content: { 'application/json': { schema: body } } } },
    responses: {
      200: jsonResponse(Recorded, 'Recorded'),
      404: problemResponse('No such request'),
      409: illegal,
      422: unprocessable,
    },
  });

const file = defineRoute({
  roles: ['owner'],
  method: 'post',
  path: '/requests',
  tags,
  summary:
    'File a data-subject request (starts workflow request-{id}); its deadline comes from the jurisdiction and type (domain/request-clocks.ts)',
  request: {
    headers: IdempotencyHeaders,
    body: { required: true, content: { 'application/json': { schema: RequestFiling } } },
  },
  responses: {
    202: jsonResponse(Started, 'Filed'),
    200: jsonResponse(Started, 'The same Idempotency-Key and request filed it before'),
    409: problemResponse('Idempotency-Key reused with another request, or the subject is destroyed'),
  },
});
const list = defineRoute({
  roles: ['owner', 'auditor'],
  method: 'get',
  path: '/requests',
  tags,
  summary: 'Requests, newest first, by status, type and whether overdue',
  request: { query: ListQuery },
  responses: { 200: jsonResponse(z.object({ requests: z.array(Summary) }), 'Requests') },
});
const stats = defineRoute({
  roles: ['owner', 'auditor'],
  method: 'get',
  path: '/requests/stats',
  tags,
  summary: 'Counts by type and status, median and p95 time to close, on-time percentage',
  request: { query: StatsQuery },
  responses: { 200: jsonResponse(Stats, 'Figures') },
});
const getOne = defineRoute({
  roles: ['owner', 'auditor'],
  method: 'get',
  path: '/requests/{id}',
  tags,
  summary:
    'A request with its clock and time left, exports, objections, destruction certificate and timeline (read audited)',
  request: { params: IdParam },
  responses: { 200: jsonResponse(Detail, 'The request'), 404: problemResponse('No such request') },
});
const exportFile = defineRoute({
  roles: ['owner'],
  method: 'get',
  path: '/requests/{id}/export',
  tags,
  summary: 'The sealed export of a password delivery (opens only with the one-time password; download audited)',
  request: { params: IdParam },
  responses: {
    200: jsonResponse(z.record(z.string(), z.unknown()).openapi('SealedExport'), 'The sealed export'),
    404: problemResponse('No such request or no password export'),
  },
});
const verifyRoute = work('verify', 'Record how the requester’s identity was verified (method, reference)', VerifyBody);
const assignRoute = work('assign', 'Assign the request to a user (reminders go to them)', AssignBody);
const noteRoute = work('notes', 'Add a note to the timeline', NoteBody);
const extendRoute = work(
  'extend',
  'Extend the deadline (EU only, once, at most two months, within the first month, with a reason; the subject is told)',
  ExtendBody,
);
const pauseRoute = work('pause', 'Pause the clock while waiting for the subject (with the reason)', PauseBody);
const resumeRoute = defineRoute({
  roles: ['owner'],
  method: 'post',
  path: '/requests/{id}/resume',
  tags,
  summary: 'Resume the clock',
  request: { params: IdParam },
  responses: { 200: jsonResponse(Recorded, 'Recorded'), 404: problemResponse('No such request'), 409: illegal },
});
const refuseRoute = work(
  'refuse',
  'Refuse with a reason (PIPL Art. 50); the subject is told it and how to complain',
  RefuseBody,
);
const fulfilRoute = defineRoute({
  roles: ['owner'],
  method: 'post',
  path: '/requests/{id}/fulfil',
  tags,
  summary:
    'Fulfil: an export (access, portability), new values (correction), a destruction or a restriction (erasure), a restriction, an objection’s outcome, a complaint’s outcome and reply',
  request: { params: IdParam, body: { required: true, content: { 'application/json': { schema: FulfilBody } } } },
  responses: {
    200: jsonResponse(Fulfilled, 'Fulfilled'),
    404: problemResponse('No such request'),
    409: illegal,
    422: unprocessable,
  },
});

const formLink = defineRoute({
  roles: ['owner'],
  method: 'post',
  path: '/requests/form-links',
  tags,
  summary: 'A signed link to the subject’s request form (/requests/new?token=), for a notice or a message',
  request: {
    body: { required: true, content: { 'application/json': { schema: z.object({ subjectId: z.uuid() }).strict() } } },
  },
  responses: {
    200: jsonResponse(
      z.object({ url: z.string(), expiresAt: z.iso.datetime() }).openapi('RequestFormLink'),
      'The link',
    ),
    400: problemResponse('No such subject'),
  },
});

const iso = (ms: number) => new Date(ms).toISOString();

export const requestActor = (p: Principal): RequestActor => ({ ...actorOf(p), role: p.role, method: 'api' });

export const requestRoutes = (services: Services) => {
  const { db } = services.database;
  const { clock, keyring } = services;
  const actions = requestActions(services);
  const updates = actions.updates;
  const recorded = (r: {
    status: (typeof REQUEST_STATUSES)[number];
    at: number;
    dueAt: number;
    timeLeftMs: number;
  }) => ({
    ...r,
    at: iso(r.at),
    dueAt: iso(r.dueAt),
  });

  return v1Resource(
    endpoint(formLink, async (c) => {
      const subjectId = c.req.valid('json').subjectId.toLowerCase();
      const [subject] = await db.select({ id: subjects.id }).from(subjects).where(eq(subjects.id, subjectId));
      if (!subject) throw ApiError.badRequest('no such subject', [{ path: 'subjectId', message: 'no such subject' }]);
      const expiresAt = clock().getTime() + services.config.CUSTODIAN_REQUEST_LINK_TTL;
      const token = requestLinkToken(keyring, 'form', { id: subjectId, expiresAt });
      return c.json(
        { url: requestLinkUrl(services.config.CUSTODIAN_PUBLIC_URL, 'form', token), expiresAt: iso(expiresAt) },
        200,
      );
    }),
    endpoint(file, async (c) => {
      const started = await updates.file(c.req.valid('json'), {
        principal: c.var.principal,
        idempotencyKey: c.req.valid('header')['idempotency-key'],
      });
      return c.json({ id: started.id, workflowId: started.workflowId }, started.created ? 202 : 200);
    }),
    endpoint(list, async (c) => c.json({ requests: await listRequests(db, c.req.valid('query'), clock()) }, 200)),
    endpoint(stats, async (c) => {
      const { since } = c.req.valid('query');
      return c.json(await requestStats(db, clock(), since ? new Date(since) : undefined), 200);
    }),
    endpoint(getOne, async (c) => c.json(await actions.view(c.var.principal, c.req.valid('param').id), 200)),
    endpoint(exportFile, async (c) => {
      const { id } = c.req.valid('param');
      const [row] = await db
        .select()
        .from(requestExports)
        .where(and(eq(requestExports.requestId, id), eq(requestExports.delivery, 'password')));
      if (!row?.sealed || !row.wrappedKey || row.wrappedKey[0] !== 0x50)
        throw ApiError.notFound(`a password export of request ${id}`);
      await appendAudit(db, {
        ...actorOf(c.var.principal),
        action: 'request.export-downloaded',
        targetType: 'request',
        targetId: id,
        details: { exportId: row.id, sha256: row.sha256 },
        idempotencyKey: `request-export-download:${crypto.randomUUID()}`,
      });
      const sealed: SealedExportFile = {
        format: 'custodian-sealed-export/v1',
        exportId: row.id,
        wrappedKey: row.wrappedKey.toString('base64'),
        sealed: row.sealed.toString('base64'),
      };
      return c.json(sealed, 200);
    }),
    endpoint(verifyRoute, async (c) => {
      const r = await actions.verify(c.req.valid('param').id, requestActor(c.var.principal), c.req.valid('json'));
      return c.json(recorded(r), 200);
    }),
    endpoint(assignRoute, async (c) => {
      const r = await actions.assign(c.req.valid('param').id, requestActor(c.var.principal), c.req.valid('json'));
      return c.json(recorded(r), 200);
    }),
    endpoint(noteRoute, async (c) => {
      const r = await actions.note(c.req.valid('param').id, requestActor(c.var.principal), c.req.valid('json'));
      return c.json(recorded(r), 200);
    }),
    endpoint(extendRoute, async (c) => {
      const r = await actions.extend(c.req.valid('param').id, requestActor(c.var.principal), c.req.valid('json'));
      return c.json(recorded(r), 200);
    }),
    endpoint(pauseRoute, async (c) => {
      const r = await actions.pause(c.req.valid('param').id, requestActor(c.var.principal), c.req.valid('json'));
      return c.json(recorded(r), 200);
    }),
    endpoint(resumeRoute, async (c) => {
      const r = await actions.resume(c.req.valid('param').id, requestActor(c.var.principal));
      return c.json(recorded(r), 200);
    }),
    endpoint(refuseRoute, async (c) => {
      const r = await actions.refuse(c.req.valid('param').id, requestActor(c.var.principal), c.req.valid('json'));
      return c.json(recorded(r), 200);
    }),
    endpoint(fulfilRoute, async (c) => {
      const r = await actions.fulfil(c.req.valid('param').id, requestActor(c.var.principal), c.req.valid('json'));
      return c.json({ ...r, at: iso(r.at) }, 200);
    }),
  );
};
