import { z } from '@hono/zod-openapi';
import { createUser, issueApiKey, revokeApiKey } from '../../activities/users';
import { ROLES } from '../../domain/roles';
import type { Services } from '../../runtime/services';
import { actorOf, defineRoute, endpoint, jsonResponse, v1Resource } from '../auth';
import { problemResponse } from '../errors';
import { IdParam } from '../params';

const Role = z.enum(ROLES).openapi('Role');

const NewUser = z
  .object({ name: z.string().trim().min(1).max(200), role: Role })
  .strict()
  .openapi('NewUser');
const User = z.object({ id: z.uuid(), name: z.string(), role: Role, createdAt: z.iso.datetime() }).openapi('User');
const IssuedApiKey = z
  .object({
    id: z.uuid(),
    userId: z.uuid(),
    prefix: z.string().openapi({ description: 'Identifies the key in lists and logs' }),
    key: z.string().openapi({ description: 'The secret key: shown once, stored only as a hash' }),
  })
  .openapi('IssuedApiKey');
const RevokedApiKey = z.object({ id: z.uuid(), revokedAt: z.iso.datetime() }).openapi('RevokedApiKey');

const postUser = defineRoute({
  roles: ['admin'],
  method: 'post',
  path: '/users',
  tags: ['users'],
  summary: 'Create a user',
  request: { body: { required: true, content: { 'application/json': { schema: NewUser } } } },
  responses: { 201: jsonResponse(User, 'The user') },
});

const postApiKey = defineRoute({
  roles: ['admin'],
  method: 'post',
  path: '/users/{id}/api-keys',
  tags: ['users'],
  summary: 'Issue an API key for a user (the key is shown once)',
  request: { params: IdParam },
  responses: {
    201: jsonResponse(IssuedApiKey, 'The new key'),
    404: problemResponse('No such user'),
    409: problemResponse('The user is disabled'),
  },
});

const revokeKey = defineRoute({
  roles: ['admin'],
  method: 'post',
  path: '/api-keys/{id}/revoke',
  tags: ['users'],
  summary: 'Revoke an API key (idempotent)',
  request: { params: IdParam },
  responses: { 200: jsonResponse(RevokedApiKey, 'The key is revoked'), 404: problemResponse('No such API key') },
});

export const userRoutes = ({ database: { db } }: Services) =>
  v1Resource(
    endpoint(postUser, async (c) => {
      const user = await createUser(db, c.req.valid('json'), actorOf(c.var.principal));
      return c.json({ ...user, createdAt: user.createdAt.toISOString() }, 201);
    }),
    endpoint(postApiKey, async (c) => {
      const { id } = c.req.valid('param');
      const issued = await issueApiKey(db, id, actorOf(c.var.principal));
      return c.json({ ...issued, userId: id }, 201);
    }),
    endpoint(revokeKey, async (c) => {
      const revoked = await revokeApiKey(db, c.req.valid('param').id, actorOf(c.var.principal));
      return c.json({ id: revoked.id, revokedAt: revoked.revokedAt.toISOString() }, 200);
    }),
  );
