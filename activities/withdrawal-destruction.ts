import { createHash } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { and, eq, gt, isNull, ne, or, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { consents, subjectFields, subjects } from '../db/schema';
import type { Catalog } from '../domain/catalog';
import type { DestructionInput, DestructionScope } from '../domain/destruction';
import { consentWorkflowId, destructionWorkflowId } from '../domain/ids';
import { erasureAfterWithdrawal, type WithdrawalErasure } from '../domain/withdrawal-erasure';
import type { Config } from '../runtime/config';
import type { destruction } from '../workflows/destruction';
import { appendAudit } from './audit';

/** The one destruction a withdrawal may open: a name-based UUID (version 8, SHA-256) of the consent's ID. */
export const withdrawalDestructionId = (consentId: string): string => {
  const h = createHash('sha256').update(`custodian/consent-withdrawal-destruction/v1:${consentId}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x80;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
};

type Deps = { db: Db; catalog: Catalog; config: Config; clock: () => Date };

interface Assessed {
  subjectId: string;
  purpose: string;
  erasure: WithdrawalErasure;
}

/**
 * Decides whether the withdrawn consent was the only legal basis for some of the subject's data
 * (domain/withdrawal-erasure.ts) and audits a decision to erase: the entry's idempotency key makes that decision the
 * one a retry reads back, so a retry cannot change a request's scope.
 */
const assess = async (d: Deps, consentId: string, round: number): Promise<Assessed | undefined> => {
  const run = Context.current().info.workflowExecution;
  return d.db.transaction(async (tx) => {
    const [consent] = await tx.select().from(consents).where(eq(consents.id, consentId));
    if (!consent || consent.status !== 'withdrawn') return undefined;
    const now = d.clock();
    const [subject] = await tx
      .select({
        status: subjects.status,
        retained: sql<boolean>`coalesce(${subjects.retentionUntil} >= current_date, false)`,
      })
      .from(subjects)
      .where(eq(subjects.id, consent.subjectId));
    const fields = await tx
      .selectDistinct({ field: subjectFields.field })
      .from(subjectFields)
      .where(eq(subjectFields.subjectId, consent.subjectId));
    const granted = await tx
      .select({ purpose: consents.purpose })
      .from(consents)
      .where(
        and(
          eq(consents.subjectId, consent.subjectId),
          ne(consents.id, consentId),
          eq(consents.status, 'granted'),
          or(isNull(consents.validUntil), gt(consents.validUntil, now)),
        ),
      );
    const erasure: WithdrawalErasure =
      !subject || subject.status === 'destroyed'
        ? { kind: 'none', reason: 'no-data' }
        : erasureAfterWithdrawal(d.catalog, consent.purpose, {
            fields: fields.map((f) => f.field),
            grantedPurposes: new Set(granted.map((g) => g.purpose)),
            retained: subject.retained,
          });
    // Only an opened request is a state change to audit; with nothing to erase the withdrawal's entry says it all.
    if (erasure.kind === 'none') return { subjectId: consent.subjectId, purpose: consent.purpose, erasure };
    const entry = await appendAudit(tx, {
      actor: 'system',
      action: 'consent.erasure-requested',
      targetType: 'consent',
      targetId: consentId,
      workflowId: run?.workflowId ?? null,
      runId: run?.runId ?? null,
      details: {
        round,
        subjectId: consent.subjectId,
        purpose: consent.purpose,
        erasure,
        destructionId: withdrawalDestructionId(consentId),
      },
      idempotencyKey: `${consentWorkflowId(consentId)}:round-${round}:erasure`,
    });
    return {
      subjectId: consent.subjectId,
      purpose: consent.purpose,
      erasure: entry.details.erasure as WithdrawalErasure,
    };
  });
};

/**
 * After a withdrawal: when the consent was the only legal basis for the subject's data (or some fields of it), opens
 * `destruction-{id}` for them, requested by the system and linked to the consent. It needs two approvals like any
 * other request; held subjects are excluded (and a request with nothing left is refused and recorded) by the
 * destruction itself. The ID derives from the consent's, and a duplicate start is refused: one request per withdrawal.
 */
export const openWithdrawalDestruction = async (
  d: Deps,
  w: { consentId: string; round: number },
): Promise<string | undefined> => {
  if (!d.config.CUSTODIAN_DESTRUCTION_ON_CONSENT_WITHDRAWAL) return undefined;
  const assessed = await assess(d, w.consentId, w.round);
  if (!assessed || assessed.erasure.kind === 'none') return undefined;
  const destructionId = withdrawalDestructionId(w.consentId);
  const scope: DestructionScope =
    assessed.erasure.kind === 'subject'
      ? { kind: 'subjects', subjectIds: [assessed.subjectId] }
      : { kind: 'fields', fields: assessed.erasure.fields, subjectIds: [assessed.subjectId] };
  const input: DestructionInput = {
    destructionId,
    scope,
    reason: `consent ${w.consentId} withdrawn: purpose ${assessed.purpose} was the only legal basis`,
    requestedBy: 'system',
    origin: { kind: 'consent', consentId: w.consentId },
    approvalWindowMs: d.config.CUSTODIAN_DESTRUCTION_APPROVAL_WINDOW,
    graceMs: d.config.CUSTODIAN_DESTRUCTION_GRACE,
  };
  const ctx = Context.current();
  try {
    // The worker's own client: its namespace, payload codec and task queue.
    await ctx.client.workflow.start<typeof destruction>('destruction', {
      taskQueue: ctx.info.taskQueue,
      workflowId: destructionWorkflowId(destructionId),
      args: [input],
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
  return destructionId;
};
