import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  defineQuery,
  defineUpdate,
  proxyActivities,
  setHandler,
  uuid4,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { DestructionEvent } from '../activities/destruction-records';
import {
  APPROVALS_REQUIRED,
  DESTRUCTION_NON_RETRYABLE,
  DestructionConflict,
  approvalsOf,
  checkApproval,
  checkCancel,
  isRejected,
  type ApprovalDecision,
  type CancelDecision,
  type DestructionActor,
  type DestructionInput,
  type DestructionOutcome,
  type DestructionState,
  type DestructionStatus,
} from '../domain/destruction';

export const io = {
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 20, nonRetryableErrorTypes: DESTRUCTION_NON_RETRYABLE },
} satisfies ActivityOptions;
/** Shredding loops over batches and heartbeats after each; a killed worker is noticed at the heartbeat timeout. */
export const shredIo = {
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '20 seconds',
  retry: { maximumAttempts: 50, nonRetryableErrorTypes: DESTRUCTION_NON_RETRYABLE },
} satisfies ActivityOptions;

const { openDestruction, recordDestructionEvent, certifyDestruction } = proxyActivities<Activities>(io);
const { shredDestruction } = proxyActivities<Activities>(shredIo);

export interface ApprovalResult {
  status: DestructionStatus;
  approvals: number;
  /** False when this approver's earlier identical decision stands and this one changed nothing. */
  counted: boolean;
}

/** Texts travel as IDs (the API stores them in process_texts first): history holds no reason or comment. */
export const approvalUpdate = defineUpdate<ApprovalResult, [DestructionActor, ApprovalDecision]>('approval');
export const cancelUpdate = defineUpdate<{ status: DestructionStatus }, [DestructionActor, CancelDecision]>('cancel');
export const destructionStateQuery = defineQuery<DestructionState>('state');

const refusal = (err: unknown) =>
  err instanceof DestructionConflict ? ApplicationFailure.nonRetryable(err.message, err.code) : err;

/**
 * One destruction request: persist and resolve the scope (held subjects excluded, refused when nothing is left),
 * two approvals from distinct approvers other than the requester (one rejection rejects; the window expires it),
 * a cancellable grace window, crypto-shredding in idempotent batches, verification, a signed certificate.
 */
export async function destruction(input: DestructionInput): Promise<DestructionOutcome> {
  const id = input.destructionId;
  const state: DestructionState = { destructionId: id, status: 'awaiting-approval', approvals: [], cancelled: false };
  let opened = false;
  let cancelledBy: { by: DestructionActor; decision: CancelDecision } | undefined;
  setHandler(destructionStateQuery, () => state);

  const record = (
    step: string,
    action: string,
    patch: DestructionEvent['patch'],
    by: { actor: string; apiKeyId?: string } = { actor: 'system' },
    details: Record<string, unknown> = {},
  ) =>
    recordDestructionEvent({
      destructionId: id,
      step,
      action,
      actor: by.actor,
      ...(by.apiKeyId ? { apiKeyId: by.apiKeyId } : {}),
      details,
      patch,
    });
  const end = async (
    status: DestructionStatus,
    outcome: string,
    by?: { actor: string; apiKeyId?: string },
    details: Record<string, unknown> = {},
  ) => {
    state.status = status;
    await record(status, `destruction.${status}`, { status, outcome, finished: true }, by, details);
    await condition(allHandlersFinished);
    return { destructionId: id, status, subjectsDestroyed: 0 };
  };

  setHandler(
    approvalUpdate,
    async (by, a) => {
      await condition(() => opened);
      let fresh: boolean;
      try {
        fresh = checkApproval(state, input.requestedBy, by, a.decision);
      } catch (err) {
        throw refusal(err);
      }
      if (fresh) {
        const at = Date.now();
        state.approvals.push({
          userId: by.userId,
          actor: by.actor,
          decision: a.decision,
          at,
          ...(a.commentTextId ? { commentTextId: a.commentTextId } : {}),
          ...(a.comment === undefined ? {} : { comment: a.comment }),
        });
        await record(
          `decision-${by.userId}`,
          a.decision === 'approve' ? 'destruction.approval-given' : 'destruction.approval-refused',
          {
            approvals: state.approvals.map((x) => ({
              userId: x.userId,
              actor: x.actor,
              decision: x.decision,
              ...(x.commentTextId ? { commentTextId: x.commentTextId } : {}),
              ...(x.comment === undefined ? {} : { comment: x.comment }),
              at: new Date(x.at).toISOString(),
            })),
          },
          by,
          {
            decision: a.decision,
            approvals: approvalsOf(state),
            ...(a.commentTextId ? { commentTextId: a.commentTextId } : {}),
          },
        );
      }
      return { status: state.status, approvals: approvalsOf(state), counted: fresh };
    },
    {
      validator: (by, a) => {
        if (!opened) return;
        try {
          checkApproval(state, input.requestedBy, by, a.decision);
        } catch (err) {
          throw refusal(err);
        }
      },
    },
  );
  setHandler(
    cancelUpdate,
    (by, c) => {
      cancelledBy ??= { by, decision: c };
      state.cancelled = true;
      return { status: state.status };
    },
    {
      validator: (_by: DestructionActor, _c: CancelDecision) => {
        try {
          checkCancel(state);
        } catch (err) {
          throw refusal(err);
        }
      },
    },
  );
  const cancelled = () => {
    const { by, decision } = cancelledBy!;
    return decision.reason === undefined
      ? end('cancelled', `cancelled by ${by.actor}`, by, { reasonTextId: decision.reasonTextId ?? null })
      : end('cancelled', `cancelled: ${decision.reason}`, by);
  };

  const resolved = await openDestruction(input);
  if (resolved.status === 'refused') {
    state.status = 'refused';
    opened = true;
    await condition(allHandlersFinished);
    return { destructionId: id, status: 'refused', subjectsDestroyed: 0 };
  }
  opened = true;

  if (input.autoApprove) {
    await record('auto-approved', 'destruction.auto-approved', { autoApproved: true }, undefined, {
      reason: 'retention sweep with automatic approval',
    });
  } else {
    await record('approval-window', 'destruction.awaiting-approval', {
      status: 'awaiting-approval',
      approvalDeadline: Date.now() + input.approvalWindowMs,
    });
    const decided = await condition(
      () => approvalsOf(state) >= APPROVALS_REQUIRED || isRejected(state) || state.cancelled,
      input.approvalWindowMs,
    );
    if (state.cancelled) return cancelled();
    if (isRejected(state)) {
      const by = state.approvals.find((a) => a.decision === 'reject')!;
      return end('rejected', `rejected by ${by.actor}`);
    }
    if (!decided) return end('expired', 'the approval window ended before two approvals');
  }

  state.status = 'grace';
  await record('grace', 'destruction.grace-started', { status: 'grace', graceUntil: Date.now() + input.graceMs });
  if (input.graceMs > 0) await condition(() => state.cancelled, input.graceMs);
  if (state.cancelled) return cancelled();

  state.status = 'destroying';
  const destroyedFrom = Date.now();
  const shred = await shredDestruction({
    destructionId: id,
    ...(input.batchSize ? { batchSize: input.batchSize } : {}),
  });
  state.status = 'verifying';
  const certified = await certifyDestruction({
    destructionId: id,
    certificateId: uuid4(),
    shred,
    destroyedFrom,
    destroyedTo: Date.now(),
  });
  if (!certified.certificateId) {
    state.status = 'failed';
    await record(
      'failed',
      'destruction.verification-failed',
      { status: 'failed', outcome: 'verification failed', finished: true },
      undefined,
      { ...certified.verification },
    );
    return { destructionId: id, status: 'failed', subjectsDestroyed: shred.subjects };
  }
  const issued = { certificateId: certified.certificateId };
  state.status = 'completed';
  await condition(allHandlersFinished);
  return {
    destructionId: id,
    status: 'completed',
    certificateId: issued.certificateId,
    subjectsDestroyed: shred.subjects,
  };
}
