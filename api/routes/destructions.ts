import { randomUUID } from 'node:crypto';
import { z } from '@hono/zod-openapi';
import { countScope, destructionDetail, resolveScope, unanchoredFields } from '../../activities/destruction-records';
import {
  ApprovalRequest,
  CancelRequest,
  DESTRUCTION_STATUSES,
  DestructionRequest,
  type DestructionInput,
} from '../../domain/destruction';
import { destructionWorkflowId } from '../../domain/ids';
import type { Services } from '../../runtime/services';
import type { destruction as destructionWorkflow } from '../../workflows/destruction';
import { actorOf, defineRoute, endpoint, jsonResponse, v1Resource } from '../auth';
import { destructionActions } from '../destruction-updates';
import { ApiError, problemResponse } from '../errors';
import { IdParam } from '../params';
import { IdempotencyHeaders, requestHash, startProcess } from '../processes';

const tags = ['destructions'];
const Started = z
  .object({
    id: z.uuid(),
    workflowId: z.string(),
    matched: z.number().int(),
    held: z.number().int().openapi({ description: 'Matched subjects under legal hold: reported and excluded' }),
    targeted: z.number().int(),
  })
  .openapi('DestructionStarted');
const Detail = z.record(z.string(), z.unknown()).openapi('Destruction', {
  description: 'Scope, counts, approvals, windows, outcome and, once issued, the signed certificate',
});
const Decided = z
  .object({ status: z.enum(DESTRUCTION_STATUSES), approvals: z.number().int(), counted: z.boolean() })
  .openapi('DestructionDecision');
const illegal = problemResponse('Not allowed in the request’s status (problem code destruction-<status>)');

const request = defineRoute({
  roles: ['owner'],
  method: 'post',
  path: '/destructions',
  tags,
  summary:
    'Request destruction (workflow destruction-{id}): subjects, retention expired, consent withdrawn, or fields; held subjects are excluded',
  request: {
    headers: IdempotencyHeaders,
    body: { required: true, content: { 'application/json': { schema: DestructionRequest } } },
  },
  responses: {
    202: jsonResponse(Started, 'Requested: awaiting two approvals'),
    200: jsonResponse(Started, 'The same Idempotency-Key and request started it before'),
    409: problemResponse('Idempotency-Key reused with another request'),
    422: problemResponse('Nothing is left to destroy (every matched subject is held, or none matched)'),
  },
});
const getOne = defineRoute({
  roles: ['owner', 'approver', 'auditor'],
  method: 'get',
  path: '/destructions/{id}',
  tags,
  summary: 'A destruction request with its approvals, progress and certificate',
  request: { params: IdParam },
  responses: { 200: jsonResponse(Detail, 'The request'), 404: problemResponse('No such request') },
});
const approve = defineRoute({
  roles: ['approver'],
  method: 'post',
  path: '/destructions/{id}/approvals',
  tags,
  summary: 'Approve or reject (two distinct approvers, neither the requester; one rejection rejects)',
  request: { params: IdParam, body: { required: true, content: { 'application/json': { schema: ApprovalRequest } } } },
  responses: {
    200: jsonResponse(Decided, 'Recorded (counted: false when the same decision was given before)'),
    403: problemResponse('The requester cannot approve their own request'),
    404: problemResponse('No such request'),
    409: illegal,
  },
});
const cancel = defineRoute({
  roles: ['owner'],
  method: 'post',
  path: '/destructions/{id}/cancel',
  tags,
  summary: 'Cancel while awaiting approval or in the grace window: nothing is destroyed',
  request: { params: IdParam, body: { required: true, content: { 'application/json': { schema: CancelRequest } } } },
  responses: {
    200: jsonResponse(z.object({ status: z.enum(DESTRUCTION_STATUSES) }), 'Cancelled'),
    404: problemResponse('No such request'),
    409: illegal,
  },
});

export const destructionRoutes = (services: Services) => {
  const { db } = services.database;
  const { config, clock, keyring, catalog } = services;

  const actions = destructionActions(services);
  const { withText } = actions;

  return v1Resource(
    endpoint(request, async (c) => {
      const body = c.req.valid('json');
      const { scope } = body;
      if (scope.kind === 'fields' && !scope.subjectIds) {
        const missing = unanchoredFields(catalog, scope.fields);
        if (missing.length)
          throw ApiError.badRequest(
            'a field scope without subject IDs needs an anchored retention (retentionFrom) for each field',
            missing.map((f) => ({ path: `scope.fields.${scope.fields.indexOf(f)}`, message: 'no anchored retention' })),
          );
      }
      const counts = countScope(await resolveScope({ db, keyring, catalog }, db, scope, clock()));
      if (counts.targeted === 0)
        throw new ApiError(
          422,
          counts.matched ? 'all-subjects-held' : 'nothing-matched',
          'Nothing to destroy',
          counts.matched
            ? `every one of the ${counts.matched} matched subjects is under legal hold`
            : 'the scope matches no subject that exists and is not destroyed',
        );
      const id = randomUUID();
      const by = actorOf(c.var.principal);
      // The reason is free text (it may name people): stored here, the workflow gets its ID.
      const started = await withText(
        { processId: id, kind: 'reason', body: body.reason, createdBy: by.actor },
        (reasonTextId) => {
          const input: DestructionInput = {
            destructionId: id,
            scope,
            reasonTextId,
            requestedBy: by.actor,
            approvalWindowMs: body.approvalWindow ?? config.CUSTODIAN_DESTRUCTION_APPROVAL_WINDOW,
            graceMs: body.graceWindow ?? config.CUSTODIAN_DESTRUCTION_GRACE,
          };
          return startProcess<typeof destructionWorkflow>(services, c.var.principal, {
            route: 'POST /v1/destructions',
            idempotencyKey: c.req.valid('header')['idempotency-key'],
            requestHash: requestHash(body),
            workflowType: 'destruction',
            id,
            workflowId: destructionWorkflowId,
            targetType: 'destruction',
            args: [input],
          });
        },
        (s) => s.created,
      );
      return c.json({ id: started.id, workflowId: started.workflowId, ...counts }, started.created ? 202 : 200);
    }),
    endpoint(getOne, async (c) => {
      const { id } = c.req.valid('param');
      const found = await destructionDetail(db, id);
      if (!found) throw ApiError.notFound(`destruction ${id}`);
      return c.json(found, 200);
    }),
    endpoint(approve, async (c) =>
      c.json(await actions.approve(c.req.valid('param').id, c.var.principal, c.req.valid('json')), 200),
    ),
    endpoint(cancel, async (c) =>
      c.json(await actions.cancel(c.req.valid('param').id, c.var.principal, c.req.valid('json')), 200),
    ),
  );
};
