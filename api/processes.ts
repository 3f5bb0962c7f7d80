import { createHash } from 'node:crypto';
import { z } from '@hono/zod-openapi';
import type { Workflow, WorkflowStartOptions } from '@temporalio/client';
import { and, eq } from 'drizzle-orm';
import { appendAudit } from '../activities/audit';
import type { Principal } from '../activities/users';
import { requestIdempotency } from '../db/schema';
import { canonicalJson } from '../domain/canonical-json';
import type { Services } from '../runtime/services';
import { actorOf } from './auth';
import { ApiError } from './errors';

/** The optional header of every POST that starts a workflow. */
export const IdempotencyHeaders = z.object({
  'idempotency-key': z
    .string()
    .regex(/^[\x21-\x7e]{1,200}$/, { error: 'must be 1-200 visible ASCII characters' })
    .optional()
    .openapi({
      description:
        'Retry safely: the same key with the same request returns the first process (200); with another request, 409',
    }),
});

/** SHA-256 over the canonical JSON of what makes two requests the same (query, body, or a staged file's hash). */
export const requestHash = (request: unknown): string =>
  createHash('sha256').update(canonicalJson(request)).digest('hex');

export interface ProcessRequest<W extends Workflow> {
  /** The idempotency scope, e.g. `POST /v1/subject-imports`. */
  route: string;
  idempotencyKey?: string;
  requestHash: string;
  workflowType: string;
  /** The process's business ID, made by the caller (it may have staged a file under it). */
  id: string;
  /** From domain/ids.ts: the one place workflow IDs are made. */
  workflowId: (id: string) => string;
  /** Audited as `<targetType>.requested` against the business ID. */
  targetType: string;
  args: Parameters<W>;
}

export interface ProcessStarted {
  id: string;
  workflowId: string;
  /** False when an earlier request with the same Idempotency-Key started it. */
  created: boolean;
}

/**
 * Starts a process the one way every route does: honours `Idempotency-Key`, applies the workflow-ID
 * convention and task queue, counts the start and audits who asked (user and API key) with the run ID.
 */
export const startProcess = async <W extends Workflow>(
  s: Services,
  principal: Principal,
  p: ProcessRequest<W>,
): Promise<ProcessStarted> => {
  const { db } = s.database;
  const workflowId = p.workflowId(p.id);
  const scope = and(
    eq(requestIdempotency.userId, principal.userId),
    eq(requestIdempotency.route, p.route),
    eq(requestIdempotency.key, p.idempotencyKey ?? ''),
  );
  if (p.idempotencyKey !== undefined) {
    // The claim comes before the start, so two concurrent retries cannot both start a workflow.
    const [claimed] = await db
      .insert(requestIdempotency)
      .values({
        userId: principal.userId,
        route: p.route,
        key: p.idempotencyKey,
        requestHash: p.requestHash,
        resourceId: p.id,
        workflowId,
      })
      .onConflictDoNothing()
      .returning({ key: requestIdempotency.key });
    if (!claimed) {
      const [first] = await db.select().from(requestIdempotency).where(scope);
      if (!first)
        throw ApiError.conflict('idempotency-key-in-flight', 'a request with this Idempotency-Key is in flight');
      if (first.requestHash !== p.requestHash) {
        throw ApiError.conflict('idempotency-key-reused', 'this Idempotency-Key was used with a different request');
      }
      return { id: first.resourceId, workflowId: first.workflowId, created: false };
    }
  }
  let runId: string;
  try {
    const options = { taskQueue: s.config.TEMPORAL_TASK_QUEUE, workflowId, args: p.args };
    // The conditional `args` type of WorkflowStartOptions cannot be checked against a generic W.
    const handle = await s.temporal.workflow.start<W>(p.workflowType, options as unknown as WorkflowStartOptions<W>);
    runId = handle.firstExecutionRunId;
  } catch (err) {
    // Release the key so the client's retry can start afresh; what this attempt left behind is swept.
    if (p.idempotencyKey !== undefined) await db.delete(requestIdempotency).where(scope);
    throw err;
  }
  s.metrics.recordWorkflowStart(p.workflowType);
  await appendAudit(db, {
    ...actorOf(principal),
    action: `${p.targetType}.requested`,
    targetType: p.targetType,
    targetId: p.id,
    workflowId,
    runId,
    idempotencyKey: `${workflowId}:requested`,
  });
  return { id: p.id, workflowId, created: true };
};
