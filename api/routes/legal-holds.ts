import { z } from '@hono/zod-openapi';
import { getLegalHold, placeLegalHold, releaseLegalHold, type LegalHold } from '../../activities/legal-holds';
import { DomainError } from '../../domain/errors';
import { LegalHoldRelease, LegalHoldRequest } from '../../domain/legal-hold';
import type { Services } from '../../runtime/services';
import { actorOf, defineRoute, endpoint, jsonResponse, v1Resource } from '../auth';
import { ApiError, problemResponse } from '../errors';
import { IdParam } from '../params';

const tags = ['legal-holds'];
const Hold = z
  .object({
    id: z.uuid(),
    status: z.enum(['active', 'released']),
    reason: z.string(),
    filter: z.record(z.string(), z.unknown()).nullable(),
    subjects: z.number().int(),
    createdBy: z.string(),
    createdAt: z.iso.datetime(),
    releasedBy: z.string().nullable(),
    releasedAt: z.iso.datetime().nullable(),
    releaseReason: z.string().nullable(),
  })
  .openapi('LegalHold');
const view = (h: LegalHold) => ({
  ...h,
  createdAt: h.createdAt.toISOString(),
  releasedAt: h.releasedAt?.toISOString() ?? null,
});

const place = defineRoute({
  roles: ['owner'],
  method: 'post',
  path: '/legal-holds',
  tags,
  summary: 'Place a legal hold on subjects (IDs or a filter): they cannot be destroyed, swept or exported for deletion',
  request: { body: { required: true, content: { 'application/json': { schema: LegalHoldRequest } } } },
  responses: {
    201: jsonResponse(
      z.object({ id: z.uuid(), subjects: z.number().int(), missing: z.number().int() }).openapi('LegalHoldPlaced'),
      'Placed (missing: named subjects that do not exist or are destroyed)',
    ),
    422: problemResponse('The hold covers no subject (legal-hold-empty)'),
  },
});
const release = defineRoute({
  roles: ['owner'],
  method: 'post',
  path: '/legal-holds/{id}/release',
  tags,
  summary: 'Release a hold: its subjects stay held only while another active hold covers them',
  request: {
    params: IdParam,
    body: { required: true, content: { 'application/json': { schema: LegalHoldRelease } } },
  },
  responses: {
    200: jsonResponse(Hold, 'Released'),
    404: problemResponse('No such hold'),
    409: problemResponse('Released already (legal-hold-released)'),
  },
});
const getOne = defineRoute({
  roles: ['owner', 'auditor'],
  method: 'get',
  path: '/legal-holds/{id}',
  tags,
  summary: 'A legal hold',
  request: { params: IdParam },
  responses: { 200: jsonResponse(Hold, 'The hold'), 404: problemResponse('No such hold') },
});

export const legalHoldRoutes = ({ database }: Services) => {
  const { db } = database;
  return v1Resource(
    endpoint(place, async (c) => {
      const body = c.req.valid('json');
      try {
        return c.json(await placeLegalHold(db, body, actorOf(c.var.principal)), 201);
      } catch (err) {
        if (err instanceof DomainError && err.code === 'legal-hold-empty')
          throw new ApiError(422, err.code, 'Unprocessable request', err.message);
        throw err;
      }
    }),
    endpoint(release, async (c) => {
      const { id } = c.req.valid('param');
      const hold = await releaseLegalHold(db, id, c.req.valid('json').reason, actorOf(c.var.principal));
      return c.json(view(hold), 200);
    }),
    endpoint(getOne, async (c) => {
      const { id } = c.req.valid('param');
      const hold = await getLegalHold(db, id);
      if (!hold) throw ApiError.notFound(`legal hold ${id}`);
      return c.json(view(hold), 200);
    }),
  );
};
