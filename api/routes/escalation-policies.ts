import { z } from '@hono/zod-openapi';
import { createPolicy, getPolicy, listPolicies, unknownTargets } from '../../activities/oncall';
import { EscalationPolicyRequest } from '../../domain/escalation';
import type { Services } from '../../runtime/services';
import { actorOf, defineRoute, endpoint, jsonResponse, v1Resource } from '../auth';
import { ApiError, problemResponse } from '../errors';
import { IdParam } from '../params';

const NewPolicy = EscalationPolicyRequest;
const Target = z.object({ type: z.enum(['user', 'schedule']), id: z.uuid() });
const Policy = z
  .object({
    id: z.uuid(),
    name: z.string(),
    levels: z.array(z.object({ targets: z.array(Target), waitMs: z.number().int() })),
    repeat: z.number().int(),
    reescalateAfterMs: z.number().int().nullable(),
    createdBy: z.string(),
    createdAt: z.iso.datetime(),
  })
  .openapi('EscalationPolicy');

const tags = ['on-call'];

const create = defineRoute({
  roles: ['admin'],
  method: 'post',
  path: '/escalation-policies',
  tags,
  summary: 'Create an escalation policy (incidents freeze it when they are triggered)',
  request: { body: { required: true, content: { 'application/json': { schema: NewPolicy } } } },
  responses: { 201: jsonResponse(Policy, 'The policy') },
});
const list = defineRoute({
  roles: ['admin', 'responder'],
  method: 'get',
  path: '/escalation-policies',
  tags,
  summary: 'Every escalation policy',
  responses: { 200: jsonResponse(z.object({ policies: z.array(Policy) }), 'The policies') },
});
const getOne = defineRoute({
  roles: ['admin', 'responder'],
  method: 'get',
  path: '/escalation-policies/{id}',
  tags,
  summary: 'One escalation policy',
  request: { params: IdParam },
  responses: { 200: jsonResponse(Policy, 'The policy'), 404: problemResponse('No such policy') },
});

export const escalationPolicyRoutes = ({ database: { db } }: Services) =>
  v1Resource(
    endpoint(create, async (c) => {
      const body = c.req.valid('json');
      const unknown = await unknownTargets(db, body);
      if (unknown.length) throw ApiError.badRequest(`${unknown.length} target(s) cannot be paged`, unknown);
      return c.json(await createPolicy(db, body, actorOf(c.var.principal)), 201);
    }),
    endpoint(list, async (c) => c.json({ policies: await listPolicies(db) }, 200)),
    endpoint(getOne, async (c) => {
      const { id } = c.req.valid('param');
      const policy = await getPolicy(db, id);
      if (!policy) throw ApiError.notFound(`escalation policy ${id}`);
      return c.json(policy, 200);
    }),
  );
