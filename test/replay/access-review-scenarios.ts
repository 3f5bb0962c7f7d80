import { randomUUID } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { isNull } from 'drizzle-orm';
import { accessGrants } from '../../db/schema';
import type { AccessReviewInput } from '../../domain/access-review';
import { accessReviewWorkflowId, obligationsCheckWorkflowId } from '../../domain/ids';
import { accessReview, obligationsCheck } from '../../workflows';
import { accessDecisionUpdate, accessReviewStateQuery } from '../../workflows/access-review';
import { waitFor } from '../helpers/wait';
import type { Scenario, ScenarioContext } from './scenarios';

const settled = async (handle: WorkflowHandle): Promise<WorkflowHandle> => {
  await handle.result().catch(() => {});
  return handle;
};

/** Live grants for the scenario only: every earlier one is revoked first, then `n` new ones (users by ID only). */
const freshGrants = async ({ database: { db } }: ScenarioContext, n: number) => {
  await db
    .update(accessGrants)
    .set({ revokedAt: new Date(), revokedBy: 'recorded', revokeReason: 'revoked' })
    .where(isNull(accessGrants.revokedAt));
  const reviewerId = randomUUID();
  const rows = Array.from({ length: n }, () => ({
    id: randomUUID(),
    userId: randomUUID(),
    capability: 'reveal' as const,
    classification: 'sensitive' as const,
    expiresAt: new Date(Date.now() + 3600_000),
    reviewerId,
    createdBy: 'recorded',
  }));
  if (rows.length) await db.insert(accessGrants).values(rows);
  return rows;
};

const startReview = async ({ client, taskQueue }: ScenarioContext, o: Partial<AccessReviewInput> = {}) => {
  const reviewId = randomUUID();
  const handle = await client.workflow.start(accessReview, {
    taskQueue,
    workflowId: accessReviewWorkflowId(reviewId),
    args: [{ reviewId, requestedBy: 'recorded', deadlineMs: 60_000, reminderEveryMs: 30_000, ...o }],
  });
  await waitFor(
    async () => ((await handle.query(accessReviewStateQuery)).status === 'open' ? true : undefined),
    'the review open',
  );
  return handle;
};

const approver = (userId: string) => ({ userId, role: 'approver' });

export const accessReviewScenarios: Record<string, Scenario> = {
  /** No live grants: the review closes at once with nothing to decide. */
  empty: async (ctx) => {
    await freshGrants(ctx, 0);
    const reviewId = randomUUID();
    return settled(
      await ctx.client.workflow.start(accessReview, {
        taskQueue: ctx.taskQueue,
        workflowId: accessReviewWorkflowId(reviewId),
        args: [{ reviewId, requestedBy: 'recorded', deadlineMs: 60_000, reminderEveryMs: 30_000 }],
      }),
    );
  },
  /** Every grant decided before the deadline (one kept, one revoked): it closes early. */
  'decided-early': async (ctx) => {
    const [a, b] = await freshGrants(ctx, 2);
    const handle = await startReview(ctx);
    await handle.executeUpdate(accessDecisionUpdate, {
      args: [approver(a!.reviewerId), { grantId: a!.id, decision: 'keep' }],
    });
    await handle.executeUpdate(accessDecisionUpdate, {
      args: [approver(b!.reviewerId), { grantId: b!.id, decision: 'revoke' }],
    });
    return settled(handle);
  },
  /**
   * One kept, a self-certification refused, one unanswered through two reminders: at the deadline the unanswered
   * one is revoked; a decision by a non-approver is refused by the validator.
   */
  deadline: async (ctx) => {
    const [kept, unanswered] = await freshGrants(ctx, 2);
    const handle = await startReview(ctx, { deadlineMs: 7_000, reminderEveryMs: 3_000 });
    await handle
      .executeUpdate(accessDecisionUpdate, {
        args: [
          { userId: kept!.reviewerId, role: 'owner' },
          { grantId: kept!.id, decision: 'keep' },
        ],
      })
      .catch(() => {});
    await handle
      .executeUpdate(accessDecisionUpdate, {
        args: [approver(unanswered!.userId), { grantId: unanswered!.id, decision: 'keep' }],
      })
      .catch(() => {});
    await handle.executeUpdate(accessDecisionUpdate, {
      args: [approver(kept!.reviewerId), { grantId: kept!.id, decision: 'keep' }],
    });
    return settled(handle);
  },
};

/** After one decision (decisionsPerRun 1) the run continues as new; this records the first run. */
const continued = async (ctx: ScenarioContext) => {
  const [a, b] = await freshGrants(ctx, 2);
  const handle = await startReview(ctx, { decisionsPerRun: 1 });
  await handle.executeUpdate(accessDecisionUpdate, {
    args: [approver(a!.reviewerId), { grantId: a!.id, decision: 'keep' }],
  });
  await waitFor(async () => {
    const { runId } = await handle.describe();
    return runId !== handle.firstExecutionRunId ? true : undefined;
  }, 'the next run');
  await waitFor(
    async () => ((await handle.query(accessReviewStateQuery)).status === 'open' ? true : undefined),
    'the next run open',
  );
  return { handle, b: b! };
};

accessReviewScenarios['continued-as-new'] = async (ctx) => {
  const { handle, b } = await continued(ctx);
  await handle.executeUpdate(accessDecisionUpdate, {
    args: [approver(b.reviewerId), { grantId: b.id, decision: 'revoke' }],
  });
  await handle.result();
  return ctx.client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId);
};
/** The run after continue-as-new: it reads the counts back, takes the last decision and closes. */
accessReviewScenarios['resumed-after-continue-as-new'] = async (ctx) => {
  const { handle, b } = await continued(ctx);
  await handle.executeUpdate(accessDecisionUpdate, {
    args: [approver(b.reviewerId), { grantId: b.id, decision: 'revoke' }],
  });
  await handle.result();
  return ctx.client.workflow.getHandle(handle.workflowId);
};

export const obligationsCheckScenarios: Record<string, Scenario> = {
  /** The seeded defaults and whatever is due: one activity, its counts. */
  completed: async ({ client, taskQueue }) => {
    const checkId = randomUUID();
    return settled(
      await client.workflow.start(obligationsCheck, {
        taskQueue,
        workflowId: obligationsCheckWorkflowId(checkId),
        args: [{ checkId, requestedBy: 'recorded' }],
      }),
    );
  },
};
