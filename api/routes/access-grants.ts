import { z } from '@hono/zod-openapi';
import { createGrant, findGrant, grantView, listGrants, revokeGrant } from '../../activities/access-grants';
import { AccessGrantRequest, CAPABILITIES } from '../../domain/access-grants';
import { DomainError } from '../../domain/errors';
import type { Services } from '../../runtime/services';
import { actorOf, defineRoute, endpoint, jsonResponse, v1Resource } from '../auth';
import { ApiError, problemResponse } from '../errors';
import { IdParam } from '../params';

const tags = ['access'];

const Grant = z
  .object({
    id: z.uuid(),
    userId: z.uuid(),
    capability: z.enum(CAPABILITIES),
    classification: z.enum(['general', 'personal', 'sensitive']).nullable(),
    purpose: z.string().nullable(),
    expiresAt: z.iso.datetime(),
    reviewerId: z.uuid(),
    createdBy: z.string(),
    createdAt: z.iso.datetime(),
    revokedAt: z.iso.datetime().nullable(),
    revokedBy: z.string().nullable(),
    revokeReason: z.string().nullable().openapi({ description: 'revoked, review-revoked or not-certified' }),
    active: z.boolean().openapi({ description: 'Neither revoked nor expired now' }),
  })
  .openapi('AccessGrant');

const ListQuery = z
  .object({
    userId: z
      .uuid()
      .transform((id) => id.toLowerCase())
      .optional(),
    active: z.enum(['true', 'false']).optional().openapi({ description: 'true: only live grants' }),
  })
  .strict();

const create = defineRoute({
  roles: ['admin'],
  method: 'post',
  path: '/access-grants',
  tags,
  summary:
    'Grant a user a capability (reveal) on a data classification and/or purpose, until an expiry, with a reviewer',
  request: { body: { required: true, content: { 'application/json': { schema: AccessGrantRequest } } } },
  responses: { 201: jsonResponse(Grant, 'The grant') },
});

const list = defineRoute({
  roles: ['admin'],
  method: 'get',
  path: '/access-grants',
  tags,
  summary: 'Grants, newest first, with whether each is live',
  request: { query: ListQuery },
  responses: { 200: jsonResponse(z.object({ items: z.array(Grant) }), 'The grants') },
});

const revoke = defineRoute({
  roles: ['admin'],
  method: 'delete',
  path: '/access-grants/{id}',
  tags,
  summary: 'Revoke a grant; it stops working at once (audited)',
  request: { params: IdParam },
  responses: {
    200: jsonResponse(Grant, 'The revoked grant'),
    404: problemResponse('No such grant'),
    409: problemResponse('The grant was revoked already (grant-revoked)'),
  },
});

export const accessGrantRoutes = ({ database: { db }, clock }: Services) =>
  v1Resource(
    endpoint(create, async (c) => {
      try {
        const grant = await createGrant(db, c.req.valid('json'), actorOf(c.var.principal), clock());
        return c.json(grantView(grant, clock()), 201);
      } catch (err) {
        if (err instanceof DomainError && err.kind === 'invalid')
          throw ApiError.badRequest(err.message, [{ path: err.code, message: err.message }]);
        throw err;
      }
    }),
    endpoint(list, async (c) => {
      const { userId, active } = c.req.valid('query');
      const grants = await listGrants(db, { ...(userId ? { userId } : {}), activeOnly: active === 'true' });
      const now = clock();
      return c.json({ items: grants.map((g) => grantView(g, now)) }, 200);
    }),
    endpoint(revoke, async (c) => {
      const { id } = c.req.valid('param');
      const by = actorOf(c.var.principal);
      const revoked = await db.transaction((tx) => revokeGrant(tx, id, 'revoked', by, `access-grant:${id}:revoked`));
      const grant = await findGrant(db, id);
      if (!grant) throw ApiError.notFound(`access grant ${id}`);
      if (!revoked) throw ApiError.conflict('grant-revoked', `access grant ${id} was revoked already`);
      return c.json(grantView(grant, clock()), 200);
    }),
  );
