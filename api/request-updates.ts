import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { z } from 'zod';
import { and, eq, isNull } from 'drizzle-orm';
import { appendAudit } from '../activities/audit';
import { oneTimePassword, rewrapForPassword } from '../activities/export-crypto';
import { requestDetail } from '../activities/request-records';
import { requestTextStore } from '../activities/request-texts';
import { requestEvents, requestExports, requests, subjects, users } from '../db/schema';
import { catalogPurposes } from '../domain/catalog';
import { requestWorkflowId } from '../domain/ids';
import {
  NOT_OWNER,
  REASON_REQUIRED,
  REQUEST_CONFLICT_PREFIX,
  REQUEST_UNPROCESSABLE,
  fulfilProblem,
  type AssignBody,
  type ExtendBody,
  type FulfilBody,
  type NoteBody,
  type PauseBody,
  type RefuseBody,
  type RequestActor,
  type RequestFiling,
  type RequestInput,
  type RequestStatus,
  type VerifyBody,
} from '../domain/request';
import { requestClock } from '../domain/request-clocks';
import type { Services } from '../runtime/services';
import {
  assignUpdate,
  extendUpdate,
  fulfilUpdate,
  noteUpdate,
  pauseUpdate,
  refuseUpdate,
  resumeUpdate,
  verifyUpdate,
  type request as requestWorkflow,
} from '../workflows/request';
import { actorOf, type Principal } from './auth';
import { ApiError } from './errors';
import { requestHash, startProcess } from './processes';

const unprocessable = (detail: string, path: string, message: string) =>
  new ApiError(422, 'unprocessable', 'Unprocessable request', detail, [{ path, message }]);

/** The failure an update was refused with, wherever it sits in the cause chain. */
const refusalOf = (err: unknown): ApplicationFailure | undefined => {
  for (let e: unknown = err; e instanceof Error; e = (e as Error & { cause?: unknown }).cause)
    if (e instanceof ApplicationFailure && e.type) return e;
  return undefined;
};

/** A refusal as the API answers it: 409 request-<reason>, 422 for a missing reason or an unfulfillable body, 403. */
const problemOf = (refused: ApplicationFailure): ApiError | undefined => {
  const type = refused.type!;
  if (type === NOT_OWNER) return ApiError.forbidden(refused.message);
  if (type === REASON_REQUIRED)
    return new ApiError(422, REASON_REQUIRED, 'Reason required', refused.message, [
      { path: 'reason', message: 'required' },
    ]);
  if (type === REQUEST_UNPROCESSABLE)
    return new ApiError(422, 'unprocessable', 'Unprocessable request', refused.message);
  if (type.startsWith(REQUEST_CONFLICT_PREFIX)) return ApiError.conflict(type, refused.message);
  return undefined;
};

/**
 * Filing and working requests, for the API and the subject's page: texts are sealed under the subject's key first
 * (the workflow gets their IDs only) and dropped again when the update is refused; refusals become ApiErrors.
 */
export const requestUpdates = (services: Services) => {
  const { database, temporal, config, catalog, clock, keyring } = services;
  const { db } = database;
  const texts = requestTextStore({ db, keyring });
  const row = async (id: string) => (await db.select().from(requests).where(eq(requests.id, id)))[0];

  const findSubject = async (s: RequestFiling['subject']) => {
    const [found] = await db
      .select({ id: subjects.id, jurisdiction: subjects.jurisdiction, status: subjects.status })
      .from(subjects)
      .where('id' in s ? eq(subjects.id, s.id) : eq(subjects.externalRef, s.externalRef));
    return found;
  };

  return {
    row,
    texts,

    /**
     * Files a request: the subject must exist (400 naming `subject`), the named purposes must be the catalog's, the
     * texts are sealed, and `request-{id}` starts — through startProcess for staff, directly for the subject's page
     * (no principal: the signed form link is the credential, audited as `subject:<id>`).
     */
    async file(
      filing: RequestFiling,
      by: { principal: Principal; idempotencyKey?: string } | { subjectId: string },
    ): Promise<{ id: string; workflowId: string; created: boolean }> {
      const subject = await findSubject(filing.subject);
      if (!subject) throw ApiError.badRequest('no such subject', [{ path: 'subject', message: 'no such subject' }]);
      if (subject.status === 'destroyed')
        throw ApiError.conflict('subject-destroyed', `subject ${subject.id} was destroyed`);
      if ('subjectId' in by && by.subjectId !== subject.id) throw ApiError.forbidden('the link names another subject');
      const known = catalogPurposes(catalog);
      const unknown = (filing.purposes ?? []).findIndex((p) => !known.has(p));
      if (unknown >= 0)
        throw ApiError.badRequest('unknown purpose', [{ path: `purposes.${unknown}`, message: 'not in the catalog' }]);
      const now = clock().getTime();
      const receivedAt = filing.receivedAt ? Date.parse(filing.receivedAt) : now;
      if (receivedAt > now + 60_000)
        throw ApiError.badRequest('receivedAt is in the future', [{ path: 'receivedAt', message: 'in the future' }]);
      const actor = 'principal' in by ? actorOf(by.principal).actor : `subject:${subject.id}`;
      const id = randomUUID();
      const seal = async (kind: string, body: string | undefined) =>
        body === undefined
          ? undefined
          : (await texts.store(db, { requestId: id, subjectId: subject.id, kind, body, createdBy: actor })).id;
      const detailsTextId = await seal('details', filing.details);
      const referenceTextId = await seal('verification-reference', filing.verification?.reference);
      const input: RequestInput = {
        requestId: id,
        type: filing.type,
        subjectId: subject.id,
        channel: 'principal' in by ? filing.channel : 'page',
        clock: requestClock(subject.jurisdiction, filing.type, receivedAt, {
          ...(filing.clock.window === undefined ? {} : { windowMs: filing.clock.window }),
          ...(filing.clock.maxExtension === undefined ? {} : { maxExtensionMs: filing.clock.maxExtension }),
          ...(filing.clock.verifyWithin === undefined ? {} : { verifyWithinMs: filing.clock.verifyWithin }),
          cnDefaultMs: config.CUSTODIAN_CN_REQUEST_WINDOW,
        }),
        fields: filing.fields ?? [],
        purposes: filing.purposes ?? [],
        ...(filing.category ? { category: filing.category } : {}),
        ...(detailsTextId ? { detailsTextId } : {}),
        ...(filing.verification && referenceTextId && 'principal' in by
          ? { verification: { method: filing.verification.method, referenceTextId, by: actor } }
          : {}),
        filedBy: actor,
        linkTtlMs: config.CUSTODIAN_REQUEST_LINK_TTL,
        destruction: {
          approvalWindowMs: config.CUSTODIAN_DESTRUCTION_APPROVAL_WINDOW,
          graceMs: config.CUSTODIAN_DESTRUCTION_GRACE,
        },
      };
      if ('principal' in by) {
        const { verification, details, ...rest } = filing;
        return startProcess<typeof requestWorkflow>(services, by.principal, {
          route: 'POST /v1/requests',
          ...(by.idempotencyKey === undefined ? {} : { idempotencyKey: by.idempotencyKey }),
          // Hashes of the texts, not the texts: the idempotency row is no place for personal values.
          requestHash: requestHash({
            ...rest,
            details: details === undefined ? null : requestHash(details),
            verification: verification === undefined ? null : requestHash(verification),
          }),
          workflowType: 'request',
          id,
          workflowId: requestWorkflowId,
          targetType: 'request',
          args: [input],
        });
      }
      const handle = await temporal.workflow.start('request', {
        taskQueue: config.TEMPORAL_TASK_QUEUE,
        workflowId: requestWorkflowId(id),
        args: [input],
      });
      services.metrics.recordWorkflowStart('request');
      await appendAudit(db, {
        actor,
        action: 'request.requested',
        targetType: 'request',
        targetId: id,
        workflowId: handle.workflowId,
        runId: handle.firstExecutionRunId,
        details: { via: 'page' },
        idempotencyKey: `${requestWorkflowId(id)}:requested`,
      });
      return { id, workflowId: handle.workflowId, created: true };
    },

    /**
     * Seals `bodies` (kind → text) for the request, then runs the update with their IDs. A refusal, or a run that
     * has ended, is a problem naming the request's state; the texts are then removed.
     */
    async run<R>(
      id: string,
      by: RequestActor,
      bodies: Record<string, string | undefined>,
      send: (h: WorkflowHandle, textIds: Record<string, string>) => Promise<R>,
    ): Promise<R> {
      const current = await row(id);
      if (!current) throw ApiError.notFound(`request ${id}`);
      const textIds: Record<string, string> = {};
      for (const [kind, body] of Object.entries(bodies))
        if (body !== undefined)
          textIds[kind] = (
            await texts.store(db, { requestId: id, subjectId: current.subjectId, kind, body, createdBy: by.actor })
          ).id;
      try {
        return await send(temporal.workflow.getHandle(requestWorkflowId(id)), textIds);
      } catch (err) {
        await texts.drop(Object.values(textIds));
        const refused = refusalOf(err);
        const problem = refused && problemOf(refused);
        if (problem) throw problem;
        if (err instanceof WorkflowUpdateFailedError) throw err;
        const now = await row(id);
        if (err instanceof WorkflowNotFoundError || (now && ['fulfilled', 'refused', 'expired'].includes(now.status)))
          throw ApiError.conflict(`request-${now?.status ?? 'closed'}`, `request ${id} is ${now?.status ?? 'closed'}`);
        throw err;
      }
    },
    unprocessable,
  };
};

type Recorded = { status: RequestStatus; at: number; dueAt: number; timeLeftMs: number };
type Body<S extends z.ZodType> = z.infer<S>;

/**
 * A request's reads and actions as the API routes and the console do them: the detail (its texts decrypted, so the
 * read is audited), verify, assign, note, extend, pause, resume, refuse and fulfil — each sealing its texts, running
 * its update and turning a refusal into an ApiError (see `requestUpdates.run`).
 */
export const requestActions = (services: Services) => {
  const { db } = services.database;
  const { clock, keyring } = services;
  const updates = requestUpdates(services);

  return {
    updates,
    /** The request as GET /v1/requests/{id} shows it; who read it is recorded (征信业管理条例 Art. 22). */
    async view(principal: Principal, id: string) {
      const found = await requestDetail(db, updates.texts, id, clock());
      if (!found) throw ApiError.notFound(`request ${id}`);
      await appendAudit(db, {
        ...actorOf(principal),
        action: 'request.viewed',
        targetType: 'request',
        targetId: id,
        details: { type: found.type, subjectId: found.subjectId },
        idempotencyKey: `request-view:${randomUUID()}`,
      });
      return found;
    },
    verify: (id: string, by: RequestActor, body: Body<typeof VerifyBody>): Promise<Recorded> =>
      updates.run(id, by, { 'verification-reference': body.reference }, (h, t) =>
        h.executeUpdate(verifyUpdate, {
          args: [by, { method: body.method, referenceTextId: t['verification-reference']! }],
        }),
      ),
    async assign(id: string, by: RequestActor, { assignee }: Body<typeof AssignBody>): Promise<Recorded> {
      const [user] = await db
        .select({ id: users.id })
        .from(users)
        .where(and(eq(users.id, assignee), isNull(users.disabledAt)));
      if (!user) throw ApiError.badRequest('no such user', [{ path: 'assignee', message: 'no such active user' }]);
      return updates.run(id, by, {}, (h) => h.executeUpdate(assignUpdate, { args: [by, { assignee }] }));
    },
    note: (id: string, by: RequestActor, { text }: Body<typeof NoteBody>): Promise<Recorded> =>
      updates.run(id, by, { note: text }, (h, t) => h.executeUpdate(noteUpdate, { args: [by, { textId: t.note! }] })),
    extend: (id: string, by: RequestActor, body: Body<typeof ExtendBody>): Promise<Recorded> =>
      updates.run(id, by, { 'extension-reason': body.reason }, (h, t) =>
        h.executeUpdate(extendUpdate, {
          args: [by, { byMs: body.by, ...(t['extension-reason'] ? { reasonTextId: t['extension-reason'] } : {}) }],
        }),
      ),
    pause: (id: string, by: RequestActor, { reason }: Body<typeof PauseBody>): Promise<Recorded> =>
      updates.run(id, by, { 'pause-reason': reason }, (h, t) =>
        h.executeUpdate(pauseUpdate, { args: [by, { reasonTextId: t['pause-reason']! }] }),
      ),
    resume: (id: string, by: RequestActor): Promise<Recorded> =>
      updates.run(id, by, {}, (h) => h.executeUpdate(resumeUpdate, { args: [by] })),
    refuse: (id: string, by: RequestActor, { reason }: Body<typeof RefuseBody>): Promise<Recorded> =>
      updates.run(id, by, { 'refusal-reason': reason }, (h, t) =>
        h.executeUpdate(refuseUpdate, {
          args: [by, t['refusal-reason'] ? { reasonTextId: t['refusal-reason'] } : {}],
        }),
      ),
    /**
     * Fulfils as the request's type allows (422 naming the field otherwise). A password export's one-time password
     * is made here and returned once: it is never stored, logged or part of the workflow's history.
     */
    async fulfil(id: string, by: RequestActor, body: FulfilBody) {
      const row = await updates.row(id);
      if (!row) throw ApiError.notFound(`request ${id}`);
      const problem = fulfilProblem(row.type, body);
      if (problem) throw unprocessable(`a ${row.type} request cannot be fulfilled so`, problem.path, problem.message);
      // The filing's text stands as the subject's statement when the owner gives none (征信业管理条例 Art. 16).
      const [received] =
        row.type === 'objection' && !body.statement
          ? await db
              .select({ textId: requestEvents.textId })
              .from(requestEvents)
              .where(and(eq(requestEvents.requestId, id), eq(requestEvents.type, 'received')))
          : [];
      const r = await updates.run(
        id,
        by,
        {
          'new-values': body.values ? JSON.stringify(body.values) : undefined,
          statement: body.statement,
          reply: body.reply,
        },
        (h, t) =>
          h.executeUpdate(fulfilUpdate, {
            args: [
              by,
              {
                ...(body.delivery ? { delivery: body.delivery } : {}),
                ...(body.outcome ? { outcome: body.outcome } : {}),
                ...(t['new-values'] ? { valuesTextId: t['new-values'] } : {}),
                ...(t.statement
                  ? { statementTextId: t.statement }
                  : received?.textId
                    ? { statementTextId: received.textId }
                    : {}),
                ...(t.reply ? { replyTextId: t.reply } : {}),
              },
            ],
          }),
      );
      let password: string | undefined;
      if (body.delivery === 'password' && r.exportId) {
        password = oneTimePassword();
        const [exp] = await db.select().from(requestExports).where(eq(requestExports.id, r.exportId));
        const wrapped = exp?.wrappedKey && rewrapForPassword(keyring, exp.id, exp.wrappedKey, password);
        if (!wrapped)
          throw ApiError.conflict('request-export-issued', `the export of request ${id} was already issued`);
        await db.update(requestExports).set({ wrappedKey: wrapped }).where(eq(requestExports.id, exp.id));
      }
      return { ...r, ...(password ? { password } : {}) };
    },
  };
};
