import { ParentClosePolicy, proxyActivities, startChild, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { destructionWorkflowId } from '../domain/ids';
import type { RetentionSweepInput, RetentionSweepResult } from '../domain/retention-sweep';
import type { destruction } from './destruction';

export const io = { startToCloseTimeout: '5 minutes', retry: { maximumAttempts: 10 } } satisfies ActivityOptions;
const { planRetentionSweep } = proxyActivities<Activities>(io);

/**
 * Finds what is past its retention and, when anything is, opens one destruction request for it (scope
 * `retentionExpired`, origin the sweep). The request outlives the sweep: it waits days for approvals and its grace
 * window, so the sweep returns once it has started, and the next day's sweep is not held up.
 */
export async function retentionSweep(input: RetentionSweepInput): Promise<RetentionSweepResult> {
  const plan = await planRetentionSweep({ sweepId: input.sweepId });
  const autoApprove = input.autoApprove ?? plan.autoApprove;
  const result = {
    sweepId: input.sweepId,
    matched: plan.matched,
    held: plan.held,
    targeted: plan.targeted,
    autoApproved: autoApprove,
  };
  if (plan.targeted === 0) return { ...result, destructionId: null };
  await startChild<typeof destruction>('destruction', {
    workflowId: destructionWorkflowId(input.destructionId),
    parentClosePolicy: ParentClosePolicy.ABANDON,
    args: [
      {
        destructionId: input.destructionId,
        scope: { kind: 'retentionExpired' },
        reason: 'retention period expired (retention sweep)',
        requestedBy: input.requestedBy,
        origin: { kind: 'sweep', sweepId: input.sweepId },
        approvalWindowMs: input.approvalWindowMs ?? plan.approvalWindowMs,
        graceMs: input.graceMs ?? plan.graceMs,
        ...(autoApprove ? { autoApprove: true } : {}),
      },
    ],
  });
  return { ...result, destructionId: input.destructionId };
}
