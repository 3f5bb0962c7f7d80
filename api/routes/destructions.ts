import { randomUUID } from 'node:crypto';
import { z } from '@hono/zod-openapi';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { countScope, destructionDetail, resolveScope, unanchoredFields } from '../../activities/destruction-records';
import { destructionTexts } from '../../activities/process-texts';
import {
  ApprovalRequest,
  CancelRequest,
  DESTRUCTION_CONFLICT_PREFIX,
  DESTRUCTION_STATUSES,
  DestructionRequest,
  NOT_APPROVER,
  REQUESTER_CANNOT_APPROVE,
  type DestructionActor,
  type DestructionInput,
} from '../../domain/destruction';
import { destructionWorkflowId } from '../../domain/ids';
import type { Services } from '../../runtime/services';
import { approvalUpdate, cancelUpdate, type destruction as destructionWorkflow } from '../../workflows/destruction';
import { actorOf, defineRoute, endpoint, jsonResponse, v1Resource, type Principal } from '../auth';
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

const refusalOf = (err: unknown): ApplicationFailure | undefined => {
  for (let e: unknown = err; e instanceof Error; e = (e as Error & { cause?: unknown }).cause)
    if (
      e instanceof ApplicationFailure &&
      (e.type?.startsWith(DESTRUCTION_CONFLICT_PREFIX) ||
        e.type === NOT_APPROVER ||
        e.type === REQUESTER_CANNOT_APPROVE)
    )
      return e;
  return undefined;
};

const destructionActor = (p: Principal): DestructionActor => ({ ...actorOf(p), userId: p.userId, role: p.role });

export const destructionRoutes = (services: Services) => {
  const { db } = services.database;
  const { config, temporal, clock, keyring, catalog } = services;

  /**
   * Stores a text, then runs `use` with its ID; the text is dropped again when `use` fails or says it did not take
   * it (an ambiguous start failure aside, nothing then refers to it).
   */
  const withText = async <R>(
    t: { processId: string; kind: string; body: string; createdBy: string },
    use: (textId: string) => Promise<R>,
    taken: (r: R) => boolean = () => true,
  ): Promise<R> => {
    const { id: textId } = await destructionTexts.store(db, t);
    let result: R;
    try {
      result = await use(textId);
    } catch (err) {
      await destructionTexts.drop(db, [textId]);
      throw err;
    }
    if (!taken(result)) await destructionTexts.drop(db, [textId]);
    return result;
  };

  /** Runs an update; a refusal, or a run that has ended, is the problem naming the request's state. */
  const update = async <R>(id: string, send: (h: WorkflowHandle) => Promise<R>): Promise<R> => {
    const handle = temporal.workflow.getHandle(destructionWorkflowId(id));
    // The record is the workflow's first step: a request just started may not have it yet.
    if (!(await destructionDetail(db, id)) && !(await handle.describe().catch(() => undefined)))
      throw ApiError.notFound(`destruction ${id}`);
    try {
      return await send(handle);
    } catch (err) {
      const refused = refusalOf(err);
      if (refused?.type === NOT_APPROVER || refused?.type === REQUESTER_CANNOT_APPROVE)
        throw ApiError.forbidden(refused.message);
      if (refused) throw ApiError.conflict(refused.type!, refused.message);
      if (err instanceof WorkflowUpdateFailedError) throw err;
      const now = await destructionDetail(db, id);
      if (err instanceof WorkflowNotFoundError || (now && now.finishedAt))
        throw ApiError.conflict(
          `destruction-${now?.status ?? 'ended'}`,
          `destruction ${id} is ${now?.status ?? 'ended'}`,
        );
      throw err;
    }
  };

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
    endpoint(approve, async (c) => {
      const { id } = c.req.valid('param');
      const by = destructionActor(c.var.principal);
      const { decision, comment } = c.req.valid('json');
      const decided = await withText(
        { processId: id, kind: 'comment', body: comment, createdBy: by.actor },
        (commentTextId) =>
          update(id, (h) => h.executeUpdate(approvalUpdate, { args: [by, { decision, commentTextId }] })),
        // The same approver's earlier decision stands, with its comment.
        (r) => r.counted,
      );
      return c.json(decided, 200);
    }),
    endpoint(cancel, async (c) => {
      const { id } = c.req.valid('param');
      const by = destructionActor(c.var.principal);
      const { reason } = c.req.valid('json');
      const cancelled = await withText(
        { processId: id, kind: 'cancel-reason', body: reason, createdBy: by.actor },
        (reasonTextId) => update(id, (h) => h.executeUpdate(cancelUpdate, { args: [by, { reasonTextId }] })),
      );
      return c.json(cancelled, 200);
    }),
  );
};
