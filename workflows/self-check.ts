import { proxyActivities, workflowInfo, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../activities';

export const io = {
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 10 },
} satisfies ActivityOptions;

const { appendAudit } = proxyActivities<Activities>(io);

export interface SelfCheckInput {
  checkId: string;
  /** An opaque token echoed back: proves a value crosses worker, codec and server intact. */
  token: string;
}

/** A round trip through server, worker, codec, activities and the audit chain; run at start-up and in tests. */
export async function selfCheck(input: SelfCheckInput): Promise<{ token: string; auditSeq: number }> {
  const { seq } = await appendAudit({
    actor: 'system',
    action: 'system.self-check',
    targetType: 'system',
    targetId: input.checkId,
    details: { workflowType: workflowInfo().workflowType },
    idempotencyKey: `${workflowInfo().workflowId}:audit`,
  });
  return { token: input.token, auditSeq: seq };
}
