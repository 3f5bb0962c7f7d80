import { z } from '@hono/zod-openapi';
import {
  completeObligation,
  completionsOf,
  createObligation,
  findObligation,
  listObligations,
  updateObligation,
  type Obligation,
  type ObligationCompletionRow,
} from '../../activities/obligations';
import { DomainError } from '../../domain/errors';
import {
  ObligationCompletion,
  ObligationPatch,
  ObligationRequest,
  obligationStatus,
  obligationSummary,
} from '../../domain/obligations';
import type { Services } from '../../runtime/services';
import { actorOf, defineRoute, endpoint, jsonResponse, v1Resource } from '../auth';
import { ApiError, problemResponse } from '../errors';
import { IdParam } from '../params';

const tags = ['obligations'];

const Completion = z
  .object({
    id: z.uuid(),
    dueAt: z.iso.datetime(),
    completedAt: z.iso.datetime(),
    completedBy: z.string(),
    evidenceNote: z.string().nullable(),
    evidenceSha256: z.string().nullable(),
    nextDueAt: z.iso.datetime(),
  })
  .openapi('ObligationCompletion');

const ObligationView = z
  .object({
    id: z.uuid(),
    key: z.string(),
    title: z.string(),
    source: z.string().openapi({ description: 'The rule it comes from (../shared/REGULATIONS.md)' }),
    ownerId: z.uuid().nullable().openapi({ description: 'Null: every owner is reminded' }),
    recurrenceMonths: z.number().int(),
    nextDueAt: z.iso.datetime(),
    remindBeforeMs: z.number().int(),
    status: z.enum(['scheduled', 'due-soon', 'overdue']),
    lastCompletedAt: z.iso.datetime().nullable(),
    createdBy: z.string(),
  })
  .openapi('Obligation');

const view = (o: Obligation, now: Date) => ({
  ...obligationSummary(o),
  nextDueAt: o.nextDueAt.toISOString(),
  remindBeforeMs: o.remindBeforeMs,
  status: obligationStatus(o, now),
  lastCompletedAt: o.lastCompletedAt?.toISOString() ?? null,
  createdBy: o.createdBy,
});

const completionView = (c: ObligationCompletionRow) => ({
  id: c.id,
  dueAt: c.dueAt.toISOString(),
  completedAt: c.completedAt.toISOString(),
  completedBy: c.completedBy,
  evidenceNote: c.evidenceNote,
  evidenceSha256: c.evidenceSha256,
  nextDueAt: c.nextDueAt.toISOString(),
});

const list = defineRoute({
  roles: ['owner', 'auditor'],
  method: 'get',
  path: '/obligations',
  tags,
  summary: 'The compliance calendar: every obligation with its source, owner, next due date and status',
  responses: { 200: jsonResponse(z.object({ items: z.array(ObligationView) }), 'By next due date') },
});

const getOne = defineRoute({
  roles: ['owner', 'auditor'],
  method: 'get',
  path: '/obligations/{id}',
  tags,
  summary: 'One obligation with its recorded completions (evidence)',
  request: { params: IdParam },
  responses: {
    200: jsonResponse(ObligationView.extend({ completions: z.array(Completion) }), 'The obligation'),
    404: problemResponse('No such obligation'),
  },
});

const create = defineRoute({
  roles: ['owner'],
  method: 'post',
  path: '/obligations',
  tags,
  summary: 'Add an obligation to the calendar',
  request: { body: { required: true, content: { 'application/json': { schema: ObligationRequest } } } },
  responses: {
    201: jsonResponse(ObligationView, 'The obligation'),
    409: problemResponse('An obligation with this key exists (obligation-exists)'),
  },
});

const edit = defineRoute({
  roles: ['owner'],
  method: 'patch',
  path: '/obligations/{id}',
  tags,
  summary: 'Name or clear the owner, move the next due date, change the recurrence or the reminder lead (audited)',
  request: {
    params: IdParam,
    body: { required: true, content: { 'application/json': { schema: ObligationPatch } } },
  },
  responses: { 200: jsonResponse(ObligationView, 'The obligation'), 404: problemResponse('No such obligation') },
});

const complete = defineRoute({
  roles: ['owner'],
  method: 'post',
  path: '/obligations/{id}/complete',
  tags,
  summary:
    'Record the evidence (a note and/or a file’s SHA-256) that the current due date was met; moves the next due date',
  request: {
    params: IdParam,
    body: { required: true, content: { 'application/json': { schema: ObligationCompletion } } },
  },
  responses: {
    200: jsonResponse(z.object({ obligation: ObligationView, completion: Completion }), 'Recorded'),
    404: problemResponse('No such obligation'),
  },
});

export const obligationRoutes = ({ database: { db }, clock }: Services) =>
  v1Resource(
    endpoint(list, async (c) => {
      const now = clock();
      return c.json({ items: (await listObligations(db, now)).map((o) => view(o, now)) }, 200);
    }),
    endpoint(getOne, async (c) => {
      const { id } = c.req.valid('param');
      const obligation = await findObligation(db, id);
      if (!obligation) throw ApiError.notFound(`obligation ${id}`);
      const completions = await completionsOf(db, id);
      return c.json({ ...view(obligation, clock()), completions: completions.map(completionView) }, 200);
    }),
    endpoint(create, async (c) => {
      try {
        const obligation = await createObligation(db, c.req.valid('json'), actorOf(c.var.principal), clock());
        return c.json(view(obligation, clock()), 201);
      } catch (err) {
        if (err instanceof DomainError && err.kind === 'invalid')
          throw ApiError.badRequest(err.message, [{ path: err.code, message: err.message }]);
        throw err;
      }
    }),
    endpoint(edit, async (c) => {
      const { id } = c.req.valid('param');
      try {
        const obligation = await updateObligation(db, id, c.req.valid('json'), actorOf(c.var.principal));
        return c.json(view(obligation, clock()), 200);
      } catch (err) {
        if (err instanceof DomainError && err.kind === 'invalid')
          throw ApiError.badRequest(err.message, [{ path: err.code, message: err.message }]);
        throw err;
      }
    }),
    endpoint(complete, async (c) => {
      const { id } = c.req.valid('param');
      const now = clock();
      const done = await completeObligation(db, id, c.req.valid('json'), actorOf(c.var.principal), now);
      return c.json({ obligation: view(done.obligation, now), completion: completionView(done.completion) }, 200);
    }),
  );
