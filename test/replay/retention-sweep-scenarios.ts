import { randomUUID } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { retentionSweepWorkflowId } from '../../domain/ids';
import { retentionSweep } from '../../workflows';
import { insertSubjects } from '../helpers/campaign-subjects';
import type { Scenario, ScenarioContext } from './scenarios';

const run = async (ctx: ScenarioContext): Promise<WorkflowHandle> => {
  const sweepId = randomUUID();
  const handle = await ctx.client.workflow.start(retentionSweep, {
    taskQueue: ctx.taskQueue,
    workflowId: retentionSweepWorkflowId(sweepId),
    args: [
      {
        sweepId,
        destructionId: randomUUID(),
        requestedBy: 'schedule:retention-sweep',
        approvalWindowMs: 60_000,
        graceMs: 0,
        autoApprove: true,
      },
    ],
  });
  await handle.result().catch(() => {});
  return handle;
};

export const retentionSweepScenarios: Record<string, Scenario> = {
  'nothing-due': run,
  opened: async (ctx) => {
    const { ids } = await insertSubjects(ctx.database.db, ctx.keyring, 2);
    await ctx.database.sql`update subjects set retention_until = '2020-01-01' where id = any(${ids}::uuid[])`;
    return run(ctx);
  },
};
