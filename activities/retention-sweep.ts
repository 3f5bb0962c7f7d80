import { Context } from '@temporalio/activity';
import type { Db } from '../db/client';
import type { Catalog } from '../domain/catalog';
import { retentionSweepWorkflowId } from '../domain/ids';
import type { Config } from '../runtime/config';
import type { Keyring } from '../runtime/keyring';
import { appendAudit } from './audit';
import { countScope, resolveScope } from './destruction-records';

/**
 * What the sweep found due (counts only; the destruction request resolves the scope again as its first step) and the
 * configured windows and automatic approval for the values its input leaves out. Audited once per sweep.
 */
export const planRetentionSweep = async (
  d: { db: Db; keyring: Keyring; catalog: Catalog; clock: () => Date; config: Config },
  sweepId: string,
) => {
  const counts = countScope(await resolveScope(d, d.db, { kind: 'retentionExpired' }, d.clock()));
  const run = Context.current().info.workflowExecution;
  await appendAudit(d.db, {
    actor: 'system',
    action: 'retention-sweep.planned',
    targetType: 'retention-sweep',
    targetId: sweepId,
    workflowId: run?.workflowId ?? null,
    runId: run?.runId ?? null,
    details: counts,
    idempotencyKey: `${retentionSweepWorkflowId(sweepId)}:planned`,
  });
  return {
    ...counts,
    approvalWindowMs: d.config.CUSTODIAN_DESTRUCTION_APPROVAL_WINDOW,
    graceMs: d.config.CUSTODIAN_DESTRUCTION_GRACE,
    autoApprove: d.config.CUSTODIAN_RETENTION_SWEEP_AUTO_APPROVE,
  };
};

export const retentionSweepActivities = (d: Parameters<typeof planRetentionSweep>[0]) => ({
  planRetentionSweep: (a: { sweepId: string }) => planRetentionSweep(d, a.sweepId),
});
