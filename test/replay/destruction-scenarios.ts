import { randomUUID } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { inArray } from 'drizzle-orm';
import { destructionTexts } from '../../activities/process-texts';
import { subjects } from '../../db/schema';
import type { DestructionInput } from '../../domain/destruction';
import { destructionWorkflowId } from '../../domain/ids';
import { destruction } from '../../workflows';
import { approvalUpdate, cancelUpdate, destructionStateQuery } from '../../workflows/destruction';
import { insertSubjects } from '../helpers/campaign-subjects';
import { waitFor } from '../helpers/wait';
import type { Scenario, ScenarioContext } from './scenarios';

const settled = async (handle: WorkflowHandle): Promise<WorkflowHandle> => {
  await handle.result().catch(() => {});
  return handle;
};
const approver = (n: number) => ({ userId: randomUUID(), actor: `user:approver-${n}`, role: 'approver' });

const start = async (ctx: ScenarioContext, o: Partial<DestructionInput> & { held?: boolean } = {}) => {
  const { ids } = await insertSubjects(ctx.database.db, ctx.keyring, 3);
  if (o.held) await ctx.database.db.update(subjects).set({ legalHold: true }).where(inArray(subjects.id, ids));
  const { held: _held, destructionId = randomUUID(), ...rest } = o;
  return ctx.client.workflow.start(destruction, {
    taskQueue: ctx.taskQueue,
    workflowId: destructionWorkflowId(destructionId),
    args: [
      {
        destructionId,
        scope: { kind: 'subjects', subjectIds: ids },
        reason: 'recorded',
        requestedBy: 'user:recorded',
        approvalWindowMs: 60_000,
        graceMs: 1000,
        ...rest,
      },
    ],
  });
};
/** The histories recorded before texts were stored apart carry them (`reason`, `comment`); these carry text IDs. */
const decide = (h: WorkflowHandle, n: number, decision: 'approve' | 'reject') =>
  h.executeUpdate(approvalUpdate, { args: [approver(n), { decision, comment: 'recorded' }] });
const decideWithText = async (ctx: ScenarioContext, h: WorkflowHandle, n: number) => {
  const by = approver(n);
  const { id } = await destructionTexts.store(ctx.database.db, {
    processId: h.workflowId.replace('destruction-', ''),
    kind: 'comment',
    body: 'recorded',
    createdBy: by.actor,
  });
  return h.executeUpdate(approvalUpdate, { args: [by, { decision: 'approve', commentTextId: id }] });
};
const startWithText = async (ctx: ScenarioContext, o: Partial<DestructionInput> = {}) => {
  const destructionId = randomUUID();
  const { id } = await destructionTexts.store(ctx.database.db, {
    processId: destructionId,
    kind: 'reason',
    body: 'recorded',
    createdBy: 'user:recorded',
  });
  return start(ctx, { destructionId, reason: undefined, reasonTextId: id, ...o });
};

export const destructionScenarios: Record<string, Scenario> = {
  completed: async (ctx) => {
    const h = await start(ctx);
    await decide(h, 1, 'approve');
    await decide(h, 2, 'approve');
    return settled(h);
  },
  'auto-approved': async (ctx) => settled(await start(ctx, { autoApprove: true, graceMs: 0 })),
  rejected: async (ctx) => {
    const h = await start(ctx);
    await decide(h, 1, 'reject');
    return settled(h);
  },
  expired: async (ctx) => settled(await start(ctx, { approvalWindowMs: 1000 })),
  'cancelled-in-grace': async (ctx) => {
    const h = await start(ctx, { graceMs: 60_000 });
    await decide(h, 1, 'approve');
    await decide(h, 2, 'approve');
    await waitFor(async () => ((await h.query(destructionStateQuery)).status === 'grace' ? true : undefined), 'grace');
    await h.executeUpdate(cancelUpdate, { args: [{ ...approver(3), role: 'owner' }, { reason: 'recorded' }] });
    return settled(h);
  },
  refused: async (ctx) => settled(await start(ctx, { held: true })),
  'completed-text-ids': async (ctx) => {
    const h = await startWithText(ctx);
    await decideWithText(ctx, h, 1);
    await decideWithText(ctx, h, 2);
    return settled(h);
  },
  'cancelled-text-ids': async (ctx) => {
    const h = await startWithText(ctx, { graceMs: 60_000 });
    await decideWithText(ctx, h, 1);
    await decideWithText(ctx, h, 2);
    await waitFor(async () => ((await h.query(destructionStateQuery)).status === 'grace' ? true : undefined), 'grace');
    const { id } = await destructionTexts.store(ctx.database.db, {
      processId: h.workflowId.replace('destruction-', ''),
      kind: 'cancel-reason',
      body: 'recorded',
      createdBy: 'user:recorded',
    });
    await h.executeUpdate(cancelUpdate, { args: [{ ...approver(3), role: 'owner' }, { reasonTextId: id }] });
    return settled(h);
  },
};
